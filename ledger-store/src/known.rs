//! What the writer knows of the log without asking: the head and the streams and claims it
//! last saw, as they stand once every batch it has sent is committed.
//!
//! It is exact only while no other process writes, so nothing trusts it blindly: each batch
//! planned from it is written by a statement that checks the head it chains onto and the
//! version of every stream it appends to (see `batch_write`), and a batch that finds the log
//! elsewhere makes the writer forget it all. A rejection decided from it (a stale expected
//! version, a reused key) stands only if the batch carrying it commits, which proves that the
//! log was where the writer thought.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::event::ExpectedVersion;
use crate::plan::{ClaimKey, Head, Plan, StoredClaim, StreamState};
use crate::validate::PreparedRequest;

/// Streams or claims remembered at most; past it, they are forgotten and taken again from
/// the requests' own expectations, which the database checks just the same.
pub(crate) const MAX_REMEMBERED: usize = 100_000;

pub(crate) struct Known {
    head: Head,
    streams: HashMap<Uuid, StreamState>,
    claims: HashMap<ClaimKey, StoredClaim>,
}

/// The state a batch is planned on.
pub(crate) struct Assumed {
    pub head: Head,
    pub streams: HashMap<Uuid, StreamState>,
    pub claims: HashMap<ClaimKey, StoredClaim>,
}

impl Known {
    /// What the log holds once `plan` is committed, knowing only that plan.
    pub fn after(plan: &Plan) -> Self {
        let mut known = Known {
            head: plan.head,
            streams: HashMap::new(),
            claims: HashMap::new(),
        };
        known.remember(plan);
        known
    }

    /// Moves on to what the log holds once `plan`, planned on this state, is committed.
    pub fn advance(&mut self, plan: &Plan) {
        debug_assert_eq!(plan.base, self.head, "a plan must follow the known head");
        self.head = plan.head;
        self.remember(plan);
    }

    fn remember(&mut self, plan: &Plan) {
        if self.streams.len() + plan.stream_advances.len() > MAX_REMEMBERED {
            self.streams.clear();
        }
        for advance in &plan.stream_advances {
            let state = StreamState {
                stream_type: advance.stream_type,
                version: advance.to_version,
            };
            self.streams.insert(advance.stream_id, state);
        }
        if self.claims.len() + plan.claims.len() > MAX_REMEMBERED {
            self.claims.clear();
        }
        for claim in &plan.claims {
            let stored = StoredClaim {
                request_hash: claim.request_hash.clone(),
                first_position: claim.first_position,
                last_position: claim.last_position,
            };
            self.claims
                .insert((claim.environment, claim.key.clone()), stored);
        }
    }

