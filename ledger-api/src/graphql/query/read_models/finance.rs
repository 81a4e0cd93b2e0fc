//! Balances, the merchant summary and daily metrics, from the journal and metrics read
//! models.

use async_graphql::SimpleObject;
use chrono::{DateTime, NaiveDate, Utc};
use ledger_core::ids::Environment as CoreEnvironment;
use ledger_projections::read_models::{journal, metrics};
use ledger_projections::AsOf;
use sqlx::PgPool;

use super::convert;
use crate::error::{ApiError, ApiResult};
use crate::graphql::scalars::{DecimalText, Position};

/// The longest range of days one metrics query covers.
pub const MAX_METRICS_DAYS: i64 = 366;

/// The balance of one account of a merchant in one currency; debit balances are positive,
/// so the balances of one currency sum to zero (the trial balance).
#[derive(SimpleObject, Clone, Debug)]
pub struct Balance {
    pub merchant_id: String,
    pub currency: String,
    pub account: String,
    pub balance: DecimalText,
}

/// A merchant's money in one currency, by where it is.
#[derive(SimpleObject, Clone, Debug)]
pub struct MerchantSummary {
    pub currency: String,
    /// Captured, not yet settled by the gateway.
    pub pending: DecimalText,
    /// Settled by the gateway, not yet paid out.
    pub settled: DecimalText,
    /// Paid out, not yet arrived.
    pub in_transit: DecimalText,
    /// Arrived at the bank.
    pub paid_out: DecimalText,
    /// Withheld by the gateway as a reserve.
    pub reserved: DecimalText,
}

/// At most one of the two points in the past; neither means now.
pub fn as_of(time: Option<DateTime<Utc>>, position: Option<Position>) -> ApiResult<Option<AsOf>> {
    match (time, position) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "asOf",
            "pass asOf or asOfPosition, not both",
        )),
        (Some(time), None) => Ok(Some(AsOf::Time(time))),
        (None, Some(Position(position))) => Ok(Some(AsOf::Position(position))),
        (None, None) => Ok(None),
    }
}

async fn journal_balances(
    pool: &PgPool,
    environment: CoreEnvironment,
    merchant_id: &str,
    as_of: Option<AsOf>,
) -> ApiResult<Vec<journal::Balance>> {
    let result = match as_of {
        None => journal::balances(pool, environment, Some(merchant_id)).await,
        Some(as_of) => {
            ledger_projections::rebuild::balances_as_of(pool, environment, Some(merchant_id), as_of)
                .await
        }
    };
    // The journal trails the log: a point recorded but not yet applied is UNAVAILABLE.
    Ok(result?)
}

pub async fn balances(
    pool: &PgPool,
    environment: CoreEnvironment,
    merchant_id: &str,
    as_of: Option<AsOf>,
) -> ApiResult<Vec<Balance>> {
    let rows = journal_balances(pool, environment, merchant_id, as_of).await?;
    Ok(rows
        .into_iter()
        .map(|row| Balance {
            balance: convert::money(row.balance, &row.currency),
            merchant_id: row.merchant_id,
            currency: row.currency,
            account: row.account.as_str().to_owned(),
        })
        .collect())
}

pub async fn merchant_summary(
    pool: &PgPool,
    environment: CoreEnvironment,
    merchant_id: &str,
    as_of: Option<AsOf>,
) -> ApiResult<Vec<MerchantSummary>> {
    let rows = journal_balances(pool, environment, merchant_id, as_of).await?;
    Ok(journal::merchant_summary(&rows)
        .into_iter()
        .map(|summary| {
            let currency = summary.currency.as_str();
            MerchantSummary {
                pending: convert::money(summary.pending, currency),
                settled: convert::money(summary.settled, currency),
                in_transit: convert::money(summary.in_transit, currency),
                paid_out: convert::money(summary.paid_out, currency),
                reserved: convert::money(summary.reserved, currency),
                currency: summary.currency,
            }
        })
        .collect())
}

/// One merchant's figures for one day (UTC) and currency. Rates are null when their
/// denominator is zero.
#[derive(SimpleObject, Clone, Debug)]
pub struct DailyMetrics {
    pub day: NaiveDate,
    pub currency: String,
    pub payments_initiated: i64,
    pub authorizations_approved: i64,
    pub authorizations_declined: i64,
    pub captures: i64,
    pub captured_amount: DecimalText,
    pub refunds_succeeded: i64,
    pub refunded_amount: DecimalText,
    pub disputes_opened: i64,
    pub disputed_amount: DecimalText,
    /// Approved / (approved + declined).
    pub authorization_rate: Option<DecimalText>,
    /// Succeeded refunds per capture.
    pub refund_rate: Option<DecimalText>,
    /// Disputes opened per capture.
    pub dispute_rate: Option<DecimalText>,
    /// Mean seconds from capture to settlement of the captures settled that day.
    pub average_settlement_seconds: Option<DecimalText>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct DeclineCount {
    pub decline_code: String,
    pub category: String,
    pub declines: i64,
}

/// A merchant's metrics over a range of days.
#[derive(SimpleObject, Clone, Debug)]
pub struct MerchantMetrics {
    pub merchant_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DailyMetrics>,
    /// Declines over the whole range by code, most frequent first.
    pub decline_codes: Vec<DeclineCount>,
    /// Disputes opened per capture over the whole range.
    pub dispute_rate: Option<DecimalText>,
}

pub async fn merchant_metrics(
    pool: &PgPool,
    environment: CoreEnvironment,
    merchant_id: String,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<MerchantMetrics> {
    let days = (to - from).num_days();
    if !(0..MAX_METRICS_DAYS).contains(&days) {
        return Err(ApiError::validation(
            "to",
            format!("`to` must be on or after `from` and at most {MAX_METRICS_DAYS} days later"),
        ));
    }
    let rows = metrics::merchant_metrics(pool, environment, &merchant_id, from, to).await?;
    let declines = metrics::decline_codes(pool, environment, &merchant_id, from, to).await?;
    let rate = ledger_projections::read_models::disputes::dispute_rate(
        pool,
        environment,
        &merchant_id,
        from,
        to,
    )
    .await?;
    Ok(MerchantMetrics {
        days: rows.into_iter().map(daily).collect(),
        decline_codes: declines
            .into_iter()
            .map(|(decline_code, category, declines)| DeclineCount {
                decline_code,
                category: category.as_str().to_owned(),
                declines,
            })
            .collect(),
        dispute_rate: convert::ratio(rate.rate),
        merchant_id,
        from,
        to,
    })
}

fn daily(row: metrics::DailyMetrics) -> DailyMetrics {
    let currency = row.currency.as_str();
    DailyMetrics {
        authorization_rate: convert::ratio(row.authorization_rate()),
        refund_rate: convert::ratio(row.refund_rate()),
        dispute_rate: convert::ratio(row.dispute_rate()),
        average_settlement_seconds: convert::ratio(row.average_settlement_seconds()),
        captured_amount: convert::money(row.captured_amount, currency),
        refunded_amount: convert::money(row.refunded_amount, currency),
        disputed_amount: convert::money(row.disputed_amount, currency),
        day: row.day,
        payments_initiated: row.payments_initiated,
        authorizations_approved: row.authorizations_approved,
        authorizations_declined: row.authorizations_declined,
        captures: row.captures,
        refunds_succeeded: row.refunds_succeeded,
        disputes_opened: row.disputes_opened,
        currency: row.currency,
    }
}
