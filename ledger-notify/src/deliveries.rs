//! What support and the API read about deliveries, and replays.

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{from_stored, to_stored, NotifyError};

/// Most deliveries one page lists.
pub const MAX_PAGE_SIZE: i64 = 100;
/// Most notifications one replay sends again.
pub const MAX_REPLAY: i64 = 10_000;

/// One delivery of a notification to an endpoint, with its latest attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub delivery_id: i64,
    pub notification_id: Uuid,
    /// 0 for the first sending, then one more per replay.
    pub round: i32,
    pub position: u64,
    pub notification_type: String,
    /// `pending`, `delivered` or `failed` (given up after the retry window).
    pub status: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    pub last_response: Option<String>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

async fn check_endpoint(
    pool: &PgPool,
    environment: Environment,
    endpoint_id: Uuid,
) -> Result<(), NotifyError> {
    sqlx::query_scalar!(
        "SELECT endpoint_id FROM notification_endpoints WHERE environment = $1 AND endpoint_id = $2",
        environment.as_str(),
        endpoint_id
    )
    .fetch_optional(pool)
    .await?
    .map(|_| ())
    .ok_or(NotifyError::EndpointNotFound(endpoint_id))
}

/// An endpoint's deliveries, newest first, `first` of them (at most [`MAX_PAGE_SIZE`]) before
/// the delivery id `before`.
pub async fn list(
    pool: &PgPool,
    environment: Environment,
    endpoint_id: Uuid,
    first: i64,
    before: Option<i64>,
) -> Result<Vec<Delivery>, NotifyError> {
    if !(1..=MAX_PAGE_SIZE).contains(&first) {
        return Err(NotifyError::invalid(
            "first",
            format!("ask for 1 to {MAX_PAGE_SIZE} deliveries"),
        ));
    }
    check_endpoint(pool, environment, endpoint_id).await?;
    let rows = sqlx::query!(
        r#"SELECT delivery_id, notification_id, round, position, notification_type, status,
                  attempts, created_at, last_attempt_at, last_status_code, last_latency_ms,
                  last_error, last_response, next_attempt_at, delivered_at
           FROM notification_deliveries
           WHERE endpoint_id = $1 AND delivery_id < $2
           ORDER BY delivery_id DESC
           LIMIT $3"#,
        endpoint_id,
        before.unwrap_or(i64::MAX),
        first
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Delivery {
                delivery_id: row.delivery_id,
                notification_id: row.notification_id,
                round: row.round,
                position: from_stored(row.position)?,
                notification_type: row.notification_type,
                next_attempt_at: (row.status == "pending").then_some(row.next_attempt_at),
                status: row.status,
                attempts: row.attempts,
                created_at: row.created_at,
                last_attempt_at: row.last_attempt_at,
                last_status_code: row.last_status_code,
                last_latency_ms: row.last_latency_ms,
                last_error: row.last_error,
                last_response: row.last_response,
                delivered_at: row.delivered_at,
            })
        })
        .collect()
}

/// Sends the endpoint's notifications of log positions `from..=to` again, each as a new
/// round with the same notification id and body. Returns how many were queued.
pub async fn replay(
    pool: &PgPool,
    environment: Environment,
    endpoint_id: Uuid,
    from_position: u64,
    to_position: u64,
) -> Result<u64, NotifyError> {
    if from_position == 0 || to_position < from_position {
        return Err(NotifyError::invalid(
            "fromPosition",
            "positions start at 1 and fromPosition is at most toPosition",
        ));
    }
    check_endpoint(pool, environment, endpoint_id).await?;
    let queued = sqlx::query!(
        r#"INSERT INTO notification_deliveries
               (endpoint_id, notification_id, round, position, subject_id, notification_type,
                status)
           SELECT endpoint_id, notification_id, round + 1, position, subject_id,
                  notification_type, 'pending'
           FROM (SELECT DISTINCT ON (notification_id) *
                 FROM notification_deliveries
                 WHERE endpoint_id = $1 AND position BETWEEN $2 AND $3
                 ORDER BY notification_id, round DESC) latest
           ORDER BY position
           LIMIT $4
           ON CONFLICT (notification_id, endpoint_id, round) DO NOTHING"#,
        endpoint_id,
        to_stored(from_position)?,
        to_stored(to_position)?,
        MAX_REPLAY,
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(queued)
}
