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
use crate::fresh_batch::ClaimKey;
use crate::plan::{Head, Plan, StoredClaim, StreamState};
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
            if let Some(claim) = &request.idempotency {
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
