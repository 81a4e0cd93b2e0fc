//! The metrics read model, per merchant, currency and day (UTC, of when events occurred):
//! authorization rate, decline codes, refund rate, dispute rate and settlement time.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use ledger_core::ids::Environment;
use ledger_core::payment::{DeclineCategory, Payment, PaymentEvent};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::batch::{Batch, BatchEvent};
use crate::error::{parse_stored, ProjectionError};
use crate::stream_states::DomainEvent;

/// How declines that came without a decline code are counted among the decline codes.
pub const NO_DECLINE_CODE: &str = "(none)";

type DayKey = (String, String, String, NaiveDate);
type CaptureKey = (Uuid, String);

#[derive(Debug, Clone, Default)]
struct DayCounts {
    payments_initiated: i64,
    authorizations_approved: i64,
    authorizations_declined: i64,
    captures: i64,
    captured_amount: Decimal,
    refunds_succeeded: i64,
    refunded_amount: Decimal,
    disputes_opened: i64,
    disputed_amount: Decimal,
    settled_captures: i64,
    settlement_seconds_total: i64,
}

fn day_key(payment: &Payment, event: &BatchEvent) -> DayKey {
    (
        payment.environment.as_str().to_owned(),
        payment.merchant_id.as_str().to_owned(),
        payment.currency().code().to_owned(),
        event.occurred_at.date_naive(),
    )
}

#[derive(Default)]
struct Collected {
    days: BTreeMap<DayKey, DayCounts>,
    declines: BTreeMap<(String, String, NaiveDate, String), (String, i64)>,
    /// Captures made in this batch and not settled in it.
    new_captures: HashMap<CaptureKey, DateTime<Utc>>,
    /// Settlements of captures made before this batch: when and on which day row.
    settled_earlier: Vec<(CaptureKey, DateTime<Utc>, DayKey)>,
}

pub(crate) async fn apply(
    connection: &mut PgConnection,
    batch: &Batch,
    after: u64,
) -> Result<(), ProjectionError> {
    let mut collected = Collected::default();
    for event in batch.events_after(after) {
        let DomainEvent::Payment(payment_event) = &event.event else {
            continue;
        };
        let Some(payment) = batch
            .payments
            .get(&event.stream_id)
            .and_then(|state| state.payment.as_ref())
        else {
            continue;
        };
        collect(&mut collected, payment, event, payment_event);
    }
    settle_earlier_captures(connection, &mut collected).await?;
    write_capture_times(connection, &collected.new_captures).await?;
    write_days(connection, &collected.days).await?;
    write_declines(connection, &collected.declines).await
}

fn collect(
    collected: &mut Collected,
    payment: &Payment,
    event: &BatchEvent,
    payment_event: &PaymentEvent,
) {
    let key = day_key(payment, event);
    let counts = collected.days.entry(key.clone()).or_default();
    match payment_event {
        PaymentEvent::PaymentInitiated(_) => counts.payments_initiated += 1,
        PaymentEvent::PaymentAuthorized(_) => counts.authorizations_approved += 1,
        PaymentEvent::PaymentDeclined(declined) => {
            counts.authorizations_declined += 1;
            let decline = collected
                .declines
                .entry((
                    key.0,
                    key.1,
                    key.3,
                    declined
                        .decline_code
                        .as_ref()
                        .map_or(NO_DECLINE_CODE, |code| code.as_str())
                        .to_owned(),
                ))
                .or_insert_with(|| (declined.category.as_str().to_owned(), 0));
            decline.1 += 1;
        }
        PaymentEvent::PaymentCaptured(captured) => {
            counts.captures += 1;
            counts.captured_amount += captured.amount.amount();
            collected.new_captures.insert(
                (event.stream_id, captured.capture_id.as_str().to_owned()),
                event.occurred_at,
            );
        }
        PaymentEvent::RefundSucceeded(refund) => {
            counts.refunds_succeeded += 1;
            counts.refunded_amount += refund.amount.amount();
        }
        PaymentEvent::DisputeOpened(dispute) => {
            counts.disputes_opened += 1;
            counts.disputed_amount += dispute.amount.amount();
        }
        PaymentEvent::CaptureSettled(settled) => {
            let capture = (event.stream_id, settled.capture_id.as_str().to_owned());
            match collected.new_captures.remove(&capture) {
                Some(captured_at) => {
                    counts.settled_captures += 1;
                    counts.settlement_seconds_total +=
                        (event.occurred_at - captured_at).num_seconds();
                }
                None => collected
                    .settled_earlier
                    .push((capture, event.occurred_at, key)),
            }
        }
        _ => {}
    }
}

