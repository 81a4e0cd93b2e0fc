//! [`delivery_health`]: webhook deliveries counted per hour or day, for the console's webhook
//! health page. Reads `webhook_deliveries` and `webhook_parked` over a bounded window through
//! the `webhook_deliveries_recent` index (never the log).

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use sqlx::PgPool;

use super::error::WebhookError;

/// The widest window one call counts, whatever is asked for.
pub const MAX_HEALTH_WINDOW_DAYS: i64 = 92;

/// The deliveries of events first received in one hour or day (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthBucket {
    pub start: DateTime<Utc>,
    /// Stripe events first received in the bucket.
    pub events: i64,
    /// Reached a final outcome: applied, duplicate or ignored.
    pub succeeded: i64,
    /// Outcome `duplicate`: the ledger already held every fact.
    pub duplicates: i64,
    /// Deliveries past the first (Stripe sent the event again).
    pub redeliveries: i64,
    /// Still waiting for what they depend on.
    pub parked: i64,
    /// Conflict, rejected or expired: kept for a person.
    pub failed: i64,
    /// From first receipt to the current outcome (a parked event's wait included).
    pub mean_processing_ms: i64,
    pub max_processing_ms: i64,
}

/// What waits in `webhook_parked` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedBacklog {
    pub count: i64,
    pub oldest_parked_at: Option<DateTime<Utc>>,
}

/// Deliveries of events first received in `from..to`, per bucket of `bucket_seconds`
/// (aligned to UTC midnight); buckets without deliveries are absent.
#[tracing::instrument(skip(pool))]
pub async fn delivery_health(
    pool: &PgPool,
    environment: Environment,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket_seconds: i64,
) -> Result<Vec<HealthBucket>, WebhookError> {
    let from = from.max(to - chrono::Duration::days(MAX_HEALTH_WINDOW_DAYS));
    let rows = sqlx::query_as!(
        HealthBucket,
        r#"SELECT date_bin($4::bigint * interval '1 second', received_at,
                           TIMESTAMPTZ '2000-01-01 00:00:00+00') AS "start!",
                  count(*) AS "events!",
                  count(*) FILTER (WHERE outcome IN ('applied', 'duplicate', 'ignored'))
                      AS "succeeded!",
                  count(*) FILTER (WHERE outcome = 'duplicate') AS "duplicates!",
                  COALESCE(sum(delivery_count - 1), 0)::bigint AS "redeliveries!",
                  count(*) FILTER (WHERE outcome = 'parked') AS "parked!",
                  count(*) FILTER (WHERE outcome IN ('conflict', 'rejected', 'expired'))
                      AS "failed!",
                  round(avg(extract(epoch FROM processed_at - received_at)) * 1000)::bigint
                      AS "mean_processing_ms!",
                  round(max(extract(epoch FROM processed_at - received_at)) * 1000)::bigint
                      AS "max_processing_ms!"
           FROM webhook_deliveries
           WHERE environment = $1
             AND last_received_at >= $2 AND received_at >= $2 AND received_at < $3
           GROUP BY 1
           ORDER BY 1"#,
        environment.as_str(),
        from,
        to,
        bucket_seconds,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// How many events are parked now, and since when the oldest waits.
#[tracing::instrument(skip(pool))]
pub async fn parked_backlog(
    pool: &PgPool,
    environment: Environment,
) -> Result<ParkedBacklog, WebhookError> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "count!", min(parked_at) AS oldest
           FROM webhook_parked WHERE environment = $1"#,
        environment.as_str(),
    )
    .fetch_one(pool)
    .await?;
    Ok(ParkedBacklog {
        count: row.count,
        oldest_parked_at: row.oldest,
    })
}
