//! Decides, without I/O, what one group-commit batch writes: which requests are accepted,
//! which conflict, which replay an earlier result, and the positions and hashes of every new
//! event. The state it is given is either read under the log-head lock or the state the
//! previous batches will have left (see the `writer` module); the plan records what it
//! assumed (the head it follows, each stream's version before it) so that the statement
//! writing it can check those assumptions in the database.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{Environment, KeptState, RecordedEvent, StreamType};
use crate::hash_chain::{compute_hash_with_parts, format_time};
use crate::validate::{PreparedRequest, StoredJson};

/// The log head: the last position and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub position: u64,
    pub hash: [u8; 32],
}

/// A stream's state as stored before the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamState {
    pub stream_type: StreamType,
    pub version: u64,
}

/// A stored idempotency claim, as the batch found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredClaim {
    pub request_hash: Vec<u8>,
    pub first_position: u64,
    pub last_position: u64,
}

/// What happens to one request of the batch.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Recorded now: these indices of [`Plan::events`].
    Recorded {
        events: std::ops::Range<usize>,
    },
    /// Same key and request as a claim stored before: read back its events.
    ReplayStored {
        first_position: u64,
        last_position: u64,
    },
    /// Same key and request as an earlier request of this batch.
    ReplayInBatch {
        request_index: usize,
    },
    Rejected(StoreError),
}

/// An idempotency claim to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewClaim {
    pub environment: Environment,
    pub key: String,
    pub request_hash: Vec<u8>,
    pub first_position: u64,
    pub last_position: u64,
}

/// A stream the batch appends to: the version the plan found it at, the one it leaves, and
/// what its row keeps of it then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamAdvance {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    /// 0 for a stream the plan found absent.
    pub from_version: u64,
    pub to_version: u64,
    pub end: StreamEnd,
}

/// A stream as the batch leaves it, for its row: its state at `to_version` if the last
/// request appending to it brought that state, and its first and last events' times and
/// last position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamEnd {
    pub kept_state: Option<KeptState>,
    /// Known when the batch starts the stream, or from the kept state.
    pub first_occurred_at: Option<DateTime<Utc>>,
    pub last_occurred_at: DateTime<Utc>,
    pub last_position: u64,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub decisions: Vec<Decision>,
    pub events: Vec<RecordedEvent>,
    /// The JSON text of each of `events`' payload and metadata, as sent to the database.
    pub stored_json: Vec<StoredJson>,
    /// Every stream the batch appends to, once each, in first-touched order.
    pub stream_advances: Vec<StreamAdvance>,
    pub claims: Vec<NewClaim>,
    /// The head the plan chains onto.
    pub base: Head,
    /// The head once the plan is written.
    pub head: Head,
}

/// An idempotency claim's identity: its environment and key.
pub(crate) type ClaimKey = (Environment, String);

/// The streams the batch appends to, each once, in first-touched order, with the version
/// each was at before the batch.
#[derive(Default)]
struct Touched {
    seen: HashSet<Uuid>,
    in_order: Vec<(Uuid, u64)>,
    ends: HashMap<Uuid, StreamEnd>,
}

/// Plans a batch. Requests are decided in queue order, each seeing the effect of the ones
/// accepted before it, so the outcome equals running them one after another.
pub(crate) fn plan_batch(
    head: Head,
    mut streams: HashMap<Uuid, StreamState>,
    stored_claims: &HashMap<ClaimKey, StoredClaim>,
    requests: &[&PreparedRequest],
    recorded_at: DateTime<Utc>,
) -> Result<Plan, StoreError> {
    let mut plan = Plan {
        decisions: Vec::with_capacity(requests.len()),
        events: Vec::new(),
        stored_json: Vec::new(),
        stream_advances: Vec::new(),
        claims: Vec::new(),
        base: head,
        head,
    };
    let mut batch_claims: HashMap<ClaimKey, (Vec<u8>, usize)> = HashMap::new();
    let mut touched = Touched::default();
    let recorded_at_text = format_time(recorded_at);
    for (request_index, request) in requests.iter().enumerate() {
        let decision = match claim_decision(request, stored_claims, &batch_claims) {
            Some(decision) => decision,
            None => match check_streams(request, &streams) {
                Err(error) => Decision::Rejected(error),
                Ok(()) => {
                    let range = apply(
                        request,
                        &mut streams,
                        &mut plan,
                        &mut touched,
                        recorded_at,
                        &recorded_at_text,
                    )?;
                    // Every claim of a request records the request's whole range: its events
                    // are told apart by the key in their metadata.
                    for claim in &request.claims {
                        let key = (claim.environment, claim.key.clone());
                        batch_claims.insert(key, (claim.request_hash.to_vec(), request_index));
                        plan.claims
                            .push(new_claim(claim, &plan.events[range.clone()]));
                    }
                    Decision::Recorded { events: range }
                }
            },
        };
        plan.decisions.push(decision);
    }
    plan.stream_advances = touched
        .in_order
        .into_iter()
        .filter_map(|(stream_id, from_version)| {
            let state = streams.get(&stream_id)?;
            // Every stream of an append has events (`validate` refuses one without), so each
            // touched stream has its end.
            let end = touched.ends.remove(&stream_id)?;
            Some(StreamAdvance {
                stream_id,
                stream_type: state.stream_type,
                from_version,
                to_version: state.version,
                end,
            })
        })
        .collect();
    Ok(plan)
}

