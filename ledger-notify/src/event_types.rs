//! Notification types (interfaces.md, "Outbound notifications") and which ledger event makes
//! which. An endpoint subscribes to types or to `*`.

use std::fmt;
use std::str::FromStr;

use ledger_core::payment::PaymentEvent;
use ledger_core::reconciliation::ReconciliationEvent;
use ledger_core::settlement::SettlementEvent;
use ledger_projections::stream_states::{DomainEvent, StreamState};

/// Every notification type with its name, in one table.
pub const TYPES: &[&str] = &[
    "payment.initiated",
    "payment.authorized",
    "payment.declined",
    "payment.captured",
    "payment.voided",
    "payment.expired",
    "payment.refund_succeeded",
    "payment.refund_failed",
    "payment.disputed",
    "payment.dispute_won",
    "payment.dispute_lost",
    "payment.settled",
    "settlement_batch.recorded",
    "payout.initiated",
    "payout.paid",
    "payout.failed",
    "reconciliation.completed",
    "reconciliation.exception_found",
];

/// What an endpoint subscribes to.
pub const ALL_TYPES: &str = "*";

/// One notification type, by its name in [`TYPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationType(&'static str);

impl NotificationType {
    pub fn as_str(self) -> &'static str {
        self.0
    }

    fn named(name: &str) -> Option<NotificationType> {
        TYPES
            .iter()
            .find(|known| **known == name)
            .map(|known| NotificationType(known))
    }

    /// The notification a ledger event makes, given its stream's state after it; `None` for
    /// events nobody is told about (a refund requested, evidence submitted, a failed capture
    /// attempt, a run's bookkeeping).
    pub fn of(event: &DomainEvent, state_after: Option<&StreamState>) -> Option<NotificationType> {
        let name = match event {
            DomainEvent::Payment(event) => match event {
                PaymentEvent::PaymentInitiated(_) => "payment.initiated",
                PaymentEvent::PaymentAuthorized(_) => "payment.authorized",
                PaymentEvent::PaymentDeclined(_) => "payment.declined",
                PaymentEvent::PaymentCaptured(_) => "payment.captured",
                PaymentEvent::AuthorizationVoided(_) => "payment.voided",
                PaymentEvent::AuthorizationExpired(_) => "payment.expired",
                PaymentEvent::RefundSucceeded(_) => "payment.refund_succeeded",
                PaymentEvent::RefundFailed(_) => "payment.refund_failed",
                PaymentEvent::DisputeOpened(_) => "payment.disputed",
                PaymentEvent::DisputeWon(_) => "payment.dispute_won",
                PaymentEvent::DisputeLost(_) => "payment.dispute_lost",
                PaymentEvent::CaptureSettled(_)
                | PaymentEvent::RefundSettled(_)
                | PaymentEvent::DisputeSettled(_) => "payment.settled",
                PaymentEvent::CaptureFailed(_)
                | PaymentEvent::RefundRequested(_)
                | PaymentEvent::DisputeEvidenceSubmitted(_) => return None,
            },
            DomainEvent::Settlement(event) => match event {
                // A batch is recorded as a header and its items in one append: it is told
                // once, by the event that completes it, so its state is whole.
                SettlementEvent::SettlementBatchRecorded(_)
                | SettlementEvent::SettlementItemsAdded(_) => match state_after {
                    Some(StreamState::Settlement(state))
                        if state.batch.as_ref().is_some_and(|batch| {
                            batch.is_complete() && last_part(event, batch.item_count)
                        }) =>
                    {
                        "settlement_batch.recorded"
                    }
                    _ => return None,
                },
                SettlementEvent::PayoutInitiated(_) => "payout.initiated",
                SettlementEvent::PayoutPaid(_) => "payout.paid",
                SettlementEvent::PayoutFailed(_) => "payout.failed",
            },
            DomainEvent::Reconciliation(event) => match event {
                ReconciliationEvent::ReconciliationRunCompleted(_) => "reconciliation.completed",
                ReconciliationEvent::ReconciliationExceptionsFound(_) => {
                    "reconciliation.exception_found"
                }
                ReconciliationEvent::ReconciliationRunStarted(_)
                | ReconciliationEvent::PayoutReconciled(_)
                | ReconciliationEvent::ReconciliationExceptionResolved(_) => return None,
            },
        };
        NotificationType::named(name)
    }
}

/// Whether this header or items event is the one that completes its batch: a header with no
/// separate items (none, or a v1 header carrying them inline), or an items event (the batch is
/// complete only after the last one).
fn last_part(event: &SettlementEvent, item_count: usize) -> bool {
    match event {
        SettlementEvent::SettlementBatchRecorded(header) => {
            item_count == 0 || !header.items.is_empty()
        }
        _ => true,
    }
}

impl fmt::Display for NotificationType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.0)
    }
}

impl FromStr for NotificationType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        NotificationType::named(text).ok_or_else(|| {
            format!(
                "unknown event type {:?}: expected `*` or one of {}",
                text.chars().take(64).collect::<String>(),
                TYPES.join(", ")
            )
        })
    }
}

/// Whether an endpoint subscribed to `subscribed` wants `kind`.
pub fn wants(subscribed: &[String], kind: NotificationType) -> bool {
    subscribed
        .iter()
        .any(|name| name == ALL_TYPES || name == kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for name in TYPES {
            assert_eq!(name.parse::<NotificationType>().unwrap().as_str(), *name);
        }
        assert!("payment.refunded".parse::<NotificationType>().is_err());
    }

    #[test]
    fn star_wants_everything() {
        let captured: NotificationType = "payment.captured".parse().unwrap();
        assert!(wants(&["*".to_owned()], captured));
        assert!(wants(&["payment.captured".to_owned()], captured));
        assert!(!wants(&["payment.voided".to_owned()], captured));
    }
}
