//! The sandbox clock and Stripe's daily automatic payouts.
//!
//! The clock starts at real now and only moves forward. Each UTC midnight it passes is a
//! payout day, run in order: the funds whose `available_on` has come become available
//! (`balance.available`), and the available balance of each currency that is positive is
//! paid out (`payout.created`, then `payout.paid` with its `arrival_date`), taking every
//! available transaction not yet paid out. A currency whose available balance is zero or
//! negative is not paid out; its transactions wait for a later day.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::books::{BalanceTransaction, Payout, TransactionKind};
use crate::api_error::ApiError;
use crate::params::Params;
use crate::state::State;

pub const DAY_SECONDS: i64 = 24 * 3600;

/// One advance moves the clock at most a year; the clock moves at most ten years in all.
pub const MAX_ADVANCE_SECONDS: i64 = 366 * DAY_SECONDS;
const MAX_CLOCK_OFFSET_SECONDS: i64 = 10 * 366 * DAY_SECONDS;

impl State {
    /// `POST /sandbox/clock/advance` with `days=` or `seconds=`: moves the clock, runs each
    /// payout day it passes, and answers the clock and the payouts made.
    pub fn advance_clock(&mut self, mut params: Params) -> Result<Value, ApiError> {
        let max_days = usize::try_from(MAX_ADVANCE_SECONDS / DAY_SECONDS).unwrap_or(1);
        let max_seconds = usize::try_from(MAX_ADVANCE_SECONDS).unwrap_or(1);
        let days = params.integer("days", 1..=max_days)?;
        let seconds = params.integer("seconds", 1..=max_seconds)?;
        params.finish()?;
        let step = match (days, seconds) {
            (Some(days), None) => i64::try_from(days).unwrap_or(0) * DAY_SECONDS,
            (None, Some(seconds)) => i64::try_from(seconds).unwrap_or(0),
            _ => {
                return Err(ApiError::invalid_request(
                    "parameter_invalid",
                    "Give exactly one of days or seconds.",
                )
                .with_param("days"))
            }
        };
        if self.clock_offset + step > MAX_CLOCK_OFFSET_SECONDS {
            return Err(ApiError::invalid_param(
                if days.is_some() { "days" } else { "seconds" },
                "The sandbox clock can move at most ten years ahead of real time.",
            ));
        }
        let before = self.now();
        self.clock_offset += step;
        let after = self.now();
        let mut payouts = Vec::new();
        let mut midnight = (before.div_euclid(DAY_SECONDS) + 1) * DAY_SECONDS;
        while midnight <= after {
            payouts.extend(self.payout_day(midnight));
            midnight += DAY_SECONDS;
        }
        Ok(json!({
            "object": "sandbox.clock",
            "now": after,
            "advanced_by": step,
            "payouts": payouts,
        }))
    }

    /// `GET /sandbox/clock`.
    pub fn clock(&self) -> Value {
        json!({ "object": "sandbox.clock", "now": self.now(), "offset": self.clock_offset })
    }

    /// One payout day at `midnight`: availability, then a payout per currency. Answers the
    /// payouts' ids.
    fn payout_day(&mut self, midnight: i64) -> Vec<String> {
        // `available_on` is always a midnight: funds become available on payout days only.
        let newly_available = self.books.transactions.iter().any(|transaction| {
            transaction.kind != TransactionKind::Payout && transaction.available_on == midnight
        });
        if newly_available {
            let balance = self.books.balance(midnight);
            self.emit_at(midnight, "balance.available", balance);
        }
        let mut due: BTreeMap<String, i64> = BTreeMap::new();
        for transaction in self.unpaid(midnight) {
            *due.entry(transaction.currency.clone()).or_default() += transaction.net();
        }
        let mut made = Vec::new();
        for (currency, amount) in due {
            if amount <= 0 {
                continue;
            }
            made.push(self.pay_out(midnight, &currency, amount));
        }
        made
    }

    /// Available transactions no payout took yet.
    fn unpaid(&self, at: i64) -> impl Iterator<Item = &BalanceTransaction> {
        self.books.transactions.iter().filter(move |transaction| {
            transaction.payout.is_none()
                && transaction.kind != TransactionKind::Payout
                && transaction.available_on <= at
        })
    }

    fn pay_out(&mut self, midnight: i64, currency: &str, amount: i64) -> String {
        let id = self.new_id("po");
        let balance_transaction = format!("txn_{}", &id[3..]);
        for transaction in self.books.transactions.iter_mut() {
            if transaction.payout.is_none()
                && transaction.kind != TransactionKind::Payout
                && transaction.available_on <= midnight
                && transaction.currency == currency
            {
                transaction.payout = Some(id.clone());
            }
        }
        self.books.record(BalanceTransaction {
            id: balance_transaction.clone(),
            kind: TransactionKind::Payout,
            amount: -amount,
            fee: 0,
            currency: currency.to_owned(),
            created: midnight,
            available_on: midnight,
            source: id.clone(),
            description: Some("STRIPE PAYOUT".to_owned()),
            charge: None,
            payment_intent: None,
            card_brand: None,
            card_funding: None,
            dispute_reason: None,
            payout: Some(id.clone()),
        });
        let mut payout = Payout {
            id: id.clone(),
            amount,
            currency: currency.to_owned(),
            created: midnight,
            // Funds are held for the delay before they are paid out, so a standard payout
            // arrives the day it is made.
            arrival_date: midnight,
            status: "pending",
            balance_transaction,
        };
        self.emit_at(midnight, "payout.created", payout.render());
        payout.status = "paid";
        self.emit_at(midnight, "payout.paid", payout.render());
        self.books.record_payout(payout);
        id
    }

    /// An event of the sandbox's own (no request made it), dated when it happened.
    fn emit_at(&mut self, at: i64, event_type: &str, object: Value) {
        self.end_request();
        self.emit_dated(at, event_type, object, None);
    }
}
