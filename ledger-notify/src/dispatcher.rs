//! The dispatcher: follows the log from its checkpoint and turns each committed event into
//! one delivery per enabled endpoint that wants it, in the transaction that moves the
//! checkpoint, with the notification's body stored once (`notifications`) however many endpoints
//! get it. It reads the log the way the projector does (`ledger-projections`' batch
//! reader, which folds each stream through the core), so the state in a notification is the
//! same the read models show.
//!
//! Durability: the log is the outbox. Only committed events are read, so nothing is announced
//! that could still roll back; deliveries and checkpoint commit together, so a crash loses
//! neither, and re-reading after it inserts the same (endpoint, notification) rows, which the
//! unique key turns into no-ops.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ledger_core::ids::Environment;
use ledger_projections::batch::read_batch_with_states;
use ledger_projections::stream_states::StreamStates;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::body::notification_of;
use crate::error::{from_stored, to_stored, NotifyError};
use crate::event_types::wants;

/// Events per dispatcher transaction.
pub const DISPATCH_BATCH_SIZE: usize = 2_000;
/// Stream states kept between batches.
const STATE_CACHE_CAPACITY: usize = 100_000;
/// How long, after dispatching events, the dispatcher lets the next ones gather before it
/// reads them. Under a burst of appends (a few hundred a second) it otherwise woke for nearly
/// every one, a transaction of seven statements for a handful of events; a notification waits
/// at most this long behind the one before it, and the first after a quiet spell not at all.
pub const DISPATCH_GATHER: Duration = Duration::from_millis(50);

/// What one dispatcher transaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    pub events: usize,
    pub deliveries: u64,
    pub last_position: u64,
}

struct ActiveEndpoint {
    id: Uuid,
    environment: Environment,
    event_types: Vec<String>,
    created_position: u64,
}

/// Turns the log into deliveries.
pub struct Dispatcher {
    pool: PgPool,
    states: StreamStates,
    batch_size: usize,
    /// Woken after deliveries were inserted, so the sender need not poll.
    sent: Arc<Notify>,
    /// The last position dispatched by this dispatcher: following, an announcement of an
    /// append up to it needs no read.
    dispatched_to: u64,
    /// The pause after a catch-up that found events ([`DISPATCH_GATHER`]).
    gather: Duration,
}

impl Dispatcher {
    pub fn new(pool: PgPool, sent: Arc<Notify>) -> Dispatcher {
        Dispatcher {
            pool,
            states: StreamStates::new(STATE_CACHE_CAPACITY),
            batch_size: DISPATCH_BATCH_SIZE,
            sent,
            dispatched_to: 0,
            gather: DISPATCH_GATHER,
        }
    }

    /// The same dispatcher, pausing `gather` instead of [`DISPATCH_GATHER`] after a catch-up
    /// that found events.
    pub fn gathering_for(self, gather: Duration) -> Dispatcher {
        Dispatcher { gather, ..self }
    }

