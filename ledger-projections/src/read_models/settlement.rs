//! The settlement read model: batches with their items, totals and payouts, and the
//! settlement exceptions finance works through (reserves withheld, failed or late payouts,
//! captures that no batch has settled after N days).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use ledger_core::ids::Environment;
use ledger_core::settlement::{PayoutStatus, SettlementEvent};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::read_rows;
use crate::batch::Batch;
use crate::error::{parse_stored, to_stored, ProjectionError};
use crate::stream_states::DomainEvent;

#[derive(Default)]
struct PayoutTimes {
    initiated: HashMap<(Uuid, String), DateTime<Utc>>,
    paid: HashMap<(Uuid, String), DateTime<Utc>>,
    failed: HashMap<(Uuid, String), DateTime<Utc>>,
}

pub(crate) async fn apply(
    connection: &mut PgConnection,
    batch: &Batch,
    after: u64,
) -> Result<(), ProjectionError> {
    let mut touched: BTreeMap<Uuid, (DateTime<Utc>, u64)> = BTreeMap::new();
    let mut recorded: Vec<(Uuid, DateTime<Utc>)> = Vec::new();
    // Items each batch gained in this page: a batch's items come in several events of one
    // append, and a page may end inside it.
    let mut items_added: BTreeMap<Uuid, usize> = BTreeMap::new();
    let mut times = PayoutTimes::default();
    for event in batch.events_after(after) {
        let DomainEvent::Settlement(settlement_event) = &event.event else {
            continue;
        };
        touched.insert(event.stream_id, (event.occurred_at, event.position));
        let (map, payout_id) = match settlement_event {
            SettlementEvent::SettlementBatchRecorded(header) => {
                recorded.push((event.stream_id, event.occurred_at));
                *items_added.entry(event.stream_id).or_default() += header.items.len();
                continue;
            }
            SettlementEvent::SettlementItemsAdded(added) => {
                *items_added.entry(event.stream_id).or_default() += added.items.len();
                continue;
            }
            SettlementEvent::PayoutInitiated(payout) => (&mut times.initiated, &payout.payout_id),
            SettlementEvent::PayoutPaid(payout) => (&mut times.paid, &payout.payout_id),
            SettlementEvent::PayoutFailed(payout) => (&mut times.failed, &payout.payout_id),
        };
        map.insert(
            (event.stream_id, payout_id.as_str().to_owned()),
            event.occurred_at,
        );
    }
    write_batches(connection, batch, &touched, &recorded).await?;
    write_items(connection, batch, &items_added).await?;
    write_payouts(connection, batch, &touched, &times).await
}

async fn write_batches(
    connection: &mut PgConnection,
    batch: &Batch,
    touched: &BTreeMap<Uuid, (DateTime<Utc>, u64)>,
    recorded: &[(Uuid, DateTime<Utc>)],
) -> Result<(), ProjectionError> {
    let recorded_at: HashMap<Uuid, DateTime<Utc>> = recorded.iter().copied().collect();
    let mut ids = Vec::new();
    let mut environments = Vec::new();
    let mut merchant_ids = Vec::new();
    let mut currencies = Vec::new();
    let (mut gross, mut fees, mut reserve, mut net) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut item_counts = Vec::new();
    let mut payout_statuses = Vec::new();
    let mut recorded_times = Vec::new();
    let mut versions = Vec::new();
    let mut positions = Vec::new();
    for (batch_id, (occurred_at, position)) in touched {
        let Some(state) = batch.settlements.get(batch_id) else {
            continue;
        };
        let Some(settlement) = &state.batch else {
            continue;
        };
        ids.push(*batch_id);
        environments.push(settlement.environment.as_str().to_owned());
        merchant_ids.push(settlement.merchant_id.as_str().to_owned());
        currencies.push(settlement.currency.code().to_owned());
        gross.push(settlement.gross.amount());
        fees.push(settlement.fees.amount());
        reserve.push(settlement.reserve.amount());
        net.push(settlement.net.amount());
        // The count the batch was recorded with: a page ending inside the append that
        // recorded it holds only some of its items.
        item_counts.push(i32::try_from(settlement.item_count).unwrap_or(i32::MAX));
        payout_statuses.push(
            settlement
                .payouts
                .last()
                .map(|payout| payout.status.as_str().to_owned()),
        );
        // Only inserts use it: the batch was recorded by its first event.
        recorded_times.push(recorded_at.get(batch_id).copied().unwrap_or(*occurred_at));
        versions.push(to_stored(state.version)?);
        positions.push(to_stored(*position)?);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"INSERT INTO projection_settlement_batches (batch_id, environment, merchant_id,
               currency, gross, fees, reserve, net, item_count, payout_status, recorded_at,
               version, last_position)
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[],
               $6::numeric[], $7::numeric[], $8::numeric[], $9::int[], $10::text[],
               $11::timestamptz[], $12::bigint[], $13::bigint[])
           ON CONFLICT (batch_id) DO UPDATE SET
               payout_status = EXCLUDED.payout_status,
               version = EXCLUDED.version,
               last_position = EXCLUDED.last_position"#,
        &ids,
        &environments,
        &merchant_ids,
        &currencies,
        &gross,
        &fees,
        &reserve,
        &net,
        &item_counts,
        &payout_statuses as &[Option<String>],
        &recorded_times,
        &versions,
        &positions,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Inserts the items each batch gained in this page: the last `added` of its items as the
