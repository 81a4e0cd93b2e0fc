//! [`recent_deliveries`]: the support view of webhook deliveries, newest first, searchable by
//! Stripe event id and payment. The GraphQL layer exposes [`WebhookDelivery`] as it is.

use chrono::{DateTime, Utc};
use ledger_core::ids::{Environment, PaymentId};
use sqlx::PgPool;

use super::error::WebhookError;
use super::outcome::DeliveryOutcome;

/// The most rows one call returns, whatever limit is asked for.
pub const MAX_RECENT_DELIVERIES: u32 = 200;

/// Narrows [`recent_deliveries`]; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// `evt_…`, exactly.
    pub stripe_event_id: Option<String>,
    pub payment_id: Option<PaymentId>,
}

/// One Stripe event as the webhook endpoint handled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub environment: Environment,
    pub stripe_event_id: String,
    pub event_type: String,
    /// The PaymentIntent (`pi_…`) it concerns, if any.
    pub payment_intent_id: Option<String>,
    /// The ledger payment it concerns, if any (for a parked event: the payment it waits for).
    pub payment_id: Option<PaymentId>,
    pub outcome: DeliveryOutcome,
    /// Why it was ignored, parked, in conflict or rejected.
    pub detail: Option<String>,
    /// The log positions of the events it caused (applied events only).
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// How many times Stripe delivered it.
    pub delivery_count: u32,
    pub received_at: DateTime<Utc>,
    pub last_received_at: DateTime<Utc>,
    /// When its current outcome was reached.
    pub processed_at: DateTime<Utc>,
}

/// The newest deliveries of an environment (by last delivery), at most `limit` (capped at
/// [`MAX_RECENT_DELIVERIES`]).
#[tracing::instrument(skip(pool))]
pub async fn recent_deliveries(
    pool: &PgPool,
    environment: Environment,
    filter: &DeliveryFilter,
    limit: u32,
) -> Result<Vec<WebhookDelivery>, WebhookError> {
    let limit = i64::from(limit.min(MAX_RECENT_DELIVERIES));
    let rows = sqlx::query!(
        r#"SELECT environment, stripe_event_id, event_type, payment_intent_id, payment_id,
                  outcome, detail, first_position, last_position, delivery_count, received_at,
                  last_received_at, processed_at
           FROM webhook_deliveries
           WHERE environment = $1
             AND ($2::text IS NULL OR stripe_event_id = $2)
             AND ($3::uuid IS NULL OR payment_id = $3)
           ORDER BY last_received_at DESC, stripe_event_id
           LIMIT $4"#,
        environment.as_str(),
        filter.stripe_event_id.as_deref(),
        filter.payment_id.map(|payment_id| payment_id.as_uuid()),
        limit
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            delivery_of(StoredDelivery {
                environment: row.environment,
                stripe_event_id: row.stripe_event_id,
                event_type: row.event_type,
                payment_intent_id: row.payment_intent_id,
                payment_id: row.payment_id,
                outcome: row.outcome,
                detail: row.detail,
                first_position: row.first_position,
                last_position: row.last_position,
                delivery_count: row.delivery_count,
                received_at: row.received_at,
                last_received_at: row.last_received_at,
                processed_at: row.processed_at,
            })
        })
        .collect()
}

/// A `webhook_deliveries` row as stored.
struct StoredDelivery {
    environment: String,
    stripe_event_id: String,
    event_type: String,
    payment_intent_id: Option<String>,
    payment_id: Option<uuid::Uuid>,
    outcome: String,
    detail: Option<String>,
    first_position: Option<i64>,
    last_position: Option<i64>,
    delivery_count: i32,
    received_at: DateTime<Utc>,
    last_received_at: DateTime<Utc>,
    processed_at: DateTime<Utc>,
}

fn delivery_of(row: StoredDelivery) -> Result<WebhookDelivery, WebhookError> {
    let corrupt = |reason: String| WebhookError::CorruptRow {
        stripe_event_id: row.stripe_event_id.clone(),
        reason,
    };
    let position = |value: Option<i64>| {
        value
            .map(|value| {
                u64::try_from(value).map_err(|_| corrupt(format!("negative position {value}")))
            })
            .transpose()
    };
    Ok(WebhookDelivery {
        environment: row.environment.parse().unwrap_or(Environment::Test),
        outcome: row.outcome.parse().map_err(corrupt)?,
        first_position: position(row.first_position)?,
        last_position: position(row.last_position)?,
        delivery_count: u32::try_from(row.delivery_count)
            .map_err(|_| corrupt(format!("delivery count {}", row.delivery_count)))?,
        payment_id: row.payment_id.map(PaymentId::from_uuid),
        stripe_event_id: row.stripe_event_id.clone(),
        event_type: row.event_type,
        payment_intent_id: row.payment_intent_id,
        detail: row.detail,
        received_at: row.received_at,
        last_received_at: row.last_received_at,
        processed_at: row.processed_at,
    })
}

