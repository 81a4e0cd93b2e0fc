//! Exact amounts of one currency.
//!
//! A `Money` always has exactly its currency's scale ("10.5" USD becomes 10.50; "10.505" USD is
//! refused, never rounded) and lies within [`Money::MAX_MAJOR_UNITS`] of zero, so every sum the
//! ledger makes of a bounded number of amounts stays exact. Arithmetic is checked: it fails on
//! mixed currencies and when a result leaves the bound. Amounts in commands are positive, and
//! that is a type of its own: [`PositiveMoney`].

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;

/// Why an amount was refused. Shown to API users, so each message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency code `{code}`: use an ISO 4217 code such as USD, EUR or JPY")]
    UnknownCurrency { code: String },
    #[error(
        "`{text}` is not a decimal amount: send digits with an optional point, e.g. \"10.50\""
    )]
    NotADecimal { text: String },
    #[error("{amount} has more decimal places than {currency} allows ({minor_units}); amounts are never rounded")]
    TooManyDecimalPlaces {
        amount: Decimal,
        currency: Currency,
        minor_units: u32,
    },
    #[error("{amount} {currency} is outside the supported range of ±{max} major units")]
    OutOfRange {
        amount: Decimal,
        currency: Currency,
        max: i64,
    },
    #[error("amounts in {left} and {right} cannot be combined: one payment has one currency")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("the amount must be positive, got {amount} {currency}")]
    NotPositive { amount: Decimal, currency: Currency },
}

/// A signed, exact amount of one currency at that currency's scale.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// The largest magnitude, in major units, that any amount or balance may reach.
    /// A trillion of any currency is far above real payments, yet keeps every amount's minor
    /// units inside an `i64` even at three decimals.
    pub const MAX_MAJOR_UNITS: i64 = 1_000_000_000_000;

    /// Builds an amount, refusing more decimal places than the currency has and values outside
    /// the range. Trailing zeros beyond the scale are harmless ("10.500" USD is 10.50).
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let minor_units = currency.minor_units();
        let normalized = amount.normalize();
        if normalized.scale() > minor_units {
            return Err(MoneyError::TooManyDecimalPlaces {
                amount,
                currency,
                minor_units,
            });
        }
        if normalized.abs() > Decimal::from(Self::MAX_MAJOR_UNITS) {
            return Err(MoneyError::OutOfRange {
                amount,
                currency,
                max: Self::MAX_MAJOR_UNITS,
            });
        }
        let mut exact = normalized;
        exact.rescale(minor_units);
        if exact.is_zero() {
            // "-0.00" and "0.00" are the same amount and must serialize (and hash) the same.
            exact.set_sign_positive(true);
        }
        Ok(Money {
            amount: exact,
            currency,
        })
    }

    /// Parses a decimal string such as "10.50". Exponents, spaces and signs other than a
    /// leading minus are refused.
    pub fn parse(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let well_formed = !text.is_empty()
            && text.len() <= 40
            && text
                .strip_prefix('-')
                .unwrap_or(text)
                .chars()
                .all(|character| character.is_ascii_digit() || character == '.')
            && text.matches('.').count() <= 1
            && text.chars().any(|character| character.is_ascii_digit());
        let not_a_decimal = || MoneyError::NotADecimal {
            text: text.chars().take(40).collect(),
        };
        if !well_formed {
            return Err(not_a_decimal());
        }
        let amount = Decimal::from_str(text).map_err(|_| not_a_decimal())?;
        Money::new(amount, currency)
    }

    pub fn zero(currency: Currency) -> Money {
        let mut amount = Decimal::ZERO;
        amount.rescale(currency.minor_units());
        Money { amount, currency }
    }

    /// Converts integer minor units, as gateways send them (Stripe's `amount: 1099` is
    /// 10.99 USD, `500` is 500 JPY). Exact both ways with [`Money::to_minor_units`].
    pub fn from_minor_units(minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        Money::new(Decimal::new(minor, currency.minor_units()), currency)
    }

    /// The amount in integer minor units. Cannot overflow: the range bound keeps it below
    /// 10^15 at three decimals.
    pub fn to_minor_units(&self) -> i64 {
        let mantissa = self.amount.mantissa();
        debug_assert_eq!(self.amount.scale(), self.currency.minor_units());
        // The bound on MAX_MAJOR_UNITS makes this conversion lossless.
        i64::try_from(mantissa).unwrap_or(if mantissa < 0 { i64::MIN } else { i64::MAX })
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    pub fn is_positive(&self) -> bool {
        self.amount > Decimal::ZERO
    }

    pub fn is_negative(&self) -> bool {
        self.amount < Decimal::ZERO
    }

    pub fn checked_add(&self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or_else(|| self.out_of_range())?;
        Money::new(sum, self.currency)
    }

    pub fn checked_sub(&self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let difference = self
            .amount
            .checked_sub(other.amount)
            .ok_or_else(|| self.out_of_range())?;
        Money::new(difference, self.currency)
    }

    pub fn negate(&self) -> Money {
        Money {
            amount: -self.amount,
            currency: self.currency,
        }
    }

    /// The amount without its sign: the bound is symmetric, so this cannot overflow.
    pub fn abs(&self) -> Money {
        Money {
            amount: self.amount.abs(),
            currency: self.currency,
        }
    }

    /// The smaller of two amounts of the same currency.
    pub fn min(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(if other.amount < self.amount {
            other
        } else {
            self
        })
    }

    /// Compares two amounts of the same currency.
    pub fn compare(&self, other: &Money) -> Result<std::cmp::Ordering, MoneyError> {
        self.same_currency(*other)?;
        Ok(self.amount.cmp(&other.amount))
    }

    fn same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    fn out_of_range(&self) -> MoneyError {
        MoneyError::OutOfRange {
            amount: self.amount,
            currency: self.currency,
            max: Self::MAX_MAJOR_UNITS,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.amount, self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.amount, self.currency)
    }
}

/// The JSON shape of an amount: `{"amount": "10.50", "currency": "USD"}`. The amount is a
/// string so that no float ever touches it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyWire {
    amount: String,
    currency: Currency,
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MoneyWire {
            amount: self.amount.to_string(),
            currency: self.currency,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = MoneyWire::deserialize(deserializer)?;
        Money::parse(&wire.amount, wire.currency).map_err(serde::de::Error::custom)
    }
}

/// An amount greater than zero: what every command carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PositiveMoney(Money);

impl PositiveMoney {
    pub fn new(money: Money) -> Result<PositiveMoney, MoneyError> {
        if money.is_positive() {
            Ok(PositiveMoney(money))
        } else {
            Err(MoneyError::NotPositive {
                amount: money.amount(),
                currency: money.currency(),
            })
        }
    }

    /// Parses a positive decimal string of the currency, e.g. "10.50" USD.
    pub fn parse(text: &str, currency: Currency) -> Result<PositiveMoney, MoneyError> {
        PositiveMoney::new(Money::parse(text, currency)?)
    }

    pub fn money(&self) -> Money {
        self.0
    }

    pub fn amount(&self) -> Decimal {
        self.0.amount()
    }

    pub fn currency(&self) -> Currency {
        self.0.currency()
    }
}

impl fmt::Display for PositiveMoney {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

impl fmt::Debug for PositiveMoney {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

impl<'de> Deserialize<'de> for PositiveMoney {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        PositiveMoney::new(Money::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl From<PositiveMoney> for Money {
    fn from(positive: PositiveMoney) -> Money {
        positive.0
    }
}
