//! The body of a notification: `{id, type, created, environment, position, data}` where
//! `data` is `{version, event, payment | settlement_batch | reconciliation_run}`: the ledger
//! event as stored and the state of its payment, batch or run right after it. The body is
//! rendered once, when the delivery is created, so every attempt and replay sends the same
//! bytes.

use ledger_core::ids::Environment;
use ledger_core::payment::PaymentState;
use ledger_core::reconciliation::ReconciliationRunState;
use ledger_core::settlement::SettlementBatchState;
use ledger_core::Money;
use ledger_projections::batch::BatchEvent;
use ledger_projections::stream_states::{DomainEvent, StreamState};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::event_types::NotificationType;

/// The version of `data`'s shape; a change of shape gets a new number.
pub const DATA_VERSION: u32 = 1;

/// The namespace of notification ids (UUID v5 of the event id): the same event always has the
/// same notification id, at every attempt, replay and dispatcher restart.
const NOTIFICATION_NAMESPACE: Uuid = Uuid::from_u128(0x5d1c_33a8_0b6e_4f0c_9a57_1e0c_d4b1_7a21);

/// A notification ready to be delivered to every endpoint that wants it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub id: Uuid,
    pub kind: NotificationType,
    pub environment: Environment,
    pub position: u64,
    /// The payment, batch or run it is about.
    pub subject_id: Uuid,
    pub body: String,
}

/// The notification id of a ledger event.
pub fn notification_id(event_id: Uuid) -> Uuid {
    Uuid::new_v5(&NOTIFICATION_NAMESPACE, event_id.as_bytes())
}

/// The notification an event of the log makes, if any. The event must carry its state after
/// it (`read_batch_with_states`).
pub fn notification_of(event: &BatchEvent) -> Result<Option<Notification>, serde_json::Error> {
    let state = event.state_after.as_ref();
    let Some(kind) = NotificationType::of(&event.event, state) else {
        return Ok(None);
    };
    let Some((environment, subject)) = state.and_then(|state| subject(event.stream_id, state))
    else {
        return Ok(None);
    };
    let id = notification_id(event.event_id);
    let (event_type, payload) = match &event.event {
        DomainEvent::Payment(inner) => (inner.event_type(), inner.to_payload()),
        DomainEvent::Settlement(inner) => (inner.event_type(), inner.to_payload()),
        DomainEvent::Reconciliation(inner) => (inner.event_type(), inner.to_payload()),
    };
    let payload = payload.map_err(|error| serde_json::Error::io(std::io::Error::other(error)))?;
    let (subject_key, subject_value) = subject;
    let body = json!({
        "id": id,
        "type": kind.as_str(),
        "created": event.recorded_at.timestamp(),
        "environment": environment.as_str(),
        "position": event.position,
        "data": {
            "version": DATA_VERSION,
            "event": {
                "id": event.event_id,
                "type": event_type,
                "stream_id": event.stream_id,
                "stream_version": state.map_or(0, StreamState::version),
                "occurred_at": event.occurred_at,
                "recorded_at": event.recorded_at,
                "payload": payload,
            },
            subject_key: subject_value,
        },
    });
    Ok(Some(Notification {
        id,
        kind,
        environment,
        position: event.position,
        subject_id: event.stream_id,
        body: serde_json::to_string(&body)?,
    }))
}

fn money(amount: Money) -> Value {
    json!({ "amount": amount.amount().to_string(), "currency": amount.currency().code() })
}

/// The environment and the `data` entry of the stream's state.
fn subject(stream_id: Uuid, state: &StreamState) -> Option<(Environment, (&'static str, Value))> {
    match state {
        StreamState::Payment(state) => payment(stream_id, state),
        StreamState::Settlement(state) => settlement_batch(stream_id, state),
        StreamState::Reconciliation(state) => reconciliation_run(stream_id, state),
    }
}

fn payment(stream_id: Uuid, state: &PaymentState) -> Option<(Environment, (&'static str, Value))> {
    let payment = state.payment.as_ref()?;
    let mut view = serde_json::to_value(payment).ok()?;
    if let Value::Object(fields) = &mut view {
        fields.insert("id".into(), json!(stream_id));
        fields.insert("version".into(), json!(state.version));
        fields.insert("status".into(), json!(payment.status().as_str()));
        fields.insert(
            "authorized_amount".into(),
            money(payment.authorized_amount()),
        );
        fields.insert("captured_amount".into(), money(payment.captured_amount()));
        fields.insert("refunded_amount".into(), money(payment.refunded_amount()));
        fields.insert(
            "refund_pending_amount".into(),
            money(payment.refund_pending_amount()),
        );
        fields.insert("disputed_amount".into(), money(payment.disputed_amount()));
        fields.insert(
            "refundable_amount".into(),
            money(payment.refundable_amount()),
        );
        fields.insert(
            "capturable_amount".into(),
            money(payment.capturable_amount()),
        );
    }
    Some((payment.environment, ("payment", view)))
}

/// A batch without its items (up to 2,000 of them are in the read model and the API).
fn settlement_batch(
    stream_id: Uuid,
    state: &SettlementBatchState,
) -> Option<(Environment, (&'static str, Value))> {
    let batch = state.batch.as_ref()?;
    let payouts: Vec<Value> = batch
        .payouts
        .iter()
        .map(|payout| {
            json!({
                "payout_id": payout.payout_id.to_string(),
                "amount": money(payout.amount),
                "expected_arrival_date": payout.expected_arrival_date,
                "status": payout.status.as_str(),
                "failure_reason": payout.failure_reason.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    let view = json!({
        "id": stream_id,
        "version": state.version,
        "merchant_id": batch.merchant_id.to_string(),
        "currency": batch.currency.code(),
        "item_count": batch.item_count,
        "gross": money(batch.gross),
        "fees": money(batch.fees),
        "reserve": money(batch.reserve),
        "net": money(batch.net),
        "payouts": payouts,
    });
    Some((batch.environment, ("settlement_batch", view)))
}

/// A run with its counts (its exceptions are listed by the API).
fn reconciliation_run(
    stream_id: Uuid,
    state: &ReconciliationRunState,
) -> Option<(Environment, (&'static str, Value))> {
    let run = state.run.as_ref()?;
    let view = json!({
        "id": stream_id,
        "version": state.version,
        "status": run.status.as_str(),
        "source": serde_json::to_value(run.started.source).ok(),
        "file_sha256": run.started.file_sha256,
        "exceptions": run.exceptions.len(),
        "unresolved_exceptions": run.unresolved_exceptions().len(),
        "payouts": run.payouts.len(),
        "summary": serde_json::to_value(&run.summary).ok(),
    });
    Some((run.started.environment, ("reconciliation_run", view)))
}
