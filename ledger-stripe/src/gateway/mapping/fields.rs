//! Turns the raw values of a Stripe object into domain types, naming the offending field of
//! the event when one does not fit.

use std::fmt::Display;

use chrono::{DateTime, NaiveDate, Utc};
use ledger_core::ids::{IdError, MerchantId};
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money, PositiveMoney};

use crate::gateway::amounts::money_from_stripe;
use crate::gateway::error::StripeError;

/// Reads fields of one event; every error it makes names that event.
#[derive(Debug, Clone, Copy)]
pub(super) struct FieldReader<'a> {
    event_id: &'a str,
}

impl<'a> FieldReader<'a> {
    pub(super) fn new(event_id: &'a str) -> FieldReader<'a> {
        FieldReader { event_id }
    }

    pub(super) fn invalid(&self, field: &'static str, reason: impl Display) -> StripeError {
        StripeError::InvalidField {
            event_id: self.event_id.to_owned(),
            field,
            reason: reason.to_string(),
        }
    }

    /// A Connect event whose metadata names another merchant than its account.
    pub(super) fn merchant_conflict(
        &self,
        account: &str,
        account_merchant: &MerchantId,
        stated_merchant: &MerchantId,
    ) -> StripeError {
        StripeError::MerchantConflict {
            event_id: self.event_id.to_owned(),
            account: account.to_owned(),
            account_merchant: account_merchant.to_string(),
            stated_merchant: stated_merchant.to_string(),
        }
    }

    /// Stripe sends lower-case ISO codes (`usd`); the ledger's table knows their scales.
    pub(super) fn currency(
        &self,
        field: &'static str,
        code: &str,
    ) -> Result<Currency, StripeError> {
        Currency::parse(code).map_err(|error| self.invalid(field, error))
    }

    /// An integer amount as Stripe counts it: 1099 USD is 10.99, 500 JPY is 500, 500 ISK is
    /// 5 (see `gateway::amounts`).
    pub(super) fn money(
        &self,
        field: &'static str,
        minor_units: i64,
        currency: Currency,
    ) -> Result<Money, StripeError> {
        money_from_stripe(minor_units, currency).map_err(|error| self.invalid(field, error))
    }

    pub(super) fn positive_money(
        &self,
        field: &'static str,
        minor_units: i64,
        currency: Currency,
    ) -> Result<PositiveMoney, StripeError> {
        PositiveMoney::new(self.money(field, minor_units, currency)?)
            .map_err(|error| self.invalid(field, error))
    }

    pub(super) fn text(&self, field: &'static str, value: &str) -> Result<ShortText, StripeError> {
        ShortText::parse(value).map_err(|error| self.invalid(field, error))
    }

    /// Stripe renders "no value" as `null` and sometimes as `""`; both become `None`.
    pub(super) fn optional_text(
        &self,
        field: &'static str,
        value: Option<&str>,
    ) -> Result<Option<ShortText>, StripeError> {
        match value.map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => self.text(field, text).map(Some),
        }
    }

    pub(super) fn timestamp(
        &self,
        field: &'static str,
        unix_seconds: i64,
    ) -> Result<DateTime<Utc>, StripeError> {
        DateTime::from_timestamp(unix_seconds, 0)
            .ok_or_else(|| self.invalid(field, "is not a valid unix time"))
    }

    pub(super) fn date(
        &self,
        field: &'static str,
        unix_seconds: i64,
    ) -> Result<NaiveDate, StripeError> {
        Ok(self.timestamp(field, unix_seconds)?.date_naive())
    }

    /// Parses an identifier with one of the ledger's id constructors.
    pub(super) fn id<T>(
        &self,
        field: &'static str,
        value: &str,
        parse: impl FnOnce(String) -> Result<T, IdError>,
    ) -> Result<T, StripeError> {
        parse(value.to_owned()).map_err(|error| self.invalid(field, error))
    }
}
