//! The settlement rules, including the one decision that spans streams: recording a batch
//! also records, on every payment it names, that the item is settled. Either every stream
//! accepts, or the whole batch is refused.

use std::collections::{BTreeMap, BTreeSet};

use super::command::{
    BatchItem, PayoutUpdate, RecordPayout, RecordSettlementBatch, SettlementCommand,
};
use super::event::{
    PayoutFailed, PayoutInitiated, PayoutPaid, SettlementBatchRecorded, SettlementEvent,
    SettlementItem, SettlementItemsAdded, SETTLEMENT_ITEMS_PER_EVENT,
};
use super::state::{PayoutStatus, SettlementBatch, SettlementBatchState};
use crate::error::{AmountMismatch, DomainError};
use crate::ids::PaymentId;
use crate::money::Money;
use crate::payment::{self, Payment, PaymentEvent, PaymentState, SettlePaymentItem, SettledItem};

/// The most items one batch may settle: it is one atomic append across all their payments.
pub const MAX_SETTLEMENT_ITEMS: usize = 2_000;

/// The most events recording one batch appends to the batch's own stream: its header and its
/// items in events of [`SETTLEMENT_ITEMS_PER_EVENT`].
pub const MAX_SETTLEMENT_BATCH_EVENTS: usize =
    1 + MAX_SETTLEMENT_ITEMS.div_ceil(SETTLEMENT_ITEMS_PER_EVENT);

/// Events for the batch stream and for each payment stream the batch names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SettlementDecision {
    pub batch_events: Vec<SettlementEvent>,
    pub payment_events: BTreeMap<PaymentId, Vec<PaymentEvent>>,
}

/// Decides a settlement command. `payments` holds the current state of every payment the
/// command names (a missing entry means the payment does not exist); payouts need none. In
/// debug builds, asserts that the batch and the payments the decision leaves still satisfy
/// every invariant ([`super::invariants`]).
pub fn decide(
    state: &SettlementBatchState,
    payments: &BTreeMap<PaymentId, PaymentState>,
    command: &SettlementCommand,
) -> Result<SettlementDecision, DomainError> {
    let decision = decide_unchecked(state, payments, command)?;
    if cfg!(debug_assertions) {
        let checked = super::invariants::check_decision(state, payments, command, &decision);
        debug_assert!(checked.is_ok(), "{command:?} broke {checked:?}");
    }
    Ok(decision)
}

fn decide_unchecked(
    state: &SettlementBatchState,
    payments: &BTreeMap<PaymentId, PaymentState>,
    command: &SettlementCommand,
) -> Result<SettlementDecision, DomainError> {
    match command {
        SettlementCommand::RecordBatch(record) => record_batch(state, payments, record),
        SettlementCommand::RecordPayout(payout) => {
            let batch = state
                .batch
                .as_ref()
                .ok_or(DomainError::SettlementBatchNotFound)?;
            Ok(SettlementDecision {
                batch_events: record_payout(batch, payout)?,
                payment_events: BTreeMap::new(),
            })
        }
    }
}

/// The payment ids a command needs loaded before it can be decided.
pub fn payments_named(command: &SettlementCommand) -> BTreeSet<PaymentId> {
    match command {
        SettlementCommand::RecordBatch(record) => {
            record.items.iter().map(|item| item.payment_id).collect()
        }
        SettlementCommand::RecordPayout(_) => BTreeSet::new(),
    }
}

