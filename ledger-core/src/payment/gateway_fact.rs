//! Gateway facts: what a payment gateway reports (a PaymentIntent authorized, a charge
//! captured, a refund failed) arrives as the full ordered list of commands that a ledger which
//! had seen nothing of the payment would need, in any order and any number of times. This
//! module holds the rules that make such a list safe to apply to the payment as it is: which
//! refusals mean "the ledger already has this", which mean "an earlier fact has not arrived
//! yet", and [`decide_fact`], the pure loop that decides a fact's commands in order.
//!
//! Three kinds of refusal of one of the fact's commands:
//! - [`RefusalKind::AlreadyApplied`]: the payment already holds what the command records:
//!   the payment exists (`payment_already_exists`), its authorization outcome is recorded
//!   (`authorization_already_recorded`), the capture, refund or dispute id is known
//!   (`duplicate_capture_id`, `duplicate_refund_id`, `duplicate_dispute_id`), the refund or
//!   dispute is resolved with the same outcome (`refund_already_resolved`,
//!   `dispute_already_resolved`; a refund reported failed after it succeeded is a conflict), the evidence
//!   stage is past (`dispute_not_awaiting_evidence`), a decline or void reaches a payment
//!   already closed, or an approval reaches a voided payment (a gateway never reopens a
//!   canceled authorization, so the approval is older news). Skip it.
//! - [`RefusalKind::AwaitsEarlierFact`]: the fact arrived before one it depends on (no
//!   payment yet, a refund or dispute of a payment not captured yet). Record nothing; the
//!   gateway adapter parks the fact until its payment moves.
//! - [`RefusalKind::Conflict`]: the gateway and the ledger disagree (a PaymentIntent that
//!   succeeds after the ledger recorded its decline, a refund above the refundable amount).
//!   Record nothing; keep the fact for a person to look at.
//!
//! "Already applied" is read from the state, not from the rule name alone: [`super::decide`]
//! checks a payment's status before an item's id, so a repeated final capture is refused as
//! `payment_not_capturable` and a repeated refund of a fully refunded payment as
//! `payment_fully_refunded`; and `payment_is_final` refuses a stale decline (skip) and a
//! success after a decline (conflict) alike.
//!
//! The Stripe adapter (`ledger-stripe`) maps events to facts and decides them with
//! [`decide_fact`] inside the store's command handler, on the payment as the log holds it.

use crate::error::DomainError;
use crate::payment::state::{Authorization, DisputeStatus, RefundStatus};
use crate::payment::{
    decide, evolve, PaymentCommand, PaymentEvent, PaymentState, PaymentStatus, RecordAuthorization,
    RefundOutcome,
};

/// How to treat a mapped command that the ledger refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    AlreadyApplied,
    AwaitsEarlierFact,
    Conflict,
}

/// Classifies `error`, the refusal of `command` by a payment in `state`.
pub fn classify_refusal(
    state: &PaymentState,
    command: &PaymentCommand,
    error: &DomainError,
) -> RefusalKind {
    if effect_already_recorded(state, command) {
        return RefusalKind::AlreadyApplied;
    }
    match error {
        DomainError::PaymentNotFound
        | DomainError::RefundNotFound { .. }
        | DomainError::DisputeNotFound { .. } => RefusalKind::AwaitsEarlierFact,
        DomainError::PaymentNotCapturable { status }
        | DomainError::PaymentNotRefundable { status }
        | DomainError::PaymentNotDisputable { status }
            if matches!(status, PaymentStatus::Initiated | PaymentStatus::Authorized) =>
        {
            RefusalKind::AwaitsEarlierFact
        }
        _ => RefusalKind::Conflict,
    }
}

/// Whether `error` only says that the ledger already holds what `command` records.
pub fn is_already_applied(
    state: &PaymentState,
    command: &PaymentCommand,
    error: &DomainError,
) -> bool {
    classify_refusal(state, command, error) == RefusalKind::AlreadyApplied
}

