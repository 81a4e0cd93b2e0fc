//! The settlement invariants of domain.md, checked on any folded batch and on each decision.
//! `decide` asserts them in debug builds; the property tests drive it with random batches and
//! payout sequences.
//!
//! On a batch: one currency; an item at most once; no more items than it was recorded with;
//! once they are all there (a fold that stops inside the append recording a batch sees only
//! some), no amount negative, its totals its items' (gross the signed sum, net = gross − fees
//! − reserve), at most one payout under way or done, every payout of the batch's net. On a
//! decision: the batch it records is complete, every item it records is settled, on
//! its payment, in this batch and no other (each capture, refund and dispute debit is settled
//! in exactly one batch), the payments it names are left valid, and every journal entry it
//! yields balances.

use std::collections::{BTreeMap, BTreeSet};

use super::command::SettlementCommand;
use super::decide::SettlementDecision;
use super::event::SettlementItem;
use super::state::{evolve, PayoutStatus, SettlementBatch, SettlementBatchState};
use crate::ids::PaymentId;
use crate::journal;
use crate::money::Money;
use crate::payment::invariants::InvariantViolation;
use crate::payment::{self, PaymentState};

fn violation(text: impl Into<String>) -> Result<(), InvariantViolation> {
    Err(InvariantViolation(text.into()))
}

/// Checks a folded batch.
pub fn check(state: &SettlementBatchState) -> Result<(), InvariantViolation> {
    let Some(batch) = &state.batch else {
        return if state.version == 0 {
            Ok(())
        } else {
            violation("events before SettlementBatchRecorded")
        };
    };
    check_currency(batch)?;
    check_unique_items(batch)?;
    if batch.items.len() > batch.item_count {
        return violation(format!(
            "a batch of {} items holds {}",
            batch.item_count,
            batch.items.len()
        ));
    }
    if !batch.is_complete() {
        // A fold that stops inside the append recording the batch: its totals are those of
        // items still to come, and nothing can have happened to it yet.
        return if batch.payouts.is_empty() {
            Ok(())
        } else {
            violation("a payout of a batch whose items are not all recorded")
        };
    }
    check_totals(batch)?;
    check_payouts(batch)
}

fn check_currency(batch: &SettlementBatch) -> Result<(), InvariantViolation> {
    let amounts = batch
        .items
        .iter()
        .flat_map(|item| [item.gross, item.fee])
        .chain([batch.gross, batch.fees, batch.reserve, batch.net])
        .chain(batch.payouts.iter().map(|payout| payout.amount));
    for amount in amounts {
        if amount.currency() != batch.currency {
            return violation(format!("{amount} in a {} batch", batch.currency));
        }
    }
    Ok(())
}

fn check_totals(batch: &SettlementBatch) -> Result<(), InvariantViolation> {
    let negative = batch
        .items
        .iter()
        .flat_map(|item| [item.gross, item.fee])
        .chain([batch.fees, batch.reserve])
        .find(Money::is_negative);
    if let Some(amount) = negative {
        return violation(format!("negative settlement amount {amount}"));
    }
    let sum = |amounts: &mut dyn Iterator<Item = Money>| {
        let mut total = Money::zero(batch.currency);
        for amount in amounts {
            total = total.checked_add(amount)?;
        }
        Ok::<Money, crate::money::MoneyError>(total)
    };
    let totals = sum(&mut batch.items.iter().map(SettlementItem::signed_gross)).and_then(|gross| {
        let fees = sum(&mut batch.items.iter().map(|item| item.fee))?;
        let net = gross.checked_sub(fees)?.checked_sub(batch.reserve)?;
        Ok((gross, fees, net))
    });
    match totals {
        Err(error) => violation(format!("the batch's totals do not add up: {error}")),
        Ok(totals) if totals != (batch.gross, batch.fees, batch.net) => violation(format!(
            "the batch states gross {}, fees {}, net {}; its items and reserve make {}, {}, {}",
            batch.gross, batch.fees, batch.net, totals.0, totals.1, totals.2
        )),
        Ok(_) => Ok(()),
    }
}