/// page leaves it, numbered by their place in the batch.
async fn write_items(
    connection: &mut PgConnection,
    batch: &Batch,
    items_added: &BTreeMap<Uuid, usize>,
) -> Result<(), ProjectionError> {
    let mut batch_ids = Vec::new();
    let mut line_numbers = Vec::new();
    let mut payment_ids = Vec::new();
    let mut kinds = Vec::new();
    let mut item_ids = Vec::new();
    let mut currencies = Vec::new();
    let mut gross = Vec::new();
    let mut fees = Vec::new();
    for (batch_id, added) in items_added {
        let Some(settlement) = batch
            .settlements
            .get(batch_id)
            .and_then(|state| state.batch.as_ref())
        else {
            continue;
        };
        let first = settlement.items.len().saturating_sub(*added);
        for (line, item) in settlement.items.iter().enumerate().skip(first) {
            batch_ids.push(*batch_id);
            line_numbers.push(i32::try_from(line + 1).unwrap_or(i32::MAX));
            payment_ids.push(item.payment_id.as_uuid());
            kinds.push(item.item.item_kind().as_str().to_owned());
            item_ids.push(item.item.item_id().to_owned());
            currencies.push(item.gross.currency().code().to_owned());
            gross.push(item.gross.amount());
            fees.push(item.fee.amount());
        }
    }
    if batch_ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"INSERT INTO projection_settlement_items (batch_id, line_number, payment_id, kind,
               item_id, currency, gross, fee)
           SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::uuid[], $4::text[], $5::text[],
               $6::text[], $7::numeric[], $8::numeric[])
           ON CONFLICT (batch_id, line_number) DO NOTHING"#,
        &batch_ids,
        &line_numbers,
        &payment_ids,
        &kinds,
        &item_ids,
        &currencies,
        &gross,
        &fees,
    )
    .execute(connection)
    .await?;
    Ok(())
}