/// The outcomes a person must look at: the exceptions queue lists these.
pub const PROBLEM_OUTCOMES: [DeliveryOutcome; 4] = [
    DeliveryOutcome::Parked,
    DeliveryOutcome::Conflict,
    DeliveryOutcome::Rejected,
    DeliveryOutcome::Expired,
];

/// Narrows [`problem_deliveries`]; `None` matches everything. Merchant and currency are the
/// delivery's payment's (a delivery of no known payment has neither).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProblemFilter {
    pub outcome: Option<DeliveryOutcome>,
    pub merchant_id: Option<String>,
    pub currency: Option<String>,
}

/// The problem cursor: `(last_received_at, stripe_event_id)` of the previous page's last row.
pub type ProblemCursor = (DateTime<Utc>, String);

/// One page of deliveries in a [`PROBLEM_OUTCOMES`] outcome, newest first, after the cursor;
/// at most `limit` (capped at [`MAX_RECENT_DELIVERIES`]). The partial index
/// `webhook_deliveries_problems` holds only these rows.
#[tracing::instrument(skip(pool))]
pub async fn problem_deliveries(
    pool: &PgPool,
    environment: Environment,
    filter: &ProblemFilter,
    after: Option<ProblemCursor>,
    limit: u32,
) -> Result<Vec<WebhookDelivery>, WebhookError> {
    let limit = i64::from(limit.min(MAX_RECENT_DELIVERIES));
    let (after_received, after_event) = after.unzip();
    let rows = sqlx::query_as!(
        StoredDelivery,
        r#"SELECT d.environment, d.stripe_event_id, d.event_type, d.payment_intent_id,
                  d.payment_id, d.outcome, d.detail, d.first_position, d.last_position,
                  d.delivery_count, d.received_at, d.last_received_at, d.processed_at
           FROM webhook_deliveries d
           LEFT JOIN projection_payments p ON p.payment_id = d.payment_id
           WHERE d.environment = $1
             AND d.outcome IN ('parked', 'conflict', 'rejected', 'expired')
             AND ($2::text IS NULL OR d.outcome = $2)
             AND ($3::text IS NULL OR p.merchant_id = $3)
             AND ($4::text IS NULL OR p.currency = $4)
             AND ($5::timestamptz IS NULL
                  OR (d.last_received_at, d.stripe_event_id) < ($5, $6::text))
           ORDER BY d.last_received_at DESC, d.stripe_event_id DESC
           LIMIT $7"#,
        environment.as_str(),
        filter.outcome.map(DeliveryOutcome::as_str),
        filter.merchant_id.as_deref(),
        filter.currency.as_deref(),
        after_received,
        after_event,
        limit
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(delivery_of).collect()
}

/// How many deliveries are in each [`PROBLEM_OUTCOMES`] outcome; outcomes with none are
/// absent.
#[tracing::instrument(skip(pool))]
pub async fn problem_counts(
    pool: &PgPool,
    environment: Environment,
) -> Result<Vec<(DeliveryOutcome, i64)>, WebhookError> {
    let rows = sqlx::query!(
        r#"SELECT outcome, count(*) AS "count!" FROM webhook_deliveries
           WHERE environment = $1
             AND outcome IN ('parked', 'conflict', 'rejected', 'expired')
           GROUP BY outcome ORDER BY outcome"#,
        environment.as_str(),
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let outcome = row
                .outcome
                .parse()
                .map_err(|reason| WebhookError::CorruptRow {
                    stripe_event_id: String::new(),
                    reason,
                })?;
            Ok((outcome, row.count))
        })
        .collect()
}

/// The ledger payment a PaymentIntent (`pi_…`) is linked to in an environment, if any: the
/// console's lookup by PaymentIntent id.
#[tracing::instrument(skip(pool))]
pub async fn payment_of_intent(
    pool: &PgPool,
    environment: Environment,
    payment_intent_id: &str,
) -> Result<Option<PaymentId>, WebhookError> {
    let linked = sqlx::query_scalar!(
        r#"SELECT payment_id FROM webhook_payment_links
           WHERE environment = $1 AND payment_intent_id = $2"#,
        environment.as_str(),
        payment_intent_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(linked.map(PaymentId::from_uuid))
}
