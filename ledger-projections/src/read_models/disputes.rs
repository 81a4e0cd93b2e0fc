//! The disputes read model: one row per dispute with its status, amount, fee, reason, evidence
//! deadline and outcome, indexed for "what needs a response, soonest first". Also the dispute
//! rate per merchant.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use ledger_core::ids::Environment;
use ledger_core::payment::state::DisputeStatus;
use ledger_core::payment::PaymentEvent;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::read_rows;
use crate::batch::Batch;
use crate::error::{parse_stored, ProjectionError};
use crate::stream_states::DomainEvent;

type DisputeTimes = HashMap<(Uuid, String), DateTime<Utc>>;

pub(crate) async fn apply(
    connection: &mut PgConnection,
    batch: &Batch,
    after: u64,
) -> Result<(), ProjectionError> {
    let mut touched: BTreeMap<Uuid, DateTime<Utc>> = BTreeMap::new();
    let mut opened = DisputeTimes::new();
    let mut resolved = DisputeTimes::new();
    let mut settled = DisputeTimes::new();
    for event in batch.events_after(after) {
        let DomainEvent::Payment(payment_event) = &event.event else {
            continue;
        };
        let (times, dispute_id) = match payment_event {
            PaymentEvent::DisputeOpened(dispute) => (Some(&mut opened), &dispute.dispute_id),
            PaymentEvent::DisputeEvidenceSubmitted(dispute) => (None, &dispute.dispute_id),
            PaymentEvent::DisputeWon(dispute) => (Some(&mut resolved), &dispute.dispute_id),
            PaymentEvent::DisputeLost(dispute) => (Some(&mut resolved), &dispute.dispute_id),
            PaymentEvent::DisputeSettled(dispute) => (Some(&mut settled), &dispute.dispute_id),
            _ => continue,
        };
        if let Some(times) = times {
            times.insert(
                (event.stream_id, dispute_id.as_str().to_owned()),
                event.occurred_at,
            );
        }
        touched.insert(event.stream_id, event.occurred_at);
    }
    let mut columns = DisputeColumns::default();
    for (payment_id, last_occurred_at) in &touched {
        let Some(payment) = batch
            .payments
            .get(payment_id)
            .and_then(|state| state.payment.as_ref())
        else {
            continue;
        };
        for dispute in &payment.disputes {
            let key = (*payment_id, dispute.dispute_id.as_str().to_owned());
            columns.payment_ids.push(*payment_id);
            columns
                .environments
                .push(payment.environment.as_str().to_owned());
            columns
                .merchant_ids
                .push(payment.merchant_id.as_str().to_owned());
            columns
                .currencies
                .push(payment.currency().code().to_owned());
            columns.amounts.push(dispute.amount.amount());
            columns.fees.push(dispute.fee.amount());
            columns.reasons.push(dispute.reason.as_str().to_owned());
            columns.statuses.push(dispute.status.as_str().to_owned());
            columns.outcomes.push(match dispute.status {
                DisputeStatus::Won | DisputeStatus::Lost => {
                    Some(dispute.status.as_str().to_owned())
                }
                _ => None,
            });
            columns.evidence_due_by.push(dispute.evidence_due_by);
            columns
                .evidence_counts
                .push(i32::try_from(dispute.evidence.len()).unwrap_or(i32::MAX));
            // Only inserts use it: a dispute opened in an earlier batch keeps its stored time.
            columns
                .opened_at
                .push(opened.get(&key).copied().unwrap_or(*last_occurred_at));
            columns.resolved_at.push(resolved.get(&key).copied());
            columns
                .settled_batch_ids
                .push(dispute.settled_in.map(|batch| batch.as_uuid()));
            columns.settled_at.push(settled.get(&key).copied());
            columns.dispute_ids.push(key.1);
        }
    }
    columns.write(connection).await
}

#[derive(Default)]
struct DisputeColumns {
    payment_ids: Vec<Uuid>,
    dispute_ids: Vec<String>,
    environments: Vec<String>,
    merchant_ids: Vec<String>,
    currencies: Vec<String>,
    amounts: Vec<Decimal>,
    fees: Vec<Decimal>,
    reasons: Vec<String>,
    statuses: Vec<String>,
    outcomes: Vec<Option<String>>,
    evidence_due_by: Vec<Option<DateTime<Utc>>>,
    evidence_counts: Vec<i32>,
    opened_at: Vec<DateTime<Utc>>,
    resolved_at: Vec<Option<DateTime<Utc>>>,
    settled_batch_ids: Vec<Option<Uuid>>,
    settled_at: Vec<Option<DateTime<Utc>>>,
}

