//! Double-entry bookkeeping: every event that moves money becomes a journal entry whose
//! postings balance to zero in its currency.
//!
//! # The chart of accounts
//! Accounts are kept per environment, merchant and currency. Debit balances are positive.
//!
//! | event | debit | credit |
//! |---|---|---|
//! | PaymentCaptured X | gateway_pending X | sales X |
//! | RefundSucceeded R | refunds R | gateway_pending R |
//! | DisputeOpened D, fee F | disputes_open D, dispute_fees F | gateway_pending D+F |
//! | DisputeWon D | gateway_pending D | disputes_open D |
//! | DisputeLost D | chargeback_losses D | disputes_open D |
//! | settled capture, gross g, fee f | processing_fees f, gateway_settled g−f | gateway_pending g |
//! | settled refund, gross r, fee f | gateway_pending r, processing_fees f | gateway_settled r+f |
//! | settled dispute, gross d, fee F | gateway_pending d+F | gateway_settled d+F |
//! | batch reserve Rv | gateway_reserve Rv | gateway_settled Rv |
//! | PayoutInitiated P | payouts_in_transit P | gateway_settled P |
//! | PayoutPaid P | bank P | payouts_in_transit P |
//! | PayoutFailed P | gateway_settled P | payouts_in_transit P |
//!
//! This refines domain.md's settlement line (debit processing_fees Fee, gateway_reserve Rv and
//! gateway_settled G−Fee−Rv, credit gateway_pending G) per item so that a dispute's fee, already
//! expensed as dispute_fees when the dispute opened, is not expensed twice when the gateway
//! deducts it in a batch. For a batch without disputes the two charts give the same balances.
//! Authorizations move no money and post nothing; they are holds beside the journal.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::currency::Currency;
use crate::ids::{Environment, MerchantId};
use crate::money::{Money, MoneyError};
use crate::payment::{Payment, PaymentEvent, PaymentState, SettledItem};
use crate::settlement::{SettlementBatchState, SettlementEvent, SettlementItem};
use crate::stored::stored_names;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    /// Money the gateway owes the merchant but has not settled yet.
    GatewayPending,
    Sales,
    Refunds,
    DisputesOpen,
    DisputeFees,
    ChargebackLosses,
    ProcessingFees,
    /// Held back by the gateway as a reserve.
    GatewayReserve,
    /// Settled by the gateway, not yet paid out.
    GatewaySettled,
    PayoutsInTransit,
    Bank,
}

stored_names!(Account, "account" {
    GatewayPending => "gateway_pending",
    Sales => "sales",
    Refunds => "refunds",
    DisputesOpen => "disputes_open",
    DisputeFees => "dispute_fees",
    ChargebackLosses => "chargeback_losses",
    ProcessingFees => "processing_fees",
    GatewayReserve => "gateway_reserve",
    GatewaySettled => "gateway_settled",
    PayoutsInTransit => "payouts_in_transit",
    Bank => "bank",
});

impl fmt::Display for Account {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

stored_names!(Side, "posting side" {
    Debit => "debit",
    Credit => "credit",
});

/// One line of a journal entry; the amount is never negative, the side says which way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Posting {
    pub account: Account,
    pub side: Side,
    pub amount: Money,
}