/// Looks up (and forgets) when captures of earlier batches were made, to count their
/// settlement time.
async fn settle_earlier_captures(
    connection: &mut PgConnection,
    collected: &mut Collected,
) -> Result<(), ProjectionError> {
    if collected.settled_earlier.is_empty() {
        return Ok(());
    }
    let payment_ids: Vec<Uuid> = collected
        .settled_earlier
        .iter()
        .map(|(key, _, _)| key.0)
        .collect();
    let capture_ids: Vec<String> = collected
        .settled_earlier
        .iter()
        .map(|(key, _, _)| key.1.clone())
        .collect();
    let rows = sqlx::query!(
        r#"DELETE FROM projection_metric_capture_times t
           USING UNNEST($1::uuid[], $2::text[]) AS k(payment_id, capture_id)
           WHERE t.payment_id = k.payment_id AND t.capture_id = k.capture_id
           RETURNING t.payment_id, t.capture_id, t.captured_at"#,
        &payment_ids,
        &capture_ids,
    )
    .fetch_all(connection)
    .await?;
    let captured_at: HashMap<CaptureKey, DateTime<Utc>> = rows
        .into_iter()
        .map(|row| ((row.payment_id, row.capture_id), row.captured_at))
        .collect();
    for (capture, settled_at, key) in std::mem::take(&mut collected.settled_earlier) {
        let Some(captured_at) = captured_at.get(&capture) else {
            continue;
        };
        let counts = collected.days.entry(key).or_default();
        counts.settled_captures += 1;
        counts.settlement_seconds_total += (settled_at - *captured_at).num_seconds();
    }
    Ok(())
}

async fn write_capture_times(
    connection: &mut PgConnection,
    captures: &HashMap<CaptureKey, DateTime<Utc>>,
) -> Result<(), ProjectionError> {
    if captures.is_empty() {
        return Ok(());
    }
    let mut payment_ids = Vec::with_capacity(captures.len());
    let mut capture_ids = Vec::with_capacity(captures.len());
    let mut times = Vec::with_capacity(captures.len());
    for ((payment_id, capture_id), captured_at) in captures {
        payment_ids.push(*payment_id);
        capture_ids.push(capture_id.clone());
        times.push(*captured_at);
    }
    sqlx::query!(
        r#"INSERT INTO projection_metric_capture_times (payment_id, capture_id, captured_at)
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[])"#,
        &payment_ids,
        &capture_ids,
        &times,
    )
    .execute(connection)
    .await?;
    Ok(())
}