fn record_batch(
    state: &SettlementBatchState,
    payments: &BTreeMap<PaymentId, PaymentState>,
    command: &RecordSettlementBatch,
) -> Result<SettlementDecision, DomainError> {
    if state.batch.is_some() {
        return Err(DomainError::SettlementBatchAlreadyRecorded);
    }
    if command.items.is_empty() {
        return Err(DomainError::SettlementBatchEmpty);
    }
    if command.items.len() > MAX_SETTLEMENT_ITEMS {
        return Err(DomainError::SettlementBatchTooLarge {
            limit: MAX_SETTLEMENT_ITEMS,
        });
    }
    let currency = command.currency;
    let reserve = command.reserve.unwrap_or_else(|| Money::zero(currency));
    non_negative_in(currency, reserve)?;

    let mut seen = BTreeSet::new();
    let mut working: BTreeMap<PaymentId, PaymentState> = BTreeMap::new();
    let mut payment_events: BTreeMap<PaymentId, Vec<PaymentEvent>> = BTreeMap::new();
    let mut items = Vec::with_capacity(command.items.len());
    for item in &command.items {
        if !seen.insert((item.payment_id, item.item.clone())) {
            return Err(DomainError::DuplicateSettlementItem {
                payment_id: item.payment_id,
                kind: item.item.kind(),
                item_id: item.item.item_id().to_owned(),
            });
        }
        non_negative_in(currency, item.fee)?;
        non_negative_in(currency, item.gross.money())?;
        if !matches!(item.item, SettledItem::Capture(_)) {
            // A refund or dispute takes its gross and its fee out together, and the journal
            // posts their sum: past the range of amounts it is refused, not posted wrong.
            item.gross.money().checked_add(item.fee)?;
        }
        let payment_state = working
            .remove(&item.payment_id)
            .or_else(|| payments.get(&item.payment_id).cloned())
            .unwrap_or_default();
        let events = settle_on_payment(command, &payment_state, item)?;
        let payment_state = events.iter().fold(payment_state, payment::evolve);
        working.insert(item.payment_id, payment_state);
        payment_events
            .entry(item.payment_id)
            .or_default()
            .extend(events);
        items.push(SettlementItem {
            payment_id: item.payment_id,
            item: item.item.clone(),
            gross: item.gross.money(),
            fee: item.fee,
        });
    }
    let gross = total(currency, items.iter().map(SettlementItem::signed_gross))?;
    let fees = total(currency, items.iter().map(|item| item.fee))?;
    let net = gross.checked_sub(fees)?.checked_sub(reserve)?;
    let item_count =
        u32::try_from(items.len()).map_err(|_| DomainError::SettlementBatchTooLarge {
            limit: MAX_SETTLEMENT_ITEMS,
        })?;
    let recorded = SettlementBatchRecorded {
        merchant_id: command.merchant_id.clone(),
        environment: command.environment,
        currency,
        item_count,
        items: Vec::new(),
        gross,
        fees,
        reserve,
        net,
    };
    Ok(SettlementDecision {
        batch_events: batch_events(recorded, &items),
        payment_events,
    })
}

/// The header of a batch, then its items in events of at most [`SETTLEMENT_ITEMS_PER_EVENT`]:
/// one event holding a whole batch would outgrow the store's cap on a payload long before
/// [`MAX_SETTLEMENT_ITEMS`]. They are appended together, so no reader of the log sees a
/// batch without its items unless it stops inside that append.
fn batch_events(
    recorded: SettlementBatchRecorded,
    items: &[SettlementItem],
) -> Vec<SettlementEvent> {
    let mut events = Vec::with_capacity(1 + items.len().div_ceil(SETTLEMENT_ITEMS_PER_EVENT));
    events.push(SettlementEvent::SettlementBatchRecorded(recorded));
    events.extend(items.chunks(SETTLEMENT_ITEMS_PER_EVENT).map(|chunk| {
        SettlementEvent::SettlementItemsAdded(SettlementItemsAdded {
            items: chunk.to_vec(),
        })
    }));
    events
}

/// Checks one item against its payment and returns the Settled event for it.
fn settle_on_payment(
    command: &RecordSettlementBatch,
    payment_state: &PaymentState,
    item: &BatchItem,
) -> Result<Vec<PaymentEvent>, DomainError> {
    let Some(payment) = &payment_state.payment else {
        return Err(DomainError::SettlementItemNotFound {
            payment_id: item.payment_id,
            kind: item.item.kind(),
            item_id: item.item.item_id().to_owned(),
        });
    };
    if payment.merchant_id != command.merchant_id
        || payment.environment != command.environment
        || payment.currency() != command.currency
    {
        return Err(DomainError::SettlementPaymentMismatch {
            payment_id: item.payment_id,
        });
    }
    let settle = payment::PaymentCommand::Settle(SettlePaymentItem {
        payment_id: item.payment_id,
        batch_id: command.batch_id,
        item: item.item.clone(),
    });
    let events = payment::decide(payment_state, &settle)?;
    check_item_amounts(payment, item)?;
    Ok(events)
}