impl DisputeColumns {
    async fn write(self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.payment_ids.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            r#"INSERT INTO projection_disputes (payment_id, dispute_id, environment, merchant_id,
                   currency, amount, fee, reason, status, outcome, evidence_due_by,
                   evidence_count, opened_at, resolved_at, settled_batch_id, settled_at)
               SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                   $6::numeric[], $7::numeric[], $8::text[], $9::text[], $10::text[],
                   $11::timestamptz[], $12::int[], $13::timestamptz[], $14::timestamptz[],
                   $15::uuid[], $16::timestamptz[])
               ON CONFLICT (payment_id, dispute_id) DO UPDATE SET
                   status = EXCLUDED.status,
                   outcome = EXCLUDED.outcome,
                   evidence_count = EXCLUDED.evidence_count,
                   resolved_at = COALESCE(projection_disputes.resolved_at, EXCLUDED.resolved_at),
                   settled_batch_id = EXCLUDED.settled_batch_id,
                   settled_at = COALESCE(projection_disputes.settled_at, EXCLUDED.settled_at)"#,
            &self.payment_ids,
            &self.dispute_ids,
            &self.environments,
            &self.merchant_ids,
            &self.currencies,
            &self.amounts,
            &self.fees,
            &self.reasons,
            &self.statuses,
            &self.outcomes as &[Option<String>],
            &self.evidence_due_by as &[Option<DateTime<Utc>>],
            &self.evidence_counts,
            &self.opened_at,
            &self.resolved_at as &[Option<DateTime<Utc>>],
            &self.settled_batch_ids as &[Option<Uuid>],
            &self.settled_at as &[Option<DateTime<Utc>>],
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DisputeRow {
    pub payment_id: Uuid,
    pub dispute_id: String,
    pub environment: Environment,
    pub merchant_id: String,
    pub currency: String,
    pub amount: Decimal,
    pub fee: Decimal,
    pub reason: String,
    pub status: DisputeStatus,
    /// `Won` or `Lost` once resolved.
    pub outcome: Option<DisputeStatus>,
    pub evidence_due_by: Option<DateTime<Utc>>,
    pub evidence_count: i32,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub settled_batch_id: Option<Uuid>,
    pub settled_at: Option<DateTime<Utc>>,
}

struct StoredDispute {
    payment_id: Uuid,
    dispute_id: String,
    environment: String,
    merchant_id: String,
    currency: String,
    amount: Decimal,
    fee: Decimal,
    reason: String,
    status: String,
    outcome: Option<String>,
    evidence_due_by: Option<DateTime<Utc>>,
    evidence_count: i32,
    opened_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    settled_batch_id: Option<Uuid>,
    settled_at: Option<DateTime<Utc>>,
}

impl TryFrom<StoredDispute> for DisputeRow {
    type Error = ProjectionError;

    fn try_from(row: StoredDispute) -> Result<Self, ProjectionError> {
        Ok(DisputeRow {
            payment_id: row.payment_id,
            dispute_id: row.dispute_id,
            environment: parse_stored(&row.environment)?,
            merchant_id: row.merchant_id,
            currency: row.currency,
            amount: row.amount,
            fee: row.fee,
            reason: row.reason,
            status: parse_stored(&row.status)?,
            outcome: row.outcome.as_deref().map(parse_stored).transpose()?,
            evidence_due_by: row.evidence_due_by,
            evidence_count: row.evidence_count,
            opened_at: row.opened_at,
            resolved_at: row.resolved_at,
            settled_batch_id: row.settled_batch_id,
            settled_at: row.settled_at,
        })
    }
}

/// Filters of the disputes list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct DisputeFilter {
    pub merchant_id: Option<String>,
    pub status: Option<DisputeStatus>,
    /// Only disputes whose evidence is due before this time.
    pub due_before: Option<DateTime<Utc>>,
}

/// Largest page of disputes one query returns.
pub const MAX_DISPUTES_PAGE: usize = 500;

/// The disputes cursor: the sort key `(evidence_due_by, payment_id, dispute_id)` of the
/// previous page's last row; disputes without a deadline sort last.
pub type DisputeCursor = (Option<DateTime<Utc>>, Uuid, String);