/// Whether the payment already holds the command's effect, whatever rule refused it.
pub fn effect_already_recorded(state: &PaymentState, command: &PaymentCommand) -> bool {
    let Some(payment) = state.payment.as_ref() else {
        return false;
    };
    let closed_without_capture = matches!(
        payment.status(),
        PaymentStatus::Declined | PaymentStatus::Voided | PaymentStatus::Expired
    );
    match command {
        PaymentCommand::Initiate(_) => true,
        // Stripe never reopens a canceled PaymentIntent, so an approval reaching a voided or
        // expired payment is older news. After a decline it is not: the customer may have
        // retried with another card, which the ledger cannot record on this payment.
        PaymentCommand::RecordAuthorization(RecordAuthorization::Approved { .. }) => {
            matches!(payment.authorization, Authorization::Approved { .. })
                || matches!(
                    payment.status(),
                    PaymentStatus::Voided | PaymentStatus::Expired
                )
        }
        // A decline reported after the outcome is known, or after the payment closed in any
        // way, changes nothing.
        PaymentCommand::RecordAuthorization(RecordAuthorization::Declined { .. }) => {
            closed_without_capture || !matches!(payment.authorization, Authorization::Pending)
        }
        PaymentCommand::Void(_) => closed_without_capture,
        PaymentCommand::Capture(capture) => payment.capture(&capture.capture_id).is_some(),
        PaymentCommand::Refund(refund) => payment.refund(&refund.refund_id).is_some(),
        // Only the same outcome again is older news. A refund the gateway reports failed after
        // it succeeded (a closed card: Stripe's …5126), or succeeded after it failed, is a
        // disagreement about money already moved: a conflict for a person, whichever of the
        // two the ledger heard first.
        PaymentCommand::RecordRefundOutcome(outcome) => payment
            .refund(&outcome.refund_id)
            .is_some_and(|refund| match outcome.outcome {
                RefundOutcome::Succeeded => refund.status == RefundStatus::Succeeded,
                RefundOutcome::Failed { .. } => refund.status == RefundStatus::Failed,
            }),
        PaymentCommand::OpenDispute(open) => payment.dispute(&open.dispute_id).is_some(),
        PaymentCommand::SubmitDisputeEvidence(evidence) => payment
            .dispute(&evidence.dispute_id)
            .is_some_and(|dispute| dispute.status != DisputeStatus::NeedsResponse),
        PaymentCommand::ResolveDispute(resolve) => payment
            .dispute(&resolve.dispute_id)
            .is_some_and(|dispute| dispute.is_resolved()),
        PaymentCommand::RecordCaptureFailure(_)
        | PaymentCommand::Expire(_)
        | PaymentCommand::Settle(_) => false,
    }
}

/// The refusal that stopped a fact: nothing of it may be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactRefused {
    /// The position of the refused command in the fact's list.
    pub command_index: usize,
    pub error: DomainError,
    /// [`RefusalKind::AwaitsEarlierFact`] or [`RefusalKind::Conflict`].
    pub kind: RefusalKind,
}

/// Decides a fact's commands in order against a payment, skipping those already applied.
/// Returns the new events to append in one transaction (none when the ledger already holds
/// everything), or the first refusal that is not a skip, in which case nothing is appended.
pub fn decide_fact(
    state: &PaymentState,
    commands: &[PaymentCommand],
) -> Result<Vec<PaymentEvent>, FactRefused> {
    let mut state = state.clone();
    let mut events = Vec::new();
    for (command_index, command) in commands.iter().enumerate() {
        match decide(&state, command) {
            Ok(new_events) => {
                state = new_events.iter().fold(state, evolve);
                events.extend(new_events);
            }
            Err(error) => match classify_refusal(&state, command, &error) {
                RefusalKind::AlreadyApplied => {}
                kind => {
                    return Err(FactRefused {
                        command_index,
                        error,
                        kind,
                    })
                }
            },
        }
    }
    Ok(events)
}
