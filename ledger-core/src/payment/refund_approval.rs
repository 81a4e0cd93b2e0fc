//! When a refund needs an admin's approval: when the payment's refunds in all (earlier ones
//! that have not failed, plus this one) exceed the threshold of the payment's currency.
//!
//! Counting earlier refunds is the point: a threshold that looked at each refund alone would
//! let anyone split one large refund into many small ones. Thresholds are per currency because
//! 10,000 yen and 10,000 dollars are not the same decision.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::currency::Currency;
use crate::money::{Money, MoneyError};
use crate::payment::Payment;

/// The threshold of a currency that has none of its own, in its major units. It errs on the
/// side of asking: for currencies with small units it is a modest amount.
pub const DEFAULT_REFUND_APPROVAL_THRESHOLD: i64 = 10_000;

/// Per-currency refund approval thresholds, as `LEDGER_REFUND_APPROVAL_THRESHOLDS` sets them
/// (`USD:10000,JPY:1500000`; `*:AMOUNT` sets the threshold of every other currency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundApprovalThresholds {
    per_currency: BTreeMap<&'static str, Money>,
    rest: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdsError {
    #[error("`{entry}` is not CURRENCY:AMOUNT (e.g. USD:10000, or *:10000 for the rest)")]
    NotAnEntry { entry: String },
    #[error("{currency} is given twice")]
    Repeated { currency: String },
    #[error("the threshold of {currency}: {source}")]
    Amount {
        currency: String,
        #[source]
        source: MoneyError,
    },
    #[error("the threshold of {currency} is negative")]
    Negative { currency: String },
}

impl Default for RefundApprovalThresholds {
    fn default() -> Self {
        RefundApprovalThresholds {
            per_currency: BTreeMap::new(),
            rest: Decimal::from(DEFAULT_REFUND_APPROVAL_THRESHOLD),
        }
    }
}

impl RefundApprovalThresholds {
    /// Parses `USD:10000,JPY:1500000,*:5000`. Amounts keep their currency's scale (a
    /// threshold of `JPY:10.5` is refused, like any amount of yen with decimals).
    pub fn parse(text: &str) -> Result<Self, ThresholdsError> {
        let mut thresholds = RefundApprovalThresholds::default();
        let mut rest_given = false;
        for entry in text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let not_an_entry = || ThresholdsError::NotAnEntry {
                entry: entry.chars().take(40).collect(),
            };
            let (code, amount) = entry.split_once(':').ok_or_else(not_an_entry)?;
            let (code, amount) = (code.trim(), amount.trim());
            if code == "*" {
                if rest_given {
                    return Err(ThresholdsError::Repeated {
                        currency: "*".to_owned(),
                    });
                }
                rest_given = true;
                let rest = amount.parse::<Decimal>().map_err(|_| not_an_entry())?;
                if rest.is_sign_negative() {
                    return Err(ThresholdsError::Negative {
                        currency: "*".to_owned(),
                    });
                }
                thresholds.rest = rest;
                continue;
            }
            let amount_error = |source| ThresholdsError::Amount {
                currency: code.chars().take(16).collect(),
                source,
            };
            let currency = Currency::parse(code).map_err(amount_error)?;
            let threshold = Money::parse(amount, currency).map_err(amount_error)?;
            if threshold.is_negative() {
                return Err(ThresholdsError::Negative {
                    currency: currency.code().to_owned(),
                });
            }
            if thresholds
                .per_currency
                .insert(currency.code(), threshold)
                .is_some()
            {
                return Err(ThresholdsError::Repeated {
                    currency: currency.code().to_owned(),
                });
            }
        }
        Ok(thresholds)
    }

    /// The threshold of a currency, in its major units.
    pub fn threshold(&self, currency: Currency) -> Decimal {
        self.per_currency
            .get(currency.code())
            .map_or(self.rest, Money::amount)
    }

    /// Whether refunding `refund` more of this payment needs approval: its refunds in all
    /// (pending and succeeded ones; a failed refund returned nothing) exceed the threshold.
    pub fn needs_approval(&self, payment: &Payment, refund: Money) -> bool {
        let earlier = payment.refunded_amount().amount() + payment.refund_pending_amount().amount();
        earlier + refund.amount() > self.threshold(payment.currency())
    }
}
