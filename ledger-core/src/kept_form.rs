//! The bytes a stream's kept state is stored as (ledger-store's `kept_state`): the state's
//! serde form written as MessagePack, each struct an array of its fields in the order they
//! are declared.
//!
//! Why not the JSON text of the same serde form: at ten million events the kept states are the
//! table every `payment(id)` reads, and JSON's field names and quoted amounts made it about
//! 2.2 GiB, more than stayed in memory beside the log (docs/scaling.md). A typical payment's
//! state is 269 bytes of this against 794 of JSON, and is written in about 0.6 of the time and
//! read back in 0.6–0.75 (`examples/kept_form_bench.rs` measures both in one run).
//!
//! What it costs: the bytes name no field, so a reordered field reads back as another field.
//! `tests/golden/states.json` holds each state's bytes, and fails until a change of them comes
//! with a new `Aggregate::STATE_FORMAT` (a kept state of another format is never used).

use crate::aggregate::Aggregate;
use crate::codec::CodecError;

/// `state` in its kept form.
pub fn encode<State: Aggregate>(state: &State) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec(state).map_err(|error| CodecError::KeptState {
        stream_type: State::STREAM_TYPE.as_str(),
        reason: error.to_string(),
    })
}

/// The state `bytes` are the kept form of, if they are one of `State`'s current format.
pub fn decode<State: Aggregate>(bytes: &[u8]) -> Result<State, CodecError> {
    rmp_serde::from_slice(bytes).map_err(|error| CodecError::KeptState {
        stream_type: State::STREAM_TYPE.as_str(),
        reason: error.to_string(),
    })
}