async fn write_payouts(
    connection: &mut PgConnection,
    batch: &Batch,
    touched: &BTreeMap<Uuid, (DateTime<Utc>, u64)>,
    times: &PayoutTimes,
) -> Result<(), ProjectionError> {
    let mut batch_ids = Vec::new();
    let mut payout_ids = Vec::new();
    let mut environments = Vec::new();
    let mut merchant_ids = Vec::new();
    let mut currencies = Vec::new();
    let mut amounts = Vec::new();
    let mut statuses = Vec::new();
    let mut expected = Vec::new();
    let mut failure_reasons = Vec::new();
    let mut initiated_at = Vec::new();
    let mut paid_at = Vec::new();
    let mut failed_at = Vec::new();
    for (batch_id, (occurred_at, _)) in touched {
        let Some(settlement) = batch
            .settlements
            .get(batch_id)
            .and_then(|state| state.batch.as_ref())
        else {
            continue;
        };
        for payout in &settlement.payouts {
            let key = (*batch_id, payout.payout_id.as_str().to_owned());
            batch_ids.push(*batch_id);
            environments.push(settlement.environment.as_str().to_owned());
            merchant_ids.push(settlement.merchant_id.as_str().to_owned());
            currencies.push(settlement.currency.code().to_owned());
            amounts.push(payout.amount.amount());
            statuses.push(payout.status.as_str().to_owned());
            expected.push(payout.expected_arrival_date);
            failure_reasons.push(
                payout
                    .failure_reason
                    .as_ref()
                    .map(|text| text.as_str().to_owned()),
            );
            // Only inserts use it: a payout initiated earlier keeps its stored time.
            initiated_at.push(times.initiated.get(&key).copied().unwrap_or(*occurred_at));
            paid_at.push(times.paid.get(&key).copied());
            failed_at.push(times.failed.get(&key).copied());
            payout_ids.push(key.1);
        }
    }
    if batch_ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"INSERT INTO projection_payouts (batch_id, payout_id, environment, merchant_id,
               currency, amount, status, expected_arrival_date, failure_reason, initiated_at,
               paid_at, failed_at)
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
               $6::numeric[], $7::text[], $8::date[], $9::text[], $10::timestamptz[],
               $11::timestamptz[], $12::timestamptz[])
           ON CONFLICT (batch_id, payout_id) DO UPDATE SET
               status = EXCLUDED.status,
               failure_reason = EXCLUDED.failure_reason,
               paid_at = COALESCE(projection_payouts.paid_at, EXCLUDED.paid_at),
               failed_at = COALESCE(projection_payouts.failed_at, EXCLUDED.failed_at)"#,
        &batch_ids,
        &payout_ids,
        &environments,
        &merchant_ids,
        &currencies,
        &amounts,
        &statuses,
        &expected as &[Option<NaiveDate>],
        &failure_reasons as &[Option<String>],
        &initiated_at,
        &paid_at as &[Option<DateTime<Utc>>],
        &failed_at as &[Option<DateTime<Utc>>],
    )
    .execute(connection)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct SettlementBatchRow {
    pub batch_id: Uuid,
    pub environment: Environment,
    pub merchant_id: String,
    pub currency: String,
    pub gross: Decimal,
    pub fees: Decimal,
    pub reserve: Decimal,
    pub net: Decimal,
    pub item_count: i32,
    /// The status of the latest payout attempt, if any.
    pub payout_status: Option<PayoutStatus>,
    pub recorded_at: DateTime<Utc>,
    pub version: i64,
    pub last_position: i64,
}

struct StoredBatch {
    batch_id: Uuid,
    environment: String,
    merchant_id: String,
    currency: String,
    gross: Decimal,
    fees: Decimal,
    reserve: Decimal,
    net: Decimal,
    item_count: i32,
    payout_status: Option<String>,
    recorded_at: DateTime<Utc>,
    version: i64,
    last_position: i64,
}

impl TryFrom<StoredBatch> for SettlementBatchRow {
    type Error = ProjectionError;

