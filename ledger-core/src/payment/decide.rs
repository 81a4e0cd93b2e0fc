//! `decide`: the payment rules. Given the state and a command, either the events that record
//! it or the rule it breaks. Nothing here reads a clock, a database or a network.

use super::command::{
    CapturePayment, DisputeOutcome, ExpireAuthorization, InitiatePayment, OpenDispute,
    PaymentCommand, RecordAuthorization, RecordCaptureFailure, RecordRefundOutcome, RefundOutcome,
    RefundPayment, ResolveDispute, SettlePaymentItem, SettledItem, SubmitDisputeEvidence,
    VoidPayment,
};
use super::decline::DeclineCategory;
use super::event::*;
use super::state::{
    Authorization, DisputeStatus, Payment, PaymentState, PaymentStatus, RefundStatus,
};
use crate::error::DomainError;
use crate::ids::CaptureId;
use crate::money::{Money, PositiveMoney};
use crate::text::ShortText;

/// Captures one payment may hold; real multicapture stays far below.
pub const MAX_CAPTURES_PER_PAYMENT: usize = 50;
/// Failed capture attempts one payment may record.
pub const MAX_FAILED_CAPTURES_PER_PAYMENT: usize = 50;
/// Refunds one payment may hold.
pub const MAX_REFUNDS_PER_PAYMENT: usize = 50;
/// Disputes one payment may hold.
pub const MAX_DISPUTES_PER_PAYMENT: usize = 10;
/// Evidence submissions per dispute.
pub const MAX_EVIDENCE_SUBMISSIONS_PER_DISPUTE: usize = 10;
/// The largest evidence document, in bytes of JSON.
pub const MAX_EVIDENCE_BYTES: usize = 16 * 1024;

/// The capture id given to the capture an AUTOMATIC payment makes when it is authorized.
pub const AUTOMATIC_CAPTURE_ID: &str = "automatic";

type Decision = Result<Vec<PaymentEvent>, DomainError>;

/// Decides a command against a payment's state. In debug builds, asserts that the state the
/// events lead to still satisfies every invariant.
pub fn decide(state: &PaymentState, command: &PaymentCommand) -> Decision {
    let events = decide_unchecked(state, command)?;
    if cfg!(debug_assertions) {
        let after = events.iter().fold(state.clone(), super::state::evolve);
        let checked = super::invariants::check(&after);
        debug_assert!(checked.is_ok(), "{command:?} broke {checked:?}");
    }
    Ok(events)
}

fn decide_unchecked(state: &PaymentState, command: &PaymentCommand) -> Decision {
    let payment = match (&state.payment, command) {
        (None, PaymentCommand::Initiate(initiate)) => return initiate_payment(initiate),
        (Some(_), PaymentCommand::Initiate(_)) => return Err(DomainError::PaymentAlreadyExists),
        (None, _) => return Err(DomainError::PaymentNotFound),
        (Some(payment), _) => payment,
    };
    if let PaymentCommand::Settle(settle) = command {
        return settle_item(payment, settle);
    }
    let status = payment.status();
    if status.is_final() {
        return Err(DomainError::PaymentIsFinal { status });
    }
    let dispute_command = matches!(
        command,
        PaymentCommand::OpenDispute(_)
            | PaymentCommand::SubmitDisputeEvidence(_)
            | PaymentCommand::ResolveDispute(_)
    );
    if status == PaymentStatus::Refunded && !dispute_command {
        return Err(DomainError::PaymentFullyRefunded);
    }
    match command {
        PaymentCommand::Initiate(_) | PaymentCommand::Settle(_) => Ok(Vec::new()),
        PaymentCommand::RecordAuthorization(authorization) => {
            record_authorization(payment, authorization)
        }
        PaymentCommand::Capture(capture) => capture_payment(payment, capture),
        PaymentCommand::RecordCaptureFailure(failure) => record_capture_failure(payment, failure),
        PaymentCommand::Void(void) => void_payment(payment, void),
        PaymentCommand::Expire(expire) => expire_authorization(payment, expire),
        PaymentCommand::Refund(refund) => refund_payment(payment, refund),
        PaymentCommand::RecordRefundOutcome(outcome) => record_refund_outcome(payment, outcome),
        PaymentCommand::OpenDispute(open) => open_dispute(payment, open),
        PaymentCommand::SubmitDisputeEvidence(evidence) => submit_evidence(payment, evidence),
        PaymentCommand::ResolveDispute(resolve) => resolve_dispute(payment, resolve),
    }
}

