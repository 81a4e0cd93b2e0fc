//! The balance transactions and payouts the sandbox keeps, Stripe's processing fee, and how
//! each renders as Stripe's JSON.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};

/// At most this many balance transactions are kept; beyond it the oldest one already paid
/// out is forgotten (it is in its payout's totals and in no balance any more).
pub const MAX_BALANCE_TRANSACTIONS: usize = 1_000_000;

/// At most this many payouts are kept; beyond it the oldest is forgotten.
pub const MAX_PAYOUTS: usize = 100_000;

/// Stripe's fee for a US card in test mode: 2.9% + 30 cents, rounded to the nearest minor
/// unit, halves up (as Stripe rounds its fees). Applied to every currency in its minor units.
pub fn processing_fee(amount: i64) -> i64 {
    (amount * 29 + 500).div_euclid(1000) + 30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    Charge,
    Refund,
    RefundFailure,
    Dispute,
    DisputeReversal,
    Payout,
}

impl TransactionKind {
    /// Stripe's `type`.
    pub fn type_name(self) -> &'static str {
        match self {
            TransactionKind::Charge => "charge",
            TransactionKind::Refund => "refund",
            TransactionKind::RefundFailure => "refund_failure",
            TransactionKind::Dispute | TransactionKind::DisputeReversal => "adjustment",
            TransactionKind::Payout => "payout",
        }
    }

    /// Stripe's `reporting_category`, the report's grouping.
    pub fn reporting_category(self) -> &'static str {
        match self {
            TransactionKind::Charge => "charge",
            TransactionKind::Refund => "refund",
            TransactionKind::RefundFailure => "refund_failure",
            TransactionKind::Dispute => "dispute",
            TransactionKind::DisputeReversal => "dispute_reversal",
            TransactionKind::Payout => "payout",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BalanceTransaction {
    /// `txn_…`, the id the charge, refund or dispute already names.
    pub id: String,
    pub kind: TransactionKind,
    /// Signed, in minor units: positive adds to the balance.
    pub amount: i64,
    /// Stripe's fee, positive when charged, negative when given back.
    pub fee: i64,
    pub currency: String,
    pub created: i64,
    pub available_on: i64,
    /// The object that moved the money: `ch_…`, `re_…`, `dp_…`, `po_…`.
    pub source: String,
    pub description: Option<String>,
    /// The charge and PaymentIntent the money belongs to (for refunds and disputes, the
    /// charge they take back), as the report names them.
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    pub card_brand: Option<&'static str>,
    pub card_funding: Option<&'static str>,
    pub dispute_reason: Option<&'static str>,
    /// The automatic payout that paid it out, once one did.
    pub payout: Option<String>,
}

impl BalanceTransaction {
    pub fn net(&self) -> i64 {
        self.amount - self.fee
    }

    pub fn render(&self, now: i64) -> Value {
        let fee_details: Vec<Value> = if self.fee == 0 {
            Vec::new()
        } else {
            vec![json!({
                "amount": self.fee,
                "application": null,
                "currency": self.currency,
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            })]
        };
        json!({
            "id": self.id,
            "object": "balance_transaction",
            "amount": self.amount,
            "available_on": self.available_on,
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "exchange_rate": null,
            "fee": self.fee,
            "fee_details": fee_details,
            "net": self.net(),
            "reporting_category": self.kind.reporting_category(),
            "source": self.source,
            "status": if self.available_on <= now { "available" } else { "pending" },
            "type": self.kind.type_name(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Payout {
    /// `po_…`
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub created: i64,
    pub arrival_date: i64,
    /// `pending`, then `paid`.
    pub status: &'static str,
    pub balance_transaction: String,
}

impl Payout {
    pub fn render(&self) -> Value {
        json!({
            "id": self.id,
            "object": "payout",
            "amount": self.amount,
            "application_fee": null,
            "application_fee_amount": null,
            "arrival_date": self.arrival_date,
            "automatic": true,
            "balance_transaction": self.balance_transaction,
            "created": self.created,
            "currency": self.currency,
            "description": "STRIPE PAYOUT",
            "destination": "ba_sandbox_bank_account",
            "failure_balance_transaction": null,
            "failure_code": null,
            "failure_message": null,
            "livemode": false,
            "metadata": {},
            "method": "standard",
            "original_payout": null,
            "payout_method": null,
            "reconciliation_status": if self.status == "paid" { "completed" } else { "in_progress" },
            "reversed_by": null,
            "source_type": "card",
            "statement_descriptor": null,
            "status": self.status,
            "trace_id": null,
            "type": "bank_account",
        })
    }
}

/// The account's books: balance transactions and payouts, oldest first.
#[derive(Debug)]
pub struct Books {
    pub transactions: VecDeque<BalanceTransaction>,
    pub payouts: VecDeque<Payout>,
    /// Days from a movement to its funds' availability (Stripe's payout schedule
    /// `delay_days`).
    pub delay_days: i64,
}

impl Default for Books {
    fn default() -> Books {
        Books {
            transactions: VecDeque::new(),
            payouts: VecDeque::new(),
            delay_days: i64::from(crate::DEFAULT_PAYOUT_DELAY_DAYS),
        }
    }
}

impl Books {
    pub fn record(&mut self, transaction: BalanceTransaction) {
        if self.transactions.len() >= MAX_BALANCE_TRANSACTIONS {
            if let Some(oldest) = self
                .transactions
                .iter()
                .position(|kept| kept.payout.is_some())
            {
                self.transactions.remove(oldest);
            }
        }
        self.transactions.push_back(transaction);
    }

    pub fn record_payout(&mut self, payout: Payout) {
        if self.payouts.len() >= MAX_PAYOUTS {
            self.payouts.pop_front();
        }
        self.payouts.push_back(payout);
    }

    pub fn transaction(&self, id: &str) -> Option<&BalanceTransaction> {
        self.transactions.iter().rev().find(|kept| kept.id == id)
    }

    pub fn payout(&self, id: &str) -> Option<&Payout> {
        self.payouts.iter().rev().find(|kept| kept.id == id)
    }

    /// Stripe's balance at `now`: per currency, what is available and what is pending.
    pub fn balance(&self, now: i64) -> Value {
        let mut available: BTreeMap<&str, i64> = BTreeMap::new();
        let mut pending: BTreeMap<&str, i64> = BTreeMap::new();
        for transaction in &self.transactions {
            let side = if transaction.available_on <= now {
                &mut available
            } else {
                &mut pending
            };
            *side.entry(transaction.currency.as_str()).or_default() += transaction.net();
            // A currency the account has seen shows on both sides, as Stripe lists it.
            available.entry(transaction.currency.as_str()).or_default();
            pending.entry(transaction.currency.as_str()).or_default();
        }
        let side = |amounts: BTreeMap<&str, i64>| -> Vec<Value> {
            amounts
                .into_iter()
                .map(|(currency, amount)| {
                    json!({ "amount": amount, "currency": currency, "source_types": { "card": amount } })
                })
                .collect()
        };
        json!({
            "object": "balance",
            "available": side(available),
            "connect_reserved": [],
            "livemode": false,
            "pending": side(pending),
        })
    }
}

/// One page of a newest-first list after the object with id `starting_after`, of the items
/// `keep` accepts: the page and whether more follow.
pub fn page<'a, T: 'a>(
    newest_first: impl Iterator<Item = &'a T>,
    id: impl Fn(&T) -> &str,
    keep: impl Fn(&T) -> bool,
    limit: usize,
    starting_after: Option<&str>,
) -> (Vec<&'a T>, bool) {
    let mut started = starting_after.is_none();
    let mut items = Vec::new();
    for item in newest_first {
        if !started {
            started = Some(id(item)) == starting_after;
            continue;
        }
        if !keep(item) {
            continue;
        }
        if items.len() == limit {
            return (items, true);
        }
        items.push(item);
    }
    (items, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fee_is_stripes_us_card_fee_rounded_half_up() {
        // 2.9% of 100.00 is 2.90: 3.20 with the 30 cents.
        assert_eq!(processing_fee(10_000), 320);
        // 2.9% of 25.00 is 0.725, rounded up to 0.73.
        assert_eq!(processing_fee(2_500), 103);
        // 2.9% of 10.10 is 0.2929, rounded down to 0.29.
        assert_eq!(processing_fee(1_010), 59);
        assert_eq!(processing_fee(50), 31);
    }
}