/// One page of disputes by evidence deadline, soonest first (no deadline last), then by
/// payment and dispute id, after the cursor; at most `limit` (capped at
/// [`MAX_DISPUTES_PAGE`]). Keyset pages stay exact while disputes are opened.
#[tracing::instrument(skip(pool))]
pub async fn list_disputes(
    pool: &PgPool,
    environment: Environment,
    filter: &DisputeFilter,
    after: Option<DisputeCursor>,
    limit: usize,
) -> Result<Vec<DisputeRow>, ProjectionError> {
    let limit = i64::try_from(limit.min(MAX_DISPUTES_PAGE)).unwrap_or(0);
    let (after_due, after_payment, after_dispute) = match after {
        Some((due, payment, dispute)) => (due, Some(payment), Some(dispute)),
        None => (None, None, None),
    };
    // Rows after the cursor in the order `evidence_due_by NULLS LAST, payment_id,
    // dispute_id`: with a dated cursor, later dates, then equal dates by id, then every
    // undated row; with an undated cursor, only undated rows by id.
    let rows = sqlx::query_as!(
        StoredDispute,
        r#"SELECT * FROM projection_disputes
           WHERE environment = $1
             AND ($2::text IS NULL OR merchant_id = $2)
             AND ($3::text IS NULL OR status = $3)
             AND ($4::timestamptz IS NULL OR evidence_due_by < $4)
             AND ($6::uuid IS NULL
                  OR ($5::timestamptz IS NULL AND evidence_due_by IS NULL
                      AND (payment_id, dispute_id) > ($6, $7::text))
                  OR ($5::timestamptz IS NOT NULL
                      AND (evidence_due_by IS NULL
                           OR (evidence_due_by, payment_id, dispute_id) > ($5, $6, $7::text))))
           ORDER BY evidence_due_by NULLS LAST, payment_id, dispute_id
           LIMIT $8"#,
        environment.as_str(),
        filter.merchant_id,
        filter.status.map(DisputeStatus::as_str),
        filter.due_before,
        after_due,
        after_payment,
        after_dispute,
        limit,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// Filters of [`evidence_due`]: disputes still needing a response whose evidence is due
/// before `due_before`; `None` means any merchant or currency.
#[derive(Debug, Clone)]
pub struct EvidenceDueFilter {
    pub due_before: DateTime<Utc>,
    pub merchant_id: Option<String>,
    pub currency: Option<String>,
}

/// One page of disputes that need a response with evidence due before the filter's time,
/// soonest first, after the cursor `(evidence_due_by, payment_id, dispute_id)`; at most
/// `limit` (capped at [`MAX_DISPUTES_PAGE`]). The exceptions queue's "evidence due soon".
#[tracing::instrument(skip(pool))]
pub async fn evidence_due(
    pool: &PgPool,
    environment: Environment,
    filter: &EvidenceDueFilter,
    after: Option<(DateTime<Utc>, Uuid, String)>,
    limit: usize,
) -> Result<Vec<DisputeRow>, ProjectionError> {
    let limit = i64::try_from(limit.min(MAX_DISPUTES_PAGE)).unwrap_or(0);
    let (after_due, after_payment, after_dispute) = match after {
        Some((due, payment, dispute)) => (Some(due), Some(payment), Some(dispute)),
        None => (None, None, None),
    };
    // `projection_disputes_status_due` serves the status and deadline bounds and the order.
    let rows = sqlx::query_as!(
        StoredDispute,
        r#"SELECT * FROM projection_disputes
           WHERE environment = $1 AND status = 'NEEDS_RESPONSE'
             AND evidence_due_by < $2
             AND ($3::text IS NULL OR merchant_id = $3)
             AND ($4::text IS NULL OR currency = $4)
             AND ($5::timestamptz IS NULL
                  OR (evidence_due_by, payment_id, dispute_id) > ($5, $6::uuid, $7::text))
           ORDER BY evidence_due_by, payment_id, dispute_id
           LIMIT $8"#,
        environment.as_str(),
        filter.due_before,
        filter.merchant_id,
        filter.currency,
        after_due,
        after_payment,
        after_dispute,
        limit,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// How many disputes [`evidence_due`] would list over all its pages.
#[tracing::instrument(skip(pool))]
pub async fn evidence_due_count(
    pool: &PgPool,
    environment: Environment,
    filter: &EvidenceDueFilter,
) -> Result<i64, ProjectionError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM projection_disputes
           WHERE environment = $1 AND status = 'NEEDS_RESPONSE'
             AND evidence_due_by < $2
             AND ($3::text IS NULL OR merchant_id = $3)
             AND ($4::text IS NULL OR currency = $4)"#,
        environment.as_str(),
        filter.due_before,
        filter.merchant_id,
        filter.currency,
    )
    .fetch_one(pool)
    .await?)
}

/// The disputes of many payments at once (the payment's dispute list).
#[tracing::instrument(skip(pool))]
pub async fn disputes_of(
    pool: &PgPool,
    payment_ids: &[Uuid],
) -> Result<Vec<DisputeRow>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredDispute,
        r#"SELECT * FROM projection_disputes WHERE payment_id = ANY($1::uuid[])
           ORDER BY payment_id, opened_at, dispute_id"#,
        payment_ids,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// A merchant's dispute rate over a range of days: disputes opened per capture, as card
/// networks measure it (their thresholds are around 0.9%).
#[derive(Debug, Clone, PartialEq)]
pub struct DisputeRate {
    pub disputes_opened: i64,
    pub captures: i64,
    /// `None` when there was no capture.
    pub rate: Option<Decimal>,
}

/// The dispute rate of a merchant for days `from..=to` (UTC), from the metrics read model.
#[tracing::instrument(skip(pool))]
pub async fn dispute_rate(
    pool: &PgPool,
    environment: Environment,
    merchant_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<DisputeRate, ProjectionError> {
    let row = sqlx::query!(
        r#"SELECT COALESCE(SUM(disputes_opened), 0)::bigint AS "disputes!",
                  COALESCE(SUM(captures), 0)::bigint AS "captures!"
           FROM projection_merchant_daily_metrics
           WHERE environment = $1 AND merchant_id = $2 AND day BETWEEN $3 AND $4"#,
        environment.as_str(),
        merchant_id,
        from,
        to,
    )
    .fetch_one(pool)
    .await?;
    Ok(DisputeRate {
        disputes_opened: row.disputes,
        captures: row.captures,
        rate: (row.captures > 0).then(|| Decimal::from(row.disputes) / Decimal::from(row.captures)),
    })
}
