//! Retention: delivered and failed deliveries are kept for a period (30 days by default), then
//! deleted, and with them the bodies no delivery is left of, so the tables hold a window of
//! history instead of growing with every event. The log keeps every event for ever; what goes
//! is the record of sending it. Pending deliveries are never deleted, whatever their age (an
//! endpoint disabled by an admin keeps its queue for when it is enabled again), and a replay
//! covers the positions whose deliveries are still kept.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use crate::error::NotifyError;

/// How long finished deliveries are kept unless configured.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3_600);
/// At least the retry window: support looks at a failing endpoint's attempts for as long as
/// they go on.
pub const MIN_RETENTION: Duration = Duration::from_secs(3 * 24 * 3_600);
/// Deliveries deleted per statement: short transactions that never hold the sender up.
pub const PRUNE_BATCH: i64 = 5_000;
/// How often the pruner looks again once nothing is left to delete.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// Deletes up to `limit` finished deliveries created more than `retention` ago, oldest first;
/// returns how many.
pub async fn prune(pool: &PgPool, retention: Duration, limit: i64) -> Result<u64, NotifyError> {
    let retention = chrono::Duration::from_std(retention)
        .map_err(|_| NotifyError::invalid("retention", "a retention period that fits a date"))?;
    let cutoff = Utc::now() - retention;
    let mut transaction = ledger_store::begin_transaction(pool).await?;
    let notification_ids = sqlx::query_scalar!(
        r#"DELETE FROM notification_deliveries
           WHERE delivery_id IN (
               SELECT delivery_id FROM notification_deliveries
               WHERE status <> 'pending' AND created_at < $1
               ORDER BY created_at
               LIMIT $2)
           RETURNING notification_id"#,
        cutoff,
        limit
    )
    .fetch_all(&mut *transaction)
    .await?;
    let deleted = u64::try_from(notification_ids.len()).unwrap_or(u64::MAX);
    // A body goes with the last delivery of it. This statement sees the deletions above (a
    // statement of its own); a replay that queues a delivery of one of these bodies meanwhile
    // makes the foreign key refuse the delete, and the batch is pruned again later.
    sqlx::query!(
        r#"DELETE FROM notifications n
           WHERE n.notification_id = ANY ($1)
             AND NOT EXISTS (SELECT FROM notification_deliveries d
                             WHERE d.notification_id = n.notification_id)"#,
        &notification_ids
    )
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    metrics::counter!("ledger_notify_deliveries_pruned_total").increment(deleted);
    Ok(deleted)
}

/// Prunes until `shutdown`: batch after batch while there is a backlog of expired
/// deliveries, then every [`PRUNE_INTERVAL`]. Errors are logged and retried.
pub async fn prune_until(pool: PgPool, retention: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let pause = match prune(&pool, retention, PRUNE_BATCH).await {
            Ok(deleted) if deleted == u64::try_from(PRUNE_BATCH).unwrap_or(u64::MAX) => {
                Duration::ZERO
            }
            Ok(_) => PRUNE_INTERVAL,
            Err(error) => {
                tracing::warn!(%error, "pruning notification deliveries failed; retrying");
                PRUNE_INTERVAL
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut shutdown => return,
        }
    }
}