fn initiate_payment(command: &InitiatePayment) -> Decision {
    Ok(vec![PaymentEvent::PaymentInitiated(PaymentInitiated {
        merchant_id: command.merchant_id.clone(),
        order_id: command.order_id.clone(),
        environment: command.environment,
        amount: command.amount.money(),
        capture_mode: command.capture_mode,
        payment_method: command.payment_method.clone(),
    })])
}

fn same_currency(payment: &Payment, amount: Money) -> Result<(), DomainError> {
    if amount.currency() == payment.currency() {
        Ok(())
    } else {
        Err(DomainError::CurrencyMismatch {
            expected: payment.currency(),
            actual: amount.currency(),
        })
    }
}

fn at_most(
    payment: &Payment,
    requested: PositiveMoney,
    limit: Money,
    error: impl FnOnce(Money, Money) -> DomainError,
) -> Result<Money, DomainError> {
    same_currency(payment, requested.money())?;
    if requested.amount() > limit.amount() {
        return Err(error(requested.money(), limit));
    }
    Ok(requested.money())
}

fn record_authorization(payment: &Payment, command: &RecordAuthorization) -> Decision {
    if !matches!(payment.authorization, Authorization::Pending) {
        return Err(DomainError::AuthorizationAlreadyRecorded);
    }
    match command {
        RecordAuthorization::Approved {
            authorized_amount,
            authorization_code,
            gateway_reference,
            expires_at,
        } => {
            let authorized = match authorized_amount {
                Some(amount) => at_most(
                    payment,
                    *amount,
                    payment.requested_amount,
                    |authorized, requested| DomainError::AuthorizedExceedsRequested {
                        authorized,
                        requested,
                    },
                )?,
                None => payment.requested_amount,
            };
            let mut events = vec![PaymentEvent::PaymentAuthorized(PaymentAuthorized {
                authorized_amount: authorized,
                authorization_code: authorization_code.clone(),
                gateway_reference: gateway_reference.clone(),
                expires_at: *expires_at,
            })];
            if payment.capture_mode == CaptureMode::Automatic {
                events.push(PaymentEvent::PaymentCaptured(PaymentCaptured {
                    capture_id: CaptureId::parse(AUTOMATIC_CAPTURE_ID).map_err(|_| {
                        DomainError::PaymentNotCapturable {
                            status: payment.status(),
                        }
                    })?,
                    amount: authorized,
                    final_capture: true,
                }));
            }
            Ok(events)
        }
        RecordAuthorization::Declined {
            decline_code,
            category,
            retry_may_help,
        } => {
            // Without a code the category is unknown, classified as an unknown code is.
            let category = category.unwrap_or_else(|| {
                DeclineCategory::classify(decline_code.as_ref().map_or("", ShortText::as_str))
            });
            Ok(vec![PaymentEvent::PaymentDeclined(PaymentDeclined {
                decline_code: decline_code.clone(),
                category,
                retry_may_help: retry_may_help.unwrap_or(category.retry_may_help()),
            })])
        }
    }
}

fn capture_payment(payment: &Payment, command: &CapturePayment) -> Decision {
    if !payment.capture_open() {
        return Err(DomainError::PaymentNotCapturable {
            status: payment.status(),
        });
    }
    if payment.capture(&command.capture_id).is_some() {
        return Err(DomainError::DuplicateCaptureId {
            capture_id: command.capture_id.clone(),
        });
    }
    if payment.captures.len() >= MAX_CAPTURES_PER_PAYMENT {
        return Err(DomainError::TooMany {
            kind: "captures",
            limit: MAX_CAPTURES_PER_PAYMENT,
        });
    }
    let capturable = payment.capturable_amount();
    let amount = match command.amount {
        Some(amount) => at_most(payment, amount, capturable, |requested, capturable| {
            DomainError::CaptureExceedsAuthorized {
                requested,
                capturable,
            }
        })?,
        None => capturable,
    };
    Ok(vec![PaymentEvent::PaymentCaptured(PaymentCaptured {
        capture_id: command.capture_id.clone(),
        amount,
        final_capture: command.final_capture,
    })])
}

fn record_capture_failure(payment: &Payment, command: &RecordCaptureFailure) -> Decision {
    if !payment.capture_open() {
        return Err(DomainError::PaymentNotCapturable {
            status: payment.status(),
        });
    }
    same_currency(payment, command.amount.money())?;
    if payment.failed_captures.len() >= MAX_FAILED_CAPTURES_PER_PAYMENT {
        return Err(DomainError::TooMany {
            kind: "failed captures",
            limit: MAX_FAILED_CAPTURES_PER_PAYMENT,
        });
    }
    Ok(vec![PaymentEvent::CaptureFailed(CaptureFailed {
        capture_id: command.capture_id.clone(),
        amount: command.amount.money(),
        reason: command.reason.clone(),
        retryable: command.retryable,
    })])
}

