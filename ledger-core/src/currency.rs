//! ISO 4217 currencies and the number of minor units each one is quoted in.
//!
//! The table covers every currency Stripe settles in, plus the 0- and 3-decimal currencies
//! that most often trip up payment systems. A `Currency` can only be obtained from the table,
//! so its scale is always the ISO one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::MoneyError;

/// An ISO 4217 currency known to the ledger, with its minor-unit scale.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    minor_units: u32,
}

/// ISO 4217 codes and minor units. Zero-decimal: JPY, KRW, VND, CLP, ISK, UGX, PYG, XAF, XOF,
/// RWF, KMF, GNF, DJF, VUV, XPF, MGA, BIF. Three-decimal: BHD, JOD, KWD, OMR, TND.
const TABLE: &[(&str, u32)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("GIP", 2),
    ("GNF", 0),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MGA", 0),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PEN", 2),
    ("PHP", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("RON", 2),
    ("RWF", 0),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UGX", 0),
    ("USD", 2),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("ZAR", 2),
];

impl Currency {
    pub const USD: Currency = Currency::known("USD", 2);
    pub const EUR: Currency = Currency::known("EUR", 2);
    pub const GBP: Currency = Currency::known("GBP", 2);
    pub const JPY: Currency = Currency::known("JPY", 0);
    pub const KRW: Currency = Currency::known("KRW", 0);
    pub const BHD: Currency = Currency::known("BHD", 3);
    pub const KWD: Currency = Currency::known("KWD", 3);
    pub const JOD: Currency = Currency::known("JOD", 3);

    const fn known(code: &'static str, minor_units: u32) -> Currency {
        Currency { code, minor_units }
    }

    /// Parses an upper-case ISO 4217 code. Lower case (as Stripe sends it) is accepted too,
    /// because the code's meaning does not depend on its case.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        TABLE
            .iter()
            .find(|(known, _)| *known == upper)
            .map(|&(code, minor_units)| Currency { code, minor_units })
            .ok_or_else(|| MoneyError::UnknownCurrency {
                code: code.chars().take(16).collect(),
            })
    }

    /// Every currency the ledger knows, in code order.
    pub fn all() -> impl Iterator<Item = Currency> {
        TABLE
            .iter()
            .map(|&(code, minor_units)| Currency { code, minor_units })
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Decimal places of the currency's minor unit: 2 for USD, 0 for JPY, 3 for BHD.
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code)
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::parse(code)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for pair in TABLE.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (code, minor_units) in TABLE {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|byte| byte.is_ascii_uppercase()));
            assert!(*minor_units <= 3);
        }
    }

    #[test]
    fn constants_agree_with_table() {
        for constant in [
            Currency::USD,
            Currency::EUR,
            Currency::GBP,
            Currency::JPY,
            Currency::KRW,
            Currency::BHD,
            Currency::KWD,
            Currency::JOD,
        ] {
            assert_eq!(Currency::parse(constant.code()).ok(), Some(constant));
        }
    }

    #[test]
    fn parses_lower_case_and_rejects_unknown_codes() {
        assert_eq!(Currency::parse("usd").ok(), Some(Currency::USD));
        assert!(Currency::parse("XXX").is_err());
        assert!(Currency::parse("").is_err());
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("USDD").is_err());
    }
}