async fn write_days(
    connection: &mut PgConnection,
    days: &BTreeMap<DayKey, DayCounts>,
) -> Result<(), ProjectionError> {
    if days.is_empty() {
        return Ok(());
    }
    let mut columns: (Vec<String>, Vec<String>, Vec<String>, Vec<NaiveDate>) = Default::default();
    let mut counts: [Vec<i64>; 8] = Default::default();
    let mut amounts: [Vec<Decimal>; 3] = Default::default();
    for ((environment, merchant_id, currency, day), day_counts) in days {
        columns.0.push(environment.clone());
        columns.1.push(merchant_id.clone());
        columns.2.push(currency.clone());
        columns.3.push(*day);
        let values = [
            day_counts.payments_initiated,
            day_counts.authorizations_approved,
            day_counts.authorizations_declined,
            day_counts.captures,
            day_counts.refunds_succeeded,
            day_counts.disputes_opened,
            day_counts.settled_captures,
            day_counts.settlement_seconds_total,
        ];
        for (column, value) in counts.iter_mut().zip(values) {
            column.push(value);
        }
        amounts[0].push(day_counts.captured_amount);
        amounts[1].push(day_counts.refunded_amount);
        amounts[2].push(day_counts.disputed_amount);
    }
    sqlx::query!(
        r#"INSERT INTO projection_merchant_daily_metrics (environment, merchant_id, currency, day,
               payments_initiated, authorizations_approved, authorizations_declined, captures,
               refunds_succeeded, disputes_opened, settled_captures, settlement_seconds_total,
               captured_amount, refunded_amount, disputed_amount)
           SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::bigint[],
               $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
               $11::bigint[], $12::bigint[], $13::numeric[], $14::numeric[], $15::numeric[])
           ON CONFLICT (environment, merchant_id, currency, day) DO UPDATE SET
               payments_initiated = projection_merchant_daily_metrics.payments_initiated + EXCLUDED.payments_initiated,
               authorizations_approved = projection_merchant_daily_metrics.authorizations_approved + EXCLUDED.authorizations_approved,
               authorizations_declined = projection_merchant_daily_metrics.authorizations_declined + EXCLUDED.authorizations_declined,
               captures = projection_merchant_daily_metrics.captures + EXCLUDED.captures,
               refunds_succeeded = projection_merchant_daily_metrics.refunds_succeeded + EXCLUDED.refunds_succeeded,
               disputes_opened = projection_merchant_daily_metrics.disputes_opened + EXCLUDED.disputes_opened,
               settled_captures = projection_merchant_daily_metrics.settled_captures + EXCLUDED.settled_captures,
               settlement_seconds_total = projection_merchant_daily_metrics.settlement_seconds_total + EXCLUDED.settlement_seconds_total,
               captured_amount = projection_merchant_daily_metrics.captured_amount + EXCLUDED.captured_amount,
               refunded_amount = projection_merchant_daily_metrics.refunded_amount + EXCLUDED.refunded_amount,
               disputed_amount = projection_merchant_daily_metrics.disputed_amount + EXCLUDED.disputed_amount"#,
        &columns.0,
        &columns.1,
        &columns.2,
        &columns.3,
        &counts[0],
        &counts[1],
        &counts[2],
        &counts[3],
        &counts[4],
        &counts[5],
        &counts[6],
        &counts[7],
        &amounts[0],
        &amounts[1],
        &amounts[2],
    )
    .execute(connection)
    .await?;
    Ok(())
}

async fn write_declines(
    connection: &mut PgConnection,
    declines: &BTreeMap<(String, String, NaiveDate, String), (String, i64)>,
) -> Result<(), ProjectionError> {
    if declines.is_empty() {
        return Ok(());
    }
    let mut environments = Vec::new();
    let mut merchant_ids = Vec::new();
    let mut days = Vec::new();
    let mut codes = Vec::new();
    let mut categories = Vec::new();
    let mut counts = Vec::new();
    for ((environment, merchant_id, day, code), (category, count)) in declines {
        environments.push(environment.clone());
        merchant_ids.push(merchant_id.clone());
        days.push(*day);
        codes.push(code.clone());
        categories.push(category.clone());
        counts.push(*count);
    }
    sqlx::query!(
        r#"INSERT INTO projection_merchant_daily_declines (environment, merchant_id, day,
               decline_code, decline_category, declines)
           SELECT * FROM UNNEST($1::text[], $2::text[], $3::date[], $4::text[], $5::text[],
               $6::bigint[])
           ON CONFLICT (environment, merchant_id, day, decline_code) DO UPDATE SET
               declines = projection_merchant_daily_declines.declines + EXCLUDED.declines"#,
        &environments,
        &merchant_ids,
        &days,
        &codes,
        &categories,
        &counts,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// One merchant's figures for one day and currency, with the rates derived from them.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyMetrics {
    pub day: NaiveDate,
    pub currency: String,
    pub payments_initiated: i64,
    pub authorizations_approved: i64,
    pub authorizations_declined: i64,
    pub captures: i64,
    pub captured_amount: Decimal,
    pub refunds_succeeded: i64,
    pub refunded_amount: Decimal,
    pub disputes_opened: i64,
    pub disputed_amount: Decimal,
    pub settled_captures: i64,
    pub settlement_seconds_total: i64,
}