    /// The state to plan `requests` on: what is known, and for a stream not known the
    /// version its first request expects (a new stream when it expects none). `None` when a
    /// request takes whatever version a stream not known is at (`ExpectedVersion::Any`): only
    /// a read can tell which version its events get.
    pub fn assume(&self, requests: &[&PreparedRequest]) -> Option<Assumed> {
        let mut streams = HashMap::new();
        let mut claims = HashMap::new();
        // Only a stream's first request says what it is assumed at; later ones are decided
        // on the state the earlier ones leave.
        let mut seen = HashSet::new();
        for request in requests {
            for stream in &request.streams {
                if !seen.insert(stream.stream_id) {
                    continue;
                }
                let assumed = match (self.streams.get(&stream.stream_id), stream.expected_version) {
                    (Some(known), _) => Some(*known),
                    (None, ExpectedVersion::Any) => return None,
                    (None, ExpectedVersion::NoStream | ExpectedVersion::Exactly(0)) => None,
                    (None, ExpectedVersion::Exactly(version)) => Some(StreamState {
                        stream_type: stream.stream_type,
                        version,
                    }),
                };
                if let Some(state) = assumed {
                    streams.insert(stream.stream_id, state);
                }
            }
            for claim in &request.claims {
                let key = (claim.environment, claim.key.clone());
                if let Some(stored) = self.claims.get(&key) {
                    claims.insert(key, stored.clone());
                }
            }
        }
        Some(Assumed {
            head: self.head,
            streams,
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;
    use uuid::Uuid;

    use super::Known;
    use crate::event::{
        AppendRequest, Environment, EventMetadata, ExpectedVersion, IdempotencyClaim, NewEvent,
        StreamAppend, StreamType,
    };
    use crate::plan::{plan_batch, Head, Plan, StoredClaim, StreamState};
    use crate::validate::{prepare, PreparedRequest};

    fn request(streams: &[(Uuid, ExpectedVersion)], key: Option<&str>) -> PreparedRequest {
        let metadata = EventMetadata {
            environment: Environment::Test,
            actor_id: "key_test_1".into(),
            actor_role: "service".into(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            idempotency_key: None,
        };
        prepare(AppendRequest {
            streams: streams
                .iter()
                .map(|(stream_id, expected_version)| StreamAppend {
                    stream_id: *stream_id,
                    stream_type: StreamType::Payment,
                    expected_version: *expected_version,
                    events: vec![NewEvent {
                        event_id: Uuid::new_v4(),
                        event_type: "PaymentInitiated".into(),
                        schema_version: 1,
                        occurred_at: Utc::now(),
                        payload: json!({"amount": "1.00"}),
                        metadata: metadata.clone(),
                    }],
                    kept_state: None,
                })
                .collect(),
            idempotency: key.map(|key| IdempotencyClaim {
                environment: Environment::Test,
                key: key.into(),
                request_hash: [7; 32],
            }),
        })
        .unwrap()
    }

    fn planned(head: Head, requests: &[&PreparedRequest]) -> Plan {
        plan_batch(
            head,
            Default::default(),
            &Default::default(),
            requests,
            Utc::now(),
        )
        .unwrap()
    }

    fn payment(version: u64) -> StreamState {
        StreamState {
            stream_type: StreamType::Payment,
            version,
        }
    }

    /// What a plan wrote is known afterwards: the head it ends at, its streams' versions and
    /// its claims.
    #[test]
    fn a_written_plan_is_known_after_it() {
        let genesis = Head {
            position: 0,
            hash: [0; 32],
        };
        let stream = Uuid::new_v4();
        let first = request(&[(stream, ExpectedVersion::NoStream)], Some("key-1"));
        let plan = planned(genesis, &[&first]);
        let known = Known::after(&plan);
        assert_eq!(known.head, plan.head);
        assert_eq!(known.streams.get(&stream), Some(&payment(1)));
        let claim = known
            .claims
            .get(&(Environment::Test, "key-1".to_owned()))
            .unwrap();
        assert_eq!(
            claim,
            &StoredClaim {
                request_hash: vec![7; 32],
                first_position: 1,
                last_position: 1,
            }
        );
    }

    /// A known stream is assumed where it is known to be, whatever a request expects; a stream
    /// not known where its first request expects it (absent for `NoStream`), and a later request
    /// on it adds nothing, since it is decided on what the earlier one leaves.
    #[test]
    fn streams_are_assumed_from_what_is_known_then_from_their_first_request() {
        let genesis = Head {
            position: 0,
            hash: [0; 32],
        };
        let known_stream = Uuid::new_v4();
        let known = Known::after(&planned(
            genesis,
            &[&request(&[(known_stream, ExpectedVersion::NoStream)], None)],
        ));
        let trusted = Uuid::new_v4();
        let new = Uuid::new_v4();
        let requests = [
            request(&[(known_stream, ExpectedVersion::Exactly(7))], None),
            request(&[(trusted, ExpectedVersion::Exactly(4))], Some("key-1")),
            request(&[(new, ExpectedVersion::NoStream)], None),
            request(&[(new, ExpectedVersion::Exactly(1))], None),
            request(&[(trusted, ExpectedVersion::Exactly(9))], None),
        ];
        let requests: Vec<&PreparedRequest> = requests.iter().collect();
        let assumed = known.assume(&requests).unwrap();
        assert_eq!(assumed.head, known.head);
        assert_eq!(assumed.streams.len(), 2);
        assert_eq!(assumed.streams.get(&known_stream), Some(&payment(1)));
        assert_eq!(assumed.streams.get(&trusted), Some(&payment(4)));
        assert!(assumed.claims.is_empty());
    }

    /// `Any` on a stream not known cannot be planned without reading it; on a known stream it
    /// can. A claim this writer recorded is assumed stored.
    #[test]
    fn any_version_needs_a_known_stream() {
        let genesis = Head {
            position: 0,
            hash: [0; 32],
        };
        let stream = Uuid::new_v4();
        let known = Known::after(&planned(
            genesis,
            &[&request(
                &[(stream, ExpectedVersion::NoStream)],
                Some("key-1"),
            )],
        ));
        let unknown = request(&[(Uuid::new_v4(), ExpectedVersion::Any)], None);
        assert!(known.assume(&[&unknown]).is_none());
        let on_known = request(&[(stream, ExpectedVersion::Any)], Some("key-1"));
        let assumed = known.assume(&[&on_known]).unwrap();
        assert_eq!(assumed.streams.get(&stream), Some(&payment(1)));
        assert_eq!(assumed.claims.len(), 1);
    }
}
