//! Raw GraphQL input becomes domain types here, once, with the field named in the error.

use ledger_core::text::ShortText;
use ledger_core::{Currency, Money, PositiveMoney};

use super::scalars::DecimalText;
use crate::error::{ApiError, ApiResult};

pub fn currency(text: &str) -> ApiResult<Currency> {
    Currency::parse(text).map_err(|error| ApiError::validation("currency", error))
}

pub fn positive(field: &str, text: &DecimalText, currency: Currency) -> ApiResult<PositiveMoney> {
    PositiveMoney::parse(&text.0, currency).map_err(|error| ApiError::validation(field, error))
}

pub fn money(field: &str, text: &DecimalText, currency: Currency) -> ApiResult<Money> {
    Money::parse(&text.0, currency).map_err(|error| ApiError::validation(field, error))
}

pub fn short_text(field: &str, text: &str) -> ApiResult<ShortText> {
    ShortText::parse(text).map_err(|error| ApiError::validation(field, error))
}

pub fn optional_text(field: &str, text: Option<&String>) -> ApiResult<Option<ShortText>> {
    text.map(|text| short_text(field, text)).transpose()
}

/// Parses a textual id with the type's own rules.
pub fn id<T, E: ToString>(
    field: &str,
    text: &str,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> ApiResult<T> {
    parse(text.to_owned()).map_err(|error| ApiError::validation(field, error))
}

/// The id the client sent, or a new one (`prefix_…`) when it sent none.
pub fn id_or_generated<T, E: ToString>(
    field: &str,
    text: Option<&String>,
    prefix: &str,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> ApiResult<T> {
    match text {
        Some(text) => id(field, text, parse),
        None => id(field, &generated_id(prefix), parse),
    }
}

/// A new id for a capture or refund when the client sends none; unique without coordination.
pub fn generated_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