fn ratio(numerator: i64, denominator: i64) -> Option<Decimal> {
    (denominator > 0).then(|| Decimal::from(numerator) / Decimal::from(denominator))
}

impl DailyMetrics {
    /// Approved / (approved + declined).
    pub fn authorization_rate(&self) -> Option<Decimal> {
        ratio(
            self.authorizations_approved,
            self.authorizations_approved + self.authorizations_declined,
        )
    }

    /// Succeeded refunds per capture.
    pub fn refund_rate(&self) -> Option<Decimal> {
        ratio(self.refunds_succeeded, self.captures)
    }

    /// Disputes opened per capture.
    pub fn dispute_rate(&self) -> Option<Decimal> {
        ratio(self.disputes_opened, self.captures)
    }

    /// Mean seconds from capture to settlement of the captures settled that day.
    pub fn average_settlement_seconds(&self) -> Option<Decimal> {
        ratio(self.settlement_seconds_total, self.settled_captures)
    }
}

/// A merchant's daily metrics for days `from..=to`.
#[tracing::instrument(skip(pool))]
pub async fn merchant_metrics(
    pool: &PgPool,
    environment: Environment,
    merchant_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyMetrics>, ProjectionError> {
    let rows = sqlx::query_as!(
        DailyMetrics,
        r#"SELECT day, currency, payments_initiated, authorizations_approved,
                  authorizations_declined, captures, captured_amount, refunds_succeeded,
                  refunded_amount, disputes_opened, disputed_amount, settled_captures,
                  settlement_seconds_total
           FROM projection_merchant_daily_metrics
           WHERE environment = $1 AND merchant_id = $2 AND day BETWEEN $3 AND $4
           ORDER BY day, currency"#,
        environment.as_str(),
        merchant_id,
        from,
        to,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Decline counts of a merchant for days `from..=to`, by code, most frequent first.
#[tracing::instrument(skip(pool))]
pub async fn decline_codes(
    pool: &PgPool,
    environment: Environment,
    merchant_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, DeclineCategory, i64)>, ProjectionError> {
    let rows = sqlx::query!(
        r#"SELECT decline_code, decline_category, SUM(declines)::bigint AS "declines!"
           FROM projection_merchant_daily_declines
           WHERE environment = $1 AND merchant_id = $2 AND day BETWEEN $3 AND $4
           GROUP BY decline_code, decline_category
           ORDER BY 3 DESC, decline_code"#,
        environment.as_str(),
        merchant_id,
        from,
        to,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let category = parse_stored(&row.decline_category)?;
            Ok((row.decline_code, category, row.declines))
        })
        .collect()
}

/// One merchant's declines of one day (all currencies) with one decline code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyDeclines {
    pub day: NaiveDate,
    /// The gateway's code, or [`NO_DECLINE_CODE`].
    pub decline_code: String,
    pub category: DeclineCategory,
    pub declines: i64,
}

/// Declines of a merchant (all currencies) per day and decline code, for days `from..=to`.
#[tracing::instrument(skip(pool))]
pub async fn daily_decline_codes(
    pool: &PgPool,
    environment: Environment,
    merchant_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyDeclines>, ProjectionError> {
    let rows = sqlx::query!(
        r#"SELECT day, decline_code, decline_category, declines
           FROM projection_merchant_daily_declines
           WHERE environment = $1 AND merchant_id = $2 AND day BETWEEN $3 AND $4
           ORDER BY day, decline_code"#,
        environment.as_str(),
        merchant_id,
        from,
        to,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(DailyDeclines {
                category: parse_stored(&row.decline_category)?,
                day: row.day,
                decline_code: row.decline_code,
                declines: row.declines,
            })
        })
        .collect()
}
