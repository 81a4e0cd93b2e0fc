//! Amounts and counters of the read models turned into GraphQL values. (Enums arrive as the
//! core's, parsed by the projections; the GraphQL enums convert from them with `From`.)

use ledger_core::Currency;
use rust_decimal::Decimal;

use crate::error::{ApiError, ApiResult};
use crate::graphql::scalars::DecimalText;

/// An amount at the exact scale of its currency (sums in SQL may carry another scale).
pub fn money(amount: Decimal, currency: &str) -> DecimalText {
    let mut amount = amount;
    if let Ok(currency) = Currency::parse(currency) {
        amount.rescale(currency.minor_units());
    }
    DecimalText(amount.to_string())
}

/// A ratio (rates of the metrics) to six decimal places.
pub fn ratio(value: Option<Decimal>) -> Option<DecimalText> {
    value.map(|value| DecimalText(value.round_dp(6).normalize().to_string()))
}

/// Stored 64-bit counters are never negative; a negative one is corrupt data.
pub fn position(stored: i64) -> ApiResult<crate::graphql::scalars::Position> {
    u64::try_from(stored)
        .map(crate::graphql::scalars::Position)
        .map_err(|_| ApiError::internal(format!("negative stored position {stored}")))
}
