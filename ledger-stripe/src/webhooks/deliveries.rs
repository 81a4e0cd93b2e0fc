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
            let corrupt = |reason: String| WebhookError::CorruptRow {
                stripe_event_id: row.stripe_event_id.clone(),
                reason,
            };
            let position = |value: Option<i64>| {
                value
                    .map(|value| {
                        u64::try_from(value)
                            .map_err(|_| corrupt(format!("negative position {value}")))
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
        })
        .collect()
}