impl Posting {
    /// Debits count positive, credits negative.
    pub fn signed_amount(&self) -> Decimal {
        match self.side {
            Side::Debit => self.amount.amount(),
            Side::Credit => -self.amount.amount(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    pub environment: Environment,
    pub merchant_id: MerchantId,
    pub currency: Currency,
    pub postings: Vec<Posting>,
}

impl JournalEntry {
    fn new(environment: Environment, merchant_id: &MerchantId, currency: Currency) -> Self {
        JournalEntry {
            environment,
            merchant_id: merchant_id.clone(),
            currency,
            postings: Vec::new(),
        }
    }

    fn debit(mut self, account: Account, amount: Money) -> Self {
        self.post(account, Side::Debit, amount);
        self
    }

    fn credit(mut self, account: Account, amount: Money) -> Self {
        self.post(account, Side::Credit, amount);
        self
    }

    /// Zero postings are left out; a negative amount posts its absolute value on the other
    /// side, which keeps every posting's amount non-negative.
    fn post(&mut self, account: Account, side: Side, amount: Money) {
        if amount.is_zero() {
            return;
        }
        let (side, amount) = if amount.is_negative() {
            let flipped = match side {
                Side::Debit => Side::Credit,
                Side::Credit => Side::Debit,
            };
            (flipped, amount.negate())
        } else {
            (side, amount)
        };
        self.postings.push(Posting {
            account,
            side,
            amount,
        });
    }

    /// Debits equal credits, and every posting is in the entry's currency.
    pub fn is_balanced(&self) -> bool {
        let total: Decimal = self.postings.iter().map(Posting::signed_amount).sum();
        total.is_zero()
            && self
                .postings
                .iter()
                .all(|posting| posting.amount.currency() == self.currency)
    }

    fn finished(self) -> Option<JournalEntry> {
        debug_assert!(self.is_balanced(), "unbalanced journal entry: {self:?}");
        (!self.postings.is_empty()).then_some(self)
    }
}

// The rules refuse a dispute or a settlement item whose amount and fee together leave the
// range, so these fail only on a log that broke them; a wrong posting would hide that.
fn add(left: Money, right: Money) -> Result<Money, MoneyError> {
    left.checked_add(right)
}

fn sub(left: Money, right: Money) -> Result<Money, MoneyError> {
    left.checked_sub(right)
}

/// The journal entry of a payment event, given the state the event was applied to: none for an
/// event that moves no money, an error for one whose posting leaves the range of amounts.
pub fn payment_entry(
    state_before: &PaymentState,
    event: &PaymentEvent,
) -> Result<Option<JournalEntry>, MoneyError> {
    let Some(payment) = state_before.payment.as_ref() else {
        return Ok(None);
    };
    let payment: &Payment = payment;
    let entry = JournalEntry::new(
        payment.environment,
        &payment.merchant_id,
        payment.currency(),
    );
    use Account::*;
    let entry = match event {
        PaymentEvent::PaymentCaptured(captured) => entry
            .debit(GatewayPending, captured.amount)
            .credit(Sales, captured.amount),
        PaymentEvent::RefundSucceeded(succeeded) => entry
            .debit(Refunds, succeeded.amount)
            .credit(GatewayPending, succeeded.amount),
        PaymentEvent::DisputeOpened(opened) => entry
            .debit(DisputesOpen, opened.amount)
            .debit(DisputeFees, opened.fee)
            .credit(GatewayPending, add(opened.amount, opened.fee)?),
        PaymentEvent::DisputeWon(won) => entry
            .debit(GatewayPending, won.amount)
            .credit(DisputesOpen, won.amount),
        PaymentEvent::DisputeLost(lost) => entry
            .debit(ChargebackLosses, lost.amount)
            .credit(DisputesOpen, lost.amount),
        _ => return Ok(None),
    };
    Ok(entry.finished())
}

/// The journal entry of a settlement event, given the state the event was applied to: none for
/// a payout of a batch the state does not hold, an error for a posting past the range.
pub fn settlement_entry(
    state_before: &SettlementBatchState,
    event: &SettlementEvent,
) -> Result<Option<JournalEntry>, MoneyError> {
    use Account::*;
    let entry = match event {
        SettlementEvent::SettlementBatchRecorded(recorded) => {
            let mut entry = JournalEntry::new(
                recorded.environment,
                &recorded.merchant_id,
                recorded.currency,
            );
            // Items a version 1 event carried inline; now they come in SettlementItemsAdded.
            entry = item_postings(entry, &recorded.items)?;
            entry
                .debit(GatewayReserve, recorded.reserve)
                .credit(GatewaySettled, recorded.reserve)
                .finished()
        }
        SettlementEvent::SettlementItemsAdded(added) => {
            let Some(batch) = state_before.batch.as_ref() else {
                return Ok(None);
            };
            let entry = JournalEntry::new(batch.environment, &batch.merchant_id, batch.currency);
            item_postings(entry, &added.items)?.finished()
        }
        SettlementEvent::PayoutInitiated(initiated) => payout_entry(
            state_before,
            PayoutsInTransit,
            GatewaySettled,
            initiated.amount,
        ),
        SettlementEvent::PayoutPaid(paid) => {
            payout_entry(state_before, Bank, PayoutsInTransit, paid.amount)
        }
        SettlementEvent::PayoutFailed(failed) => payout_entry(
            state_before,
            GatewaySettled,
            PayoutsInTransit,
            failed.amount,
        ),
    };
    Ok(entry)
}

/// Each settled item's postings: its gross leaves gateway_pending, its fee is a processing
/// fee, and the rest reaches gateway_settled (a refund or dispute takes gross and fee out).
/// They balance item by item, so a batch's items may be posted in any number of entries.
fn item_postings(
    mut entry: JournalEntry,
    items: &[SettlementItem],
) -> Result<JournalEntry, MoneyError> {
    use Account::*;
    for item in items {
        entry = match item.item {
            SettledItem::Capture(_) => entry
                .debit(ProcessingFees, item.fee)
                .debit(GatewaySettled, sub(item.gross, item.fee)?)
                .credit(GatewayPending, item.gross),
            SettledItem::Refund(_) => entry
                .debit(GatewayPending, item.gross)
                .debit(ProcessingFees, item.fee)
                .credit(GatewaySettled, add(item.gross, item.fee)?),
            SettledItem::Dispute(_) => {
                let withdrawn = add(item.gross, item.fee)?;
                entry
                    .debit(GatewayPending, withdrawn)
                    .credit(GatewaySettled, withdrawn)
            }
        };
    }
    Ok(entry)
}

/// A payout's one posting, in the accounts of the batch it pays out.
fn payout_entry(
    state_before: &SettlementBatchState,
    debit: Account,
    credit: Account,
    amount: Money,
) -> Option<JournalEntry> {
    let batch = state_before.batch.as_ref()?;
    JournalEntry::new(batch.environment, &batch.merchant_id, batch.currency)
        .debit(debit, amount)
        .credit(credit, amount)
        .finished()
}

/// Where a balance is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AccountKey {
    pub environment: Environment,
    pub merchant_id: MerchantId,
    pub currency: Currency,
    pub account: Account,
}

/// Balances of every account the posted entries touched; debit balances positive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrialBalance {
    balances: BTreeMap<AccountKey, Decimal>,
}

impl TrialBalance {
    pub fn post(&mut self, entry: &JournalEntry) {
        for posting in &entry.postings {
            let key = AccountKey {
                environment: entry.environment,
                merchant_id: entry.merchant_id.clone(),
                currency: entry.currency,
                account: posting.account,
            };
            *self.balances.entry(key).or_default() += posting.signed_amount();
        }
    }

    pub fn balance(&self, key: &AccountKey) -> Decimal {
        self.balances.get(key).copied().unwrap_or_default()
    }

    pub fn balances(&self) -> impl Iterator<Item = (&AccountKey, &Decimal)> {
        self.balances.iter()
    }

    /// The sum of all balances per currency: all zero when the books balance.
    pub fn totals_by_currency(&self) -> BTreeMap<Currency, Decimal> {
        let mut totals = BTreeMap::new();
        for (key, balance) in &self.balances {
            *totals.entry(key.currency).or_default() += *balance;
        }
        totals
    }

    pub fn is_balanced(&self) -> bool {
        self.totals_by_currency().values().all(Decimal::is_zero)
    }
}