/// A payment can be voided before its authorization is known (the customer gave up) and while
/// its authorization is open; after partial captures, the void releases the uncaptured rest.
fn void_payment(payment: &Payment, command: &VoidPayment) -> Decision {
    let voidable =
        matches!(payment.authorization, Authorization::Pending) || payment.capture_open();
    if !voidable {
        return Err(DomainError::PaymentNotVoidable {
            status: payment.status(),
        });
    }
    Ok(vec![PaymentEvent::AuthorizationVoided(
        AuthorizationVoided {
            reason: command.reason.clone(),
            released_amount: payment.capturable_amount(),
        },
    )])
}

fn expire_authorization(payment: &Payment, command: &ExpireAuthorization) -> Decision {
    if !payment.capture_open() {
        return Err(DomainError::PaymentNotVoidable {
            status: payment.status(),
        });
    }
    let expires_at = match &payment.authorization {
        Authorization::Approved {
            expires_at: Some(expires_at),
            ..
        } => *expires_at,
        _ => return Err(DomainError::AuthorizationHasNoExpiry),
    };
    if command.now < expires_at {
        return Err(DomainError::AuthorizationNotExpired { expires_at });
    }
    Ok(vec![PaymentEvent::AuthorizationExpired(
        AuthorizationExpired {
            released_amount: payment.capturable_amount(),
        },
    )])
}

fn refund_payment(payment: &Payment, command: &RefundPayment) -> Decision {
    if payment.captures.is_empty() {
        return Err(DomainError::PaymentNotRefundable {
            status: payment.status(),
        });
    }
    if payment.refund(&command.refund_id).is_some() {
        return Err(DomainError::DuplicateRefundId {
            refund_id: command.refund_id.clone(),
        });
    }
    if payment.refunds.len() >= MAX_REFUNDS_PER_PAYMENT {
        return Err(DomainError::TooMany {
            kind: "refunds",
            limit: MAX_REFUNDS_PER_PAYMENT,
        });
    }
    let refundable = payment.refundable_amount();
    let amount = match command.amount {
        Some(amount) => at_most(payment, amount, refundable, |requested, refundable| {
            DomainError::RefundExceedsRefundable {
                requested,
                refundable,
            }
        })?,
        None if refundable.is_positive() => refundable,
        None => {
            return Err(DomainError::RefundExceedsRefundable {
                requested: refundable,
                refundable,
            })
        }
    };
    Ok(vec![PaymentEvent::RefundRequested(RefundRequested {
        refund_id: command.refund_id.clone(),
        amount,
        reason: command.reason.clone(),
    })])
}

fn record_refund_outcome(payment: &Payment, command: &RecordRefundOutcome) -> Decision {
    let refund = payment
        .refund(&command.refund_id)
        .ok_or_else(|| DomainError::RefundNotFound {
            refund_id: command.refund_id.clone(),
        })?;
    if refund.status != RefundStatus::Pending {
        return Err(DomainError::RefundAlreadyResolved {
            refund_id: command.refund_id.clone(),
        });
    }
    let event = match &command.outcome {
        RefundOutcome::Succeeded => PaymentEvent::RefundSucceeded(RefundSucceeded {
            refund_id: refund.refund_id.clone(),
            amount: refund.amount,
        }),
        RefundOutcome::Failed { failure_reason } => PaymentEvent::RefundFailed(RefundFailed {
            refund_id: refund.refund_id.clone(),
            amount: refund.amount,
            reason: failure_reason.clone(),
        }),
    };
    Ok(vec![event])
}

fn open_dispute(payment: &Payment, command: &OpenDispute) -> Decision {
    if payment.captures.is_empty() {
        return Err(DomainError::PaymentNotDisputable {
            status: payment.status(),
        });
    }
    if payment.dispute(&command.dispute_id).is_some() {
        return Err(DomainError::DuplicateDisputeId {
            dispute_id: command.dispute_id.clone(),
        });
    }
    if payment.disputes.len() >= MAX_DISPUTES_PER_PAYMENT {
        return Err(DomainError::TooMany {
            kind: "disputes",
            limit: MAX_DISPUTES_PER_PAYMENT,
        });
    }
    let amount = at_most(
        payment,
        command.amount,
        payment.disputable_amount(),
        |requested, disputable| DomainError::DisputeExceedsDisputable {
            requested,
            disputable,
        },
    )?;
    let fee = command
        .fee
        .unwrap_or_else(|| Money::zero(payment.currency()));
    same_currency(payment, fee)?;
    if fee.is_negative() {
        return Err(DomainError::NegativeDisputeFee { fee });
    }
    // The gateway withdraws the amount and the fee together, and the journal posts their sum:
    // a sum past the range of amounts is refused here rather than posted wrong later.
    amount.checked_add(fee)?;
    Ok(vec![PaymentEvent::DisputeOpened(DisputeOpened {
        dispute_id: command.dispute_id.clone(),
        amount,
        reason: command.reason.clone(),
        evidence_due_by: command.evidence_due_by,
        fee,
    })])
}

