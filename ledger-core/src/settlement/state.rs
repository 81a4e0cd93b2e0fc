//! A settlement batch as its events have made it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::event::{SettlementEvent, SettlementItem};
use crate::currency::Currency;
use crate::ids::{Environment, MerchantId, PayoutId};
use crate::money::Money;
use crate::stored::stored_names;
use crate::text::ShortText;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayoutStatus {
    InTransit,
    Paid,
    Failed,
}

stored_names!(PayoutStatus, "payout status" {
    InTransit => "IN_TRANSIT",
    Paid => "PAID",
    Failed => "FAILED",
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub payout_id: PayoutId,
    pub amount: Money,
    pub expected_arrival_date: Option<NaiveDate>,
    pub status: PayoutStatus,
    pub failure_reason: Option<ShortText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementBatch {
    pub merchant_id: MerchantId,
    pub environment: Environment,
    pub currency: Currency,
    /// The items the batch was recorded with; `items` holds them all once the append that
    /// recorded the batch is folded whole.
    pub item_count: usize,
    pub items: Vec<SettlementItem>,
    pub gross: Money,
    pub fees: Money,
    pub reserve: Money,
    pub net: Money,
    /// Every payout attempt in order; a failed payout may be followed by a new one.
    pub payouts: Vec<Payout>,
}

impl SettlementBatch {
    /// Whether every item the batch was recorded with has been folded in: only a fold that
    /// stops inside the append that recorded the batch sees it incomplete.
    pub fn is_complete(&self) -> bool {
        self.items.len() == self.item_count
    }

    /// The payout that is under way or done, if any: at most one at a time.
    pub fn active_payout(&self) -> Option<&Payout> {
        self.payouts
            .iter()
            .find(|payout| payout.status != PayoutStatus::Failed)
    }

    pub fn payout(&self, payout_id: &PayoutId) -> Option<&Payout> {
        self.payouts
            .iter()
            .find(|payout| &payout.payout_id == payout_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SettlementBatchState {
    pub batch: Option<SettlementBatch>,
    pub version: u64,
}

/// Applies one event; total, like the payment's `evolve`.
pub fn evolve(mut state: SettlementBatchState, event: &SettlementEvent) -> SettlementBatchState {
    state.version += 1;
    match (&mut state.batch, event) {
        (None, SettlementEvent::SettlementBatchRecorded(recorded)) => {
            state.batch = Some(SettlementBatch {
                merchant_id: recorded.merchant_id.clone(),
                environment: recorded.environment,
                currency: recorded.currency,
                item_count: usize::try_from(recorded.item_count).unwrap_or(usize::MAX),
                items: recorded.items.clone(),
                gross: recorded.gross,
                fees: recorded.fees,
                reserve: recorded.reserve,
                net: recorded.net,
                payouts: Vec::new(),
            });
        }
        (Some(batch), SettlementEvent::SettlementItemsAdded(added)) => {
            batch.items.extend(added.items.iter().cloned());
        }
        (Some(batch), SettlementEvent::PayoutInitiated(initiated)) => batch.payouts.push(Payout {
            payout_id: initiated.payout_id.clone(),
            amount: initiated.amount,
            expected_arrival_date: initiated.expected_arrival_date,
            status: PayoutStatus::InTransit,
            failure_reason: None,
        }),
        (Some(batch), SettlementEvent::PayoutPaid(paid)) => {
            if let Some(payout) = payout_mut(batch, &paid.payout_id) {
                payout.status = PayoutStatus::Paid;
            }
        }
        (Some(batch), SettlementEvent::PayoutFailed(failed)) => {
            if let Some(payout) = payout_mut(batch, &failed.payout_id) {
                payout.status = PayoutStatus::Failed;
                payout.failure_reason = failed.reason.clone();
            }
        }
        _ => {}
    }
    state
}

fn payout_mut<'a>(batch: &'a mut SettlementBatch, payout_id: &PayoutId) -> Option<&'a mut Payout> {
    batch
        .payouts
        .iter_mut()
        .find(|payout| &payout.payout_id == payout_id)
}

pub fn fold<'a>(events: impl IntoIterator<Item = &'a SettlementEvent>) -> SettlementBatchState {
    events
        .into_iter()
        .fold(SettlementBatchState::default(), evolve)
}