/// The batch's figures must be the ledger's: a capture settles for what was captured, a refund
/// for what was refunded, a dispute for its amount and the dispute fee recorded when it opened.
fn check_item_amounts(payment: &Payment, item: &BatchItem) -> Result<(), DomainError> {
    let (recorded_gross, recorded_fee) = match &item.item {
        SettledItem::Capture(id) => (payment.capture(id).map(|capture| capture.amount), None),
        SettledItem::Refund(id) => (payment.refund(id).map(|refund| refund.amount), None),
        SettledItem::Dispute(id) => {
            let dispute = payment.dispute(id);
            (
                dispute.map(|dispute| dispute.amount),
                dispute.map(|dispute| dispute.fee),
            )
        }
    };
    let mismatch = |field: &'static str, stated: Money, recorded: Money| {
        DomainError::SettlementItemAmountMismatch(Box::new(AmountMismatch {
            payment_id: item.payment_id,
            kind: item.item.kind(),
            item_id: item.item.item_id().to_owned(),
            field,
            stated,
            recorded,
        }))
    };
    if let Some(recorded) = recorded_gross {
        if recorded != item.gross.money() {
            return Err(mismatch("gross", item.gross.money(), recorded));
        }
    }
    if let Some(recorded) = recorded_fee {
        if recorded != item.fee {
            return Err(mismatch("fee", item.fee, recorded));
        }
    }
    Ok(())
}

fn non_negative_in(currency: crate::currency::Currency, amount: Money) -> Result<(), DomainError> {
    if amount.currency() != currency {
        return Err(DomainError::CurrencyMismatch {
            expected: currency,
            actual: amount.currency(),
        });
    }
    if amount.is_negative() {
        return Err(DomainError::NegativeSettlementAmount { amount });
    }
    Ok(())
}

fn total(
    currency: crate::currency::Currency,
    amounts: impl Iterator<Item = Money>,
) -> Result<Money, DomainError> {
    amounts
        .into_iter()
        .try_fold(Money::zero(currency), |sum, amount| sum.checked_add(amount))
        .map_err(DomainError::from)
}

/// A payout moves the batch's positive net to the bank. One payout may be under way at a time;
/// after a failure the gateway retries with a new payout. A PAID or FAILED report for a payout
/// the ledger has not seen initiated records the initiation first, so a missed webhook does not
/// leave money unaccounted.
fn record_payout(
    batch: &SettlementBatch,
    command: &RecordPayout,
) -> Result<Vec<SettlementEvent>, DomainError> {
    let amount = command.amount.money();
    if amount.currency() != batch.currency {
        return Err(DomainError::CurrencyMismatch {
            expected: batch.currency,
            actual: amount.currency(),
        });
    }
    if !batch.net.is_positive() {
        return Err(DomainError::NothingToPayOut { net: batch.net });
    }
    if amount != batch.net {
        return Err(DomainError::PayoutAmountDiffersFromNet {
            payout: amount,
            net: batch.net,
        });
    }
    let payout_id = command.payout_id.clone();
    let existing = batch.payout(&payout_id);
    let initiated = || {
        SettlementEvent::PayoutInitiated(PayoutInitiated {
            payout_id: payout_id.clone(),
            amount,
            expected_arrival_date: match &command.update {
                PayoutUpdate::Initiated {
                    expected_arrival_date,
                } => *expected_arrival_date,
                _ => None,
            },
        })
    };
    let mut events = Vec::new();
    match existing {
        Some(payout) if payout.status == PayoutStatus::InTransit => {
            if matches!(command.update, PayoutUpdate::Initiated { .. }) {
                return Err(DomainError::PayoutAlreadyInitiated { payout_id });
            }
        }
        Some(_) => return Err(DomainError::PayoutNotInTransit { payout_id }),
        None => {
            if let Some(active) = batch.active_payout() {
                return Err(DomainError::PayoutAlreadyInitiated {
                    payout_id: active.payout_id.clone(),
                });
            }
            events.push(initiated());
        }
    }
    match &command.update {
        PayoutUpdate::Initiated { .. } => {}
        PayoutUpdate::Paid => events.push(SettlementEvent::PayoutPaid(PayoutPaid {
            payout_id: payout_id.clone(),
            amount,
        })),
        PayoutUpdate::Failed { failure_reason } => {
            events.push(SettlementEvent::PayoutFailed(PayoutFailed {
                payout_id: payout_id.clone(),
                amount,
                reason: failure_reason.clone(),
            }))
        }
    }
    Ok(events)
}