/// A decision forced by the request's idempotency key, if it was used before. A request of
/// several claims (commands appended together) replays nothing: any of its keys used before
/// refuses it whole, and its caller, who decided it on what it read, reads again.
fn claim_decision(
    request: &PreparedRequest,
    stored_claims: &HashMap<ClaimKey, StoredClaim>,
    batch_claims: &HashMap<ClaimKey, (Vec<u8>, usize)>,
) -> Option<Decision> {
    if let [_, _, ..] = request.claims.as_slice() {
        return request.claims.iter().find_map(|claim| {
            let key = (claim.environment, claim.key.clone());
            (stored_claims.contains_key(&key) || batch_claims.contains_key(&key)).then(|| {
                Decision::Rejected(StoreError::IdempotencyKeyReused {
                    environment: claim.environment,
                    key: claim.key.clone(),
                })
            })
        });
    }
    let claim = request.claims.first()?;
    let key = (claim.environment, claim.key.clone());
    let reused = || {
        Decision::Rejected(StoreError::IdempotencyKeyReused {
            environment: claim.environment,
            key: claim.key.clone(),
        })
    };
    if let Some(stored) = stored_claims.get(&key) {
        return Some(if stored.request_hash == claim.request_hash {
            Decision::ReplayStored {
                first_position: stored.first_position,
                last_position: stored.last_position,
            }
        } else {
            reused()
        });
    }
    let (request_hash, request_index) = batch_claims.get(&key)?;
    Some(if request_hash.as_slice() == claim.request_hash {
        Decision::ReplayInBatch {
            request_index: *request_index,
        }
    } else {
        reused()
    })
}

fn check_streams(
    request: &PreparedRequest,
    streams: &HashMap<Uuid, StreamState>,
) -> Result<(), StoreError> {
    for stream in &request.streams {
        let current = streams.get(&stream.stream_id);
        if let Some(state) = current {
            if state.stream_type != stream.stream_type {
                return Err(StoreError::StreamTypeMismatch {
                    stream_id: stream.stream_id,
                    existing: state.stream_type,
                    requested: stream.stream_type,
                });
            }
        }
        let actual = current.map_or(0, |state| state.version);
        if !stream.expected_version.accepts(actual) {
            return Err(StoreError::ConcurrencyConflict {
                stream_id: stream.stream_id,
                expected: stream.expected_version,
                actual,
            });
        }
    }
    Ok(())
}

/// Gives the request's events their versions, positions and hashes; returns their indices.
fn apply(
    request: &PreparedRequest,
    streams: &mut HashMap<Uuid, StreamState>,
    plan: &mut Plan,
    touched: &mut Touched,
    recorded_at: DateTime<Utc>,
    recorded_at_text: &str,
) -> Result<std::ops::Range<usize>, StoreError> {
    let start = plan.events.len();
    for stream in &request.streams {
        if touched.seen.insert(stream.stream_id) {
            let from_version = streams
                .get(&stream.stream_id)
                .map_or(0, |state| state.version);
            touched.in_order.push((stream.stream_id, from_version));
        }
        let state = streams.entry(stream.stream_id).or_insert(StreamState {
            stream_type: stream.stream_type,
            version: 0,
        });
        for event in &stream.events {
            state.version += 1;
            let mut recorded = RecordedEvent {
                position: plan.head.position + 1,
                event_id: event.event_id,
                stream_id: stream.stream_id,
                stream_type: stream.stream_type,
                stream_version: state.version,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                recorded_at,
                occurred_at: event.occurred_at,
                payload: event.payload.clone(),
                metadata: event.metadata.clone(),
                prev_hash: plan.head.hash,
                hash: [0; 32],
            };
            recorded.hash = compute_hash_with_parts(&recorded, &event.canonical, recorded_at_text)?;
            plan.head = Head {
                position: recorded.position,
                hash: recorded.hash,
            };
            plan.events.push(recorded);
            plan.stored_json.push(event.stored.clone());
        }
        if let Some(last) = plan.events.last().filter(|_| !stream.events.is_empty()) {
            let first_in_request = &plan.events[plan.events.len() - stream.events.len()];
            let earlier = touched.ends.remove(&stream.stream_id);
            // A state is kept only if it is the fold of the version this request leaves.
            let kept_state = stream
                .kept_state
                .clone()
                .filter(|kept| kept.version() == state.version);
            let first_occurred_at = earlier
                .and_then(|earlier| earlier.first_occurred_at)
                .or_else(|| {
                    (first_in_request.stream_version == 1).then_some(first_in_request.occurred_at)
                })
                .or_else(|| kept_state.as_ref().map(KeptState::first_occurred_at));
            touched.ends.insert(
                stream.stream_id,
                StreamEnd {
                    kept_state,
                    first_occurred_at,
                    last_occurred_at: last.occurred_at,
                    last_position: last.position,
                },
            );
        }
    }
    Ok(start..plan.events.len())
}

fn new_claim(claim: &crate::event::IdempotencyClaim, events: &[RecordedEvent]) -> NewClaim {
    NewClaim {
        environment: claim.environment,
        key: claim.key.clone(),
        request_hash: claim.request_hash.to_vec(),
        first_position: events.first().map_or(0, |event| event.position),
        last_position: events.last().map_or(0, |event| event.position),
    }
}
