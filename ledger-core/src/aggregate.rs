//! What the event store needs to know of an aggregate to run commands against it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::CodecError;
use crate::payment::{self, PaymentEvent, PaymentState};
use crate::reconciliation::{ReconciliationEvent, ReconciliationRunState};
use crate::settlement::{SettlementBatchState, SettlementEvent};
use crate::stored::stored_names;

/// The kinds of stream in the log. The text of each (`as_str`, and its JSON form) is what the
/// log stores in `streams.stream_type`; the database checks the same list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamType {
    Payment,
    SettlementBatch,
    ReconciliationRun,
}

stored_names!(StreamType, "stream type" {
    Payment => "payment",
    SettlementBatch => "settlement_batch",
    ReconciliationRun => "reconciliation_run",
});

impl fmt::Display for StreamType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An event type that can be stored and read back.
pub trait DomainEvent: Sized {
    fn event_type(&self) -> &'static str;
    fn schema_version(&self) -> u32;
    fn to_payload(&self) -> Result<serde_json::Value, CodecError>;
    fn from_stored(
        event_type: &str,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Result<Self, CodecError>;
}

/// A stream's state folded from its events.
///
/// The log keeps each stream's latest fold beside it (ledger-store's `kept_state`), so that
/// a read of one stream is one row, not its every event. That copy is this state's serde
/// form in the bytes of [`crate::kept_form`], and `STATE_FORMAT` names the form: change it
/// whenever a change of the state's fields, of their order or of their meaning would make a
/// kept copy read back as something other than the fold (`tests/golden/states.json` fails
/// until it is changed). A copy of another format is not used; the stream is folded from its
/// events instead, and its next append keeps the new form. Format 1 was the JSON text of the
/// serde form; 2 is `kept_form`'s MessagePack.
pub trait Aggregate: Serialize + serde::de::DeserializeOwned {
    const STREAM_TYPE: StreamType;
    const STATE_FORMAT: u32;
    type Event: DomainEvent;
    fn evolve(self, event: &Self::Event) -> Self;
    fn version(&self) -> u64;
}

macro_rules! domain_event {
    ($event:ty) => {
        impl DomainEvent for $event {
            fn event_type(&self) -> &'static str {
                <$event>::event_type(self)
            }
            fn schema_version(&self) -> u32 {
                <$event>::schema_version(self)
            }
            fn to_payload(&self) -> Result<serde_json::Value, CodecError> {
                <$event>::to_payload(self)
            }
            fn from_stored(
                event_type: &str,
                schema_version: u32,
                payload: serde_json::Value,
            ) -> Result<Self, CodecError> {
                <$event>::from_stored(event_type, schema_version, payload)
            }
        }
    };
}

domain_event!(PaymentEvent);
domain_event!(SettlementEvent);
domain_event!(ReconciliationEvent);

impl Aggregate for PaymentState {
    const STREAM_TYPE: StreamType = StreamType::Payment;
    const STATE_FORMAT: u32 = 2;
    type Event = PaymentEvent;
    fn evolve(self, event: &PaymentEvent) -> Self {
        payment::evolve(self, event)
    }
    fn version(&self) -> u64 {
        self.version
    }
}

impl Aggregate for SettlementBatchState {
    const STREAM_TYPE: StreamType = StreamType::SettlementBatch;
    const STATE_FORMAT: u32 = 2;
    type Event = SettlementEvent;
    fn evolve(self, event: &SettlementEvent) -> Self {
        crate::settlement::evolve(self, event)
    }
    fn version(&self) -> u64 {
        self.version
    }
}

impl Aggregate for ReconciliationRunState {
    const STREAM_TYPE: StreamType = StreamType::ReconciliationRun;
    const STATE_FORMAT: u32 = 2;
    type Event = ReconciliationEvent;
    fn evolve(self, event: &ReconciliationEvent) -> Self {
        crate::reconciliation::evolve(self, event)
    }
    fn version(&self) -> u64 {
        self.version
    }
}