    fn try_from(row: StoredBatch) -> Result<Self, ProjectionError> {
        Ok(SettlementBatchRow {
            batch_id: row.batch_id,
            environment: parse_stored(&row.environment)?,
            merchant_id: row.merchant_id,
            currency: row.currency,
            gross: row.gross,
            fees: row.fees,
            reserve: row.reserve,
            net: row.net,
            item_count: row.item_count,
            payout_status: row.payout_status.as_deref().map(parse_stored).transpose()?,
            recorded_at: row.recorded_at,
            version: row.version,
            last_position: row.last_position,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PayoutRow {
    pub batch_id: Uuid,
    pub payout_id: String,
    pub currency: String,
    pub amount: Decimal,
    pub status: PayoutStatus,
    pub expected_arrival_date: Option<NaiveDate>,
    pub failure_reason: Option<String>,
    pub initiated_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

struct StoredPayout {
    batch_id: Uuid,
    payout_id: String,
    currency: String,
    amount: Decimal,
    status: String,
    expected_arrival_date: Option<NaiveDate>,
    failure_reason: Option<String>,
    initiated_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
}

impl TryFrom<StoredPayout> for PayoutRow {
    type Error = ProjectionError;

    fn try_from(row: StoredPayout) -> Result<Self, ProjectionError> {
        Ok(PayoutRow {
            batch_id: row.batch_id,
            payout_id: row.payout_id,
            currency: row.currency,
            amount: row.amount,
            status: parse_stored(&row.status)?,
            expected_arrival_date: row.expected_arrival_date,
            failure_reason: row.failure_reason,
            initiated_at: row.initiated_at,
            paid_at: row.paid_at,
            failed_at: row.failed_at,
        })
    }
}

/// Largest page of batches one query returns.
pub const MAX_BATCHES_PAGE: usize = 500;

/// Filters of the batches list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct BatchFilter {
    pub merchant_id: Option<String>,
    /// An ISO 4217 code, upper case as stored.
    pub currency: Option<String>,
    /// The status of the batch's latest payout.
    pub payout_status: Option<PayoutStatus>,
    pub recorded_from: Option<DateTime<Utc>>,
    pub recorded_before: Option<DateTime<Utc>>,
}

/// The batches cursor: `(recorded_at, batch_id)` of the previous page's last batch.
pub type BatchCursor = (DateTime<Utc>, Uuid);

/// One page of an environment's settlement batches, newest first, after the cursor; at most
/// `limit` (capped at [`MAX_BATCHES_PAGE`]).
#[tracing::instrument(skip(pool))]
pub async fn list_batches(
    pool: &PgPool,
    environment: Environment,
    filter: &BatchFilter,
    after: Option<BatchCursor>,
    limit: usize,
) -> Result<Vec<SettlementBatchRow>, ProjectionError> {
    let limit = i64::try_from(limit.min(MAX_BATCHES_PAGE)).unwrap_or(0);
    let (after_recorded, after_batch) = after.unzip();
    let rows = sqlx::query_as!(
        StoredBatch,
        r#"SELECT * FROM projection_settlement_batches
           WHERE environment = $1
             AND ($2::text IS NULL OR merchant_id = $2)
             AND ($3::text IS NULL OR currency = $3)
             AND ($4::text IS NULL OR payout_status = $4)
             AND ($5::timestamptz IS NULL OR recorded_at >= $5)
             AND ($6::timestamptz IS NULL OR recorded_at < $6)
             AND ($7::timestamptz IS NULL OR (recorded_at, batch_id) < ($7, $8::uuid))
           ORDER BY recorded_at DESC, batch_id DESC
           LIMIT $9"#,
        environment.as_str(),
        filter.merchant_id,
        filter.currency,
        filter.payout_status.map(PayoutStatus::as_str),
        filter.recorded_from,
        filter.recorded_before,
        after_recorded,
        after_batch,
        limit,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// The payouts of many batches at once.
#[tracing::instrument(skip(pool))]
pub async fn payouts_of(
    pool: &PgPool,
    batch_ids: &[Uuid],
) -> Result<Vec<PayoutRow>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredPayout,
        r#"SELECT batch_id, payout_id, currency, amount, status, expected_arrival_date,
                  failure_reason, initiated_at, paid_at, failed_at
           FROM projection_payouts WHERE batch_id = ANY($1::uuid[])
           ORDER BY batch_id, initiated_at, payout_id"#,
        batch_ids,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// The settlement batch of this environment that initiated the payout (the latest, should
/// two have), if the read model has it.
#[tracing::instrument(skip(pool))]
pub async fn batch_of_payout(
    pool: &PgPool,
    environment: Environment,
    payout_id: &str,
) -> Result<Option<Uuid>, ProjectionError> {
    let batch_id = sqlx::query_scalar!(
        r#"SELECT batch_id FROM projection_payouts
           WHERE environment = $1 AND payout_id = $2
           ORDER BY initiated_at DESC
           LIMIT 1"#,
        environment.as_str(),
        payout_id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(batch_id)
}

/// A payout beside the net of the batch that initiated it.
#[derive(Debug, Clone, PartialEq)]
pub struct PayoutOfBatch {
    pub batch_id: Uuid,
    pub currency: String,
    pub amount: Decimal,
    pub status: PayoutStatus,
    pub batch_net: Decimal,
}

/// The latest payout of that id in this environment, with its batch's net.
#[tracing::instrument(skip(pool))]
pub async fn payout_with_batch(
    pool: &PgPool,
    environment: Environment,
    payout_id: &str,
) -> Result<Option<PayoutOfBatch>, ProjectionError> {
    let row = sqlx::query!(
        r#"SELECT p.batch_id, p.amount, p.currency, p.status, b.net
           FROM projection_payouts p
           JOIN projection_settlement_batches b ON b.batch_id = p.batch_id
           WHERE p.environment = $1 AND p.payout_id = $2
           ORDER BY p.initiated_at DESC
           LIMIT 1"#,
        environment.as_str(),
        payout_id
    )
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(PayoutOfBatch {
            batch_id: row.batch_id,
            currency: row.currency,
            amount: row.amount,
            status: parse_stored(&row.status)?,
            batch_net: row.net,
        })
    })
    .transpose()
}

/// Something in settlement that finance should look at.
#[derive(Debug, Clone, PartialEq)]
pub struct SettlementException {
    /// `RESERVE_WITHHELD`, `PAYOUT_FAILED`, `PAYOUT_LATE` or `CAPTURE_NOT_SETTLED`.
    pub kind: String,
    pub environment: Environment,
    pub merchant_id: String,
    pub currency: String,
    /// The batch, or the payment for an unsettled capture.
    pub subject_id: Uuid,
    /// The payout or capture id, when the exception is about one.
    pub item_id: Option<String>,
    pub amount: Decimal,
    /// Since when: the batch, payout or capture time.
    pub since: DateTime<Utc>,
}

struct StoredException {
    kind: String,
    environment: String,
    merchant_id: String,
    currency: String,
    subject_id: Uuid,
    item_id: Option<String>,
    amount: Decimal,
    since: DateTime<Utc>,
}

impl TryFrom<StoredException> for SettlementException {
    type Error = ProjectionError;

    fn try_from(row: StoredException) -> Result<Self, ProjectionError> {
        Ok(SettlementException {
            kind: row.kind,
            environment: parse_stored(&row.environment)?,
            merchant_id: row.merchant_id,
            currency: row.currency,
            subject_id: row.subject_id,
            item_id: row.item_id,
            amount: row.amount,
            since: row.since,
        })
    }
}

/// Every open settlement exception at `now`: batches with a reserve withheld; payouts whose
/// latest attempt failed; payouts paid after, or still in transit past, their expected arrival
/// date; captures not settled `unsettled_after_days` days after they were made.
#[tracing::instrument(skip(pool))]
pub async fn settlement_exceptions(
    pool: &PgPool,
    environment: Environment,
    now: DateTime<Utc>,
    unsettled_after_days: i32,
    merchant_id: Option<&str>,
    limit: i64,
) -> Result<Vec<SettlementException>, ProjectionError> {
    settlement_exceptions_in(
        pool,
        environment,
        now,
        unsettled_after_days,
        merchant_id,
        None,
        limit,
    )
    .await
}

/// [`settlement_exceptions`], of one currency only when `currency` is given (the console's
/// filter).
#[tracing::instrument(skip(pool))]
pub async fn settlement_exceptions_in(
    pool: &PgPool,
    environment: Environment,
    now: DateTime<Utc>,
    unsettled_after_days: i32,
    merchant_id: Option<&str>,
    currency: Option<&str>,
    limit: i64,
) -> Result<Vec<SettlementException>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredException,
        r#"SELECT 'RESERVE_WITHHELD' AS "kind!", environment AS "environment!",
                  merchant_id AS "merchant_id!", currency AS "currency!",
                  batch_id AS "subject_id!", NULL::text AS item_id, reserve AS "amount!",
                  recorded_at AS "since!"
           FROM projection_settlement_batches
           WHERE environment = $1 AND reserve > 0 AND ($4::text IS NULL OR merchant_id = $4) AND ($6::text IS NULL OR currency = $6)
           UNION ALL
           SELECT 'PAYOUT_FAILED', p.environment, p.merchant_id, p.currency, p.batch_id,
                  p.payout_id, p.amount, COALESCE(p.failed_at, p.initiated_at)
           FROM projection_payouts p
           JOIN projection_settlement_batches b ON b.batch_id = p.batch_id
           WHERE p.environment = $1 AND p.status = 'FAILED' AND b.payout_status = 'FAILED'
             AND ($4::text IS NULL OR p.merchant_id = $4) AND ($6::text IS NULL OR p.currency = $6)
           UNION ALL
           SELECT 'PAYOUT_LATE', environment, merchant_id, currency, batch_id, payout_id, amount,
                  initiated_at
           FROM projection_payouts
           WHERE environment = $1 AND expected_arrival_date IS NOT NULL
             AND ($4::text IS NULL OR merchant_id = $4) AND ($6::text IS NULL OR currency = $6)
             AND ((status = 'IN_TRANSIT' AND expected_arrival_date < ($2::timestamptz AT TIME ZONE 'UTC')::date)
               OR (status = 'PAID' AND (paid_at AT TIME ZONE 'UTC')::date > expected_arrival_date))
           UNION ALL
           SELECT 'CAPTURE_NOT_SETTLED', environment, merchant_id, currency, payment_id,
                  capture_id, amount, captured_at
           FROM projection_captures
           WHERE environment = $1 AND settled_batch_id IS NULL
             AND ($4::text IS NULL OR merchant_id = $4) AND ($6::text IS NULL OR currency = $6)
             AND captured_at < $2 - make_interval(days => $3)
           ORDER BY 8, 5
           LIMIT $5"#,
        environment.as_str(),
        now,
        unsettled_after_days,
        merchant_id,
        limit,
        currency,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// A merchant's settlement batches of one day (UTC, when recorded) and currency with one
/// payout status (`None`: no payout yet), and how long the paid ones took to be paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyPayouts {
    pub day: NaiveDate,
    pub currency: String,
    pub payout_status: Option<PayoutStatus>,
    pub batches: i64,
    /// Batches with a paid payout, and the sum of seconds from the batch to its payment.
    pub paid: i64,
    pub paid_seconds_total: i64,
}

/// Settlement batches of a merchant recorded on days `from..=to`, per day, currency and the
/// status of their latest payout.
#[tracing::instrument(skip(pool))]
pub async fn daily_payouts(
    pool: &PgPool,
    environment: Environment,
    merchant_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyPayouts>, ProjectionError> {
    let rows = sqlx::query!(
        r#"SELECT (b.recorded_at AT TIME ZONE 'UTC')::date AS "day!", b.currency,
                  b.payout_status,
                  count(*) AS "batches!",
                  count(p.paid_at) AS "paid!",
                  COALESCE(round(sum(extract(epoch FROM p.paid_at - b.recorded_at))), 0)::bigint
                      AS "paid_seconds_total!"
           FROM projection_settlement_batches b
           LEFT JOIN LATERAL (
               SELECT min(paid_at) AS paid_at FROM projection_payouts
               WHERE batch_id = b.batch_id
           ) p ON true
           WHERE b.environment = $1 AND b.merchant_id = $2
             AND b.recorded_at >= $3::date AT TIME ZONE 'UTC'
             AND b.recorded_at < ($4::date + 1) AT TIME ZONE 'UTC'
           GROUP BY 1, 2, 3
           ORDER BY 1, 2, 3"#,
        environment.as_str(),
        merchant_id,
        from,
        to,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(DailyPayouts {
                day: row.day,
                currency: row.currency,
                payout_status: row.payout_status.as_deref().map(parse_stored).transpose()?,
                batches: row.batches,
                paid: row.paid,
                paid_seconds_total: row.paid_seconds_total,
            })
        })
        .collect()
}
