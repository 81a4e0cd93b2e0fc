//! [`delivery_health`]: webhook deliveries counted per hour or day, for the console's webhook
//! health page. Reads the hourly rollup `webhook_delivery_hours`, the raw `webhook_deliveries`
//! of the window's partial hours and `webhook_parked`, over a bounded window (never the log).

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

/// Deliveries of events first received in `from..to`, per bucket of `bucket_seconds` (whole
/// hours, at least one, aligned to UTC midnight); buckets without deliveries are absent.
///
/// The whole hours of the window come from `webhook_delivery_hours` (kept by triggers on
/// `webhook_deliveries`, see its migration), the partial first and last hours from the raw
/// rows through `webhook_deliveries_received`: the same numbers as counting every delivery,
/// at the cost of a few hundred rows.
#[tracing::instrument(skip(pool))]
pub async fn delivery_health(
    pool: &PgPool,
    environment: Environment,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket_seconds: i64,
) -> Result<Vec<HealthBucket>, WebhookError> {
    let from = from.max(to - chrono::Duration::days(MAX_HEALTH_WINDOW_DAYS));
    // Hours are the rollup's grain: a bucket must be made of whole ones.
    let bucket_seconds = (bucket_seconds / 3600).max(1) * 3600;
    let rows = sqlx::query_as!(
        HealthBucket,
        // The partial hours' bounds are written out (not a CTE) so that they are index
        // conditions on `webhook_deliveries_received`: first [from, first whole hour), then
        // [last hour, to); when `from..to` lies within one hour the first range takes it all.
        r#"WITH hours AS (
               -- An hour's slots summed; its maximum from the raw rows where a slot says
               -- the rollup's may be stale (see the slots' migration).
               SELECT r.hour, sum(r.events) AS events, sum(r.succeeded) AS succeeded,
                      sum(r.duplicates) AS duplicates, sum(r.redeliveries) AS redeliveries,
                      sum(r.parked) AS parked, sum(r.failed) AS failed,
                      sum(r.processing_seconds_sum) AS seconds,
                      CASE WHEN bool_or(r.max_recount)
                           THEN (SELECT max(extract(epoch FROM d.processed_at - d.received_at))
                                 FROM webhook_deliveries d
                                 WHERE d.environment = $1 AND d.received_at >= r.hour
                                   AND d.received_at < r.hour + interval '1 hour')
                           ELSE max(r.processing_seconds_max) END AS max_seconds
               FROM webhook_delivery_hours r
               WHERE r.environment = $1
                 AND r.hour >= date_bin(interval '1 hour', $2::timestamptz - interval '1 microsecond',
                                        TIMESTAMPTZ '2000-01-01 00:00:00+00') + interval '1 hour'
                 AND r.hour < date_bin(interval '1 hour', $3::timestamptz,
                                       TIMESTAMPTZ '2000-01-01 00:00:00+00')
               GROUP BY r.hour
               UNION ALL
               SELECT date_bin(interval '1 hour', received_at,
                               TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                      count(*),
                      count(*) FILTER (WHERE outcome IN ('applied', 'duplicate', 'ignored')),
                      count(*) FILTER (WHERE outcome = 'duplicate'),
                      sum(delivery_count - 1),
                      count(*) FILTER (WHERE outcome = 'parked'),
                      count(*) FILTER (WHERE outcome IN ('conflict', 'rejected', 'expired')),
                      sum(extract(epoch FROM processed_at - received_at)),
                      max(extract(epoch FROM processed_at - received_at))
               FROM webhook_deliveries
               WHERE environment = $1
                 AND ((received_at >= $2
                       AND received_at < LEAST($3, date_bin(interval '1 hour',
                               $2::timestamptz - interval '1 microsecond',
                               TIMESTAMPTZ '2000-01-01 00:00:00+00') + interval '1 hour'))
                      OR (received_at >= GREATEST(
                              date_bin(interval '1 hour', $3::timestamptz,
                                       TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                              date_bin(interval '1 hour', $2::timestamptz - interval '1 microsecond',
                                       TIMESTAMPTZ '2000-01-01 00:00:00+00') + interval '1 hour')
                          AND received_at < $3))
               GROUP BY 1)
           SELECT date_bin($4::bigint * interval '1 second', hour,
                           TIMESTAMPTZ '2000-01-01 00:00:00+00') AS "start!",
                  sum(events)::bigint AS "events!",
                  sum(succeeded)::bigint AS "succeeded!",
                  sum(duplicates)::bigint AS "duplicates!",
                  sum(redeliveries)::bigint AS "redeliveries!",
                  sum(parked)::bigint AS "parked!",
                  sum(failed)::bigint AS "failed!",
                  round(sum(seconds) / sum(events) * 1000)::bigint AS "mean_processing_ms!",
                  round(max(max_seconds) * 1000)::bigint AS "max_processing_ms!"
           FROM hours
           GROUP BY 1
           HAVING sum(events) > 0
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