fn check_unique_items(batch: &SettlementBatch) -> Result<(), InvariantViolation> {
    let mut seen = BTreeSet::new();
    match batch
        .items
        .iter()
        .find(|item| !seen.insert((item.payment_id, item.item.clone())))
    {
        Some(item) => violation(format!(
            "{} {} of payment {} is in the batch twice",
            item.item.kind(),
            item.item.item_id(),
            item.payment_id
        )),
        None => Ok(()),
    }
}

fn check_payouts(batch: &SettlementBatch) -> Result<(), InvariantViolation> {
    let active = batch
        .payouts
        .iter()
        .filter(|payout| payout.status != PayoutStatus::Failed)
        .count();
    if active > 1 {
        return violation(format!("{active} payouts under way or paid at once"));
    }
    let mut ids = BTreeSet::new();
    for payout in &batch.payouts {
        if !ids.insert(&payout.payout_id) {
            return violation(format!("payout {} recorded twice", payout.payout_id));
        }
        if payout.amount != batch.net || !payout.amount.is_positive() {
            return violation(format!(
                "payout {} of {} from a batch whose net is {}",
                payout.payout_id, payout.amount, batch.net
            ));
        }
    }
    Ok(())
}

/// Checks a decision: the batch it leaves, the payments it settles and its journal entries.
pub fn check_decision(
    before: &SettlementBatchState,
    payments: &BTreeMap<PaymentId, PaymentState>,
    command: &SettlementCommand,
    decision: &SettlementDecision,
) -> Result<(), InvariantViolation> {
    let mut after = before.clone();
    for event in &decision.batch_events {
        match journal::settlement_entry(&after, event) {
            Err(error) => return violation(format!("{event:?} cannot be posted: {error}")),
            Ok(Some(entry)) if !entry.is_balanced() => {
                return violation(format!("unbalanced journal entry {entry:?}"))
            }
            Ok(_) => {}
        }
        after = evolve(after, event);
    }
    check(&after)?;
    match command {
        SettlementCommand::RecordBatch(record) => {
            check_settled_once(payments, record.batch_id, &after, decision)
        }
        SettlementCommand::RecordPayout(_) if !decision.payment_events.is_empty() => {
            violation("a payout recorded events on payments")
        }
        SettlementCommand::RecordPayout(_) => Ok(()),
    }
}

/// Every item of the recorded batch is settled in this batch on its payment, and the batch
/// touched no payment it does not name.
fn check_settled_once(
    payments: &BTreeMap<PaymentId, PaymentState>,
    batch_id: crate::ids::SettlementBatchId,
    after: &SettlementBatchState,
    decision: &SettlementDecision,
) -> Result<(), InvariantViolation> {
    let Some(batch) = &after.batch else {
        return violation("a recorded batch left no batch");
    };
    if !batch.is_complete() {
        return violation("a recorded batch left items out of its append");
    }
    let named: BTreeSet<PaymentId> = batch.items.iter().map(|item| item.payment_id).collect();
    if decision.payment_events.keys().any(|id| !named.contains(id)) {
        return violation("the batch recorded events on a payment it does not name");
    }
    let mut settled: BTreeMap<PaymentId, PaymentState> = BTreeMap::new();
    for (payment_id, events) in &decision.payment_events {
        let before = payments.get(payment_id).cloned().unwrap_or_default();
        let state = events.iter().fold(before, payment::evolve);
        payment::invariants::check(&state)?;
        settled.insert(*payment_id, state);
    }
    for item in &batch.items {
        let settled_in = settled
            .get(&item.payment_id)
            .and_then(|state| state.payment.as_ref())
            .and_then(|payment| payment.settled_in(&item.item));
        if settled_in != Some(batch_id) {
            return violation(format!(
                "{} {} of payment {} is in the batch but settled in {settled_in:?}",
                item.item.kind(),
                item.item.item_id(),
                item.payment_id
            ));
        }
    }
    Ok(())
}