fn submit_evidence(payment: &Payment, command: &SubmitDisputeEvidence) -> Decision {
    let dispute =
        payment
            .dispute(&command.dispute_id)
            .ok_or_else(|| DomainError::DisputeNotFound {
                dispute_id: command.dispute_id.clone(),
            })?;
    if dispute.status != DisputeStatus::NeedsResponse {
        return Err(DomainError::DisputeNotAwaitingEvidence {
            dispute_id: command.dispute_id.clone(),
        });
    }
    if dispute.evidence.len() >= MAX_EVIDENCE_SUBMISSIONS_PER_DISPUTE {
        return Err(DomainError::TooMany {
            kind: "evidence submissions",
            limit: MAX_EVIDENCE_SUBMISSIONS_PER_DISPUTE,
        });
    }
    let size = serde_json::to_vec(&command.evidence).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_EVIDENCE_BYTES {
        return Err(DomainError::EvidenceTooLarge {
            limit_bytes: MAX_EVIDENCE_BYTES,
        });
    }
    Ok(vec![PaymentEvent::DisputeEvidenceSubmitted(
        DisputeEvidenceSubmitted {
            dispute_id: command.dispute_id.clone(),
            evidence: command.evidence.clone(),
        },
    )])
}

fn resolve_dispute(payment: &Payment, command: &ResolveDispute) -> Decision {
    let dispute =
        payment
            .dispute(&command.dispute_id)
            .ok_or_else(|| DomainError::DisputeNotFound {
                dispute_id: command.dispute_id.clone(),
            })?;
    if dispute.is_resolved() {
        return Err(DomainError::DisputeAlreadyResolved {
            dispute_id: command.dispute_id.clone(),
        });
    }
    let dispute_id = dispute.dispute_id.clone();
    let amount = dispute.amount;
    Ok(vec![match command.outcome {
        DisputeOutcome::Won => PaymentEvent::DisputeWon(DisputeWon { dispute_id, amount }),
        DisputeOutcome::Lost => PaymentEvent::DisputeLost(DisputeLost { dispute_id, amount }),
    }])
}

/// Settlement is bookkeeping of money that already moved, so it is accepted in every status,
/// including fully refunded payments, as long as the item exists, is final and is not settled
/// yet.
fn settle_item(payment: &Payment, command: &SettlePaymentItem) -> Decision {
    let batch_id = command.batch_id;
    let exists = match &command.item {
        SettledItem::Capture(id) => payment.capture(id).is_some(),
        SettledItem::Refund(id) => payment.refund(id).is_some(),
        SettledItem::Dispute(id) => payment.dispute(id).is_some(),
    };
    let describe = |item: &SettledItem| (item.kind(), item.item_id().to_owned());
    if !exists {
        let (kind, item_id) = describe(&command.item);
        return Err(DomainError::SettlementItemNotFound {
            payment_id: command.payment_id,
            kind,
            item_id,
        });
    }
    if payment.settled_in(&command.item).is_some() {
        let (kind, item_id) = describe(&command.item);
        return Err(DomainError::SettlementItemAlreadySettled {
            payment_id: command.payment_id,
            kind,
            item_id,
        });
    }
    let event = match &command.item {
        SettledItem::Capture(capture_id) => PaymentEvent::CaptureSettled(CaptureSettled {
            capture_id: capture_id.clone(),
            batch_id,
        }),
        SettledItem::Refund(refund_id) => {
            let succeeded = payment
                .refund(refund_id)
                .is_some_and(|refund| refund.status == RefundStatus::Succeeded);
            if !succeeded {
                let (kind, item_id) = describe(&command.item);
                return Err(DomainError::SettlementItemNotSettleable {
                    payment_id: command.payment_id,
                    kind,
                    item_id,
                });
            }
            PaymentEvent::RefundSettled(RefundSettled {
                refund_id: refund_id.clone(),
                batch_id,
            })
        }
        SettledItem::Dispute(dispute_id) => PaymentEvent::DisputeSettled(DisputeSettled {
            dispute_id: dispute_id.clone(),
            batch_id,
        }),
    };
    Ok(vec![event])
}