    /// Dispatches the events after the checkpoint, one batch; `None` when there were none.
    pub async fn run_batch(&mut self) -> Result<Option<Dispatched>, NotifyError> {
        let mut transaction = ledger_store::begin_transaction(&self.pool).await?;
        // Locked: a second dispatcher (another server process) waits here and then sees what
        // this one committed.
        let checkpoint =
            sqlx::query_scalar!("SELECT position FROM notification_checkpoint WHERE id FOR UPDATE")
                .fetch_one(&mut *transaction)
                .await?;
        let checkpoint = from_stored(checkpoint)?;
        let batch = read_batch_with_states(
            &mut transaction,
            &mut self.states,
            checkpoint + 1,
            None,
            self.batch_size,
        )
        .await?;
        let Some(batch) = batch else {
            transaction.commit().await?;
            return Ok(None);
        };
        let endpoints = sqlx::query!(
            r#"SELECT endpoint_id, environment, event_types, created_position
               FROM notification_endpoints WHERE status = 'enabled'"#
        )
        .fetch_all(&mut *transaction)
        .await?
        .into_iter()
        .map(|row| {
            Ok(ActiveEndpoint {
                id: row.endpoint_id,
                environment: row.environment.parse().map_err(|_| {
                    NotifyError::Corrupt(format!("environment {:?}", row.environment))
                })?,
                event_types: row.event_types,
                created_position: from_stored(row.created_position)?,
            })
        })
        .collect::<Result<Vec<_>, NotifyError>>()?;

        let mut endpoint_ids = Vec::new();
        let mut notification_ids = Vec::new();
        let mut positions = Vec::new();
        let mut subjects = Vec::new();
        let mut types = Vec::new();
        // Bodies once per notification, whatever the number of endpoints it goes to.
        let mut body_ids = Vec::new();
        let mut body_positions = Vec::new();
        let mut bodies = Vec::new();
        let now = Utc::now();
        for event in &batch.events {
            let lag = (now - event.recorded_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("ledger_notify_dispatch_lag_seconds").record(lag);
            if endpoints.is_empty() {
                continue;
            }
            let notification = notification_of(event)
                .map_err(|error| NotifyError::Corrupt(format!("notification body: {error}")))?;
            let Some(notification) = notification else {
                continue;
            };
            let position = to_stored(notification.position)?;
            let mut wanted = false;
            for endpoint in &endpoints {
                if endpoint.environment == notification.environment
                    && notification.position > endpoint.created_position
                    && wants(&endpoint.event_types, notification.kind)
                {
                    wanted = true;
                    endpoint_ids.push(endpoint.id);
                    notification_ids.push(notification.id);
                    positions.push(position);
                    subjects.push(notification.subject_id);
                    types.push(notification.kind.as_str().to_owned());
                }
            }
            if wanted {
                body_ids.push(notification.id);
                body_positions.push(position);
                bodies.push(notification.body);
            }
        }
        let deliveries = if endpoint_ids.is_empty() {
            0
        } else {
            // After a crash the batch is read again: its bodies and deliveries exist already.
            sqlx::query!(
                r#"INSERT INTO notifications (notification_id, position, body)
                   SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[])
                   ON CONFLICT (notification_id) DO NOTHING"#,
                &body_ids,
                &body_positions,
                &bodies,
            )
            .execute(&mut *transaction)
            .await?;
            sqlx::query!(
                r#"INSERT INTO notification_deliveries
                       (endpoint_id, notification_id, position, subject_id, notification_type,
                        status)
                   SELECT endpoint_id, notification_id, position, subject_id, notification_type,
                          'pending'
                   FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[])
                        AS d(endpoint_id, notification_id, position, subject_id,
                             notification_type)
                   ON CONFLICT (notification_id, endpoint_id, round) DO NOTHING"#,
                &endpoint_ids,
                &notification_ids,
                &positions,
                &subjects,
                &types,
            )
            .execute(&mut *transaction)
            .await?
            .rows_affected()
        };
        let last_position = batch.last_position();
        sqlx::query!(
            r#"UPDATE notification_checkpoint
               SET position = $1, last_recorded_at = $2, updated_at = now() WHERE id"#,
            to_stored(last_position)?,
            batch.last_recorded_at(),
        )
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        if deliveries > 0 {
            metrics::counter!("ledger_notify_deliveries_created_total").increment(deliveries);
            self.sent.notify_one();
        }
        Ok(Some(Dispatched {
            events: batch.events.len(),
            deliveries,
            last_position,
        }))
    }

    /// Dispatches until the log's end; returns the events read.
    ///
    /// A batch shorter than a full one read to the end: no second transaction is spent to find
    /// the end empty (under a stream of small appends, that was every other one). An event
    /// committed after that read wakes [`Dispatcher::follow`] with the log's notification.
    pub async fn catch_up(&mut self) -> Result<u64, NotifyError> {
        let mut events = 0;
        while let Some(dispatched) = self.run_batch().await? {
            events += dispatched.events as u64;
            self.dispatched_to = self.dispatched_to.max(dispatched.last_position);
            if dispatched.events < self.batch_size {
                break;
            }
        }
        Ok(events)
    }

    /// Catches up, then follows the log until `shutdown`: woken by the log's notification,
    /// polling every `poll_interval` in case one is missed, and pausing (see
    /// [`DISPATCH_GATHER`]) after each catch-up that found events. Errors are logged and retried.
    pub async fn follow(mut self, poll_interval: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut listener: Option<PgListener> = None;
        loop {
            if listener.is_none() {
                listener = listen(&self.pool).await;
            }
            let caught_up = tokio::select! {
                result = self.catch_up() => result,
                () = &mut shutdown => return,
            };
            match caught_up {
                Ok(0) => {}
                Ok(_) => {
                    tokio::select! {
                        () = tokio::time::sleep(self.gather) => {}
                        () = &mut shutdown => return,
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "notification dispatcher failed; retrying");
                    listener = None;
                }
            }
            let wait = async {
                match listener.as_mut() {
                    Some(listener) => {
                        let _ = ledger_store::wait_for_appends(
                            listener,
                            poll_interval,
                            self.dispatched_to,
                        )
                        .await;
                    }
                    None => tokio::time::sleep(poll_interval).await,
                }
            };
            tokio::select! {
                () = wait => {}
                () = &mut shutdown => return,
            }
        }
    }
}

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(ledger_store::NOTIFY_CHANNEL).await.ok()?;
    Some(listener)
}
