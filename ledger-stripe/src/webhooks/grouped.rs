//! The statements every delivery makes, grouped across concurrent deliveries: the read of its
//! event's earlier outcome with its PaymentIntent's link (`seen`), the record of what became
//! of it (`record`), and, for the first event of a PaymentIntent, the link to its payment
//! (`link`).
//!
//! Made one by one they were most of a delivery's cost in the database: each a round trip,
//! a statement's fixed cost, and for the record a commit of its own with its WAL flush and a
//! run of the hourly rollup's statement trigger. A burst of webhooks (a checkout sends three
//! events at once) queues them, so one task per kind takes every request waiting (up to
//! [`MAX_GROUP`]) and answer them all with one statement, as the store groups its stream reads
//! and appends. Each request is still answered by a statement sent after it was asked, so it
//! sees every commit made before it was asked, as a statement of its own would.
//!
//! A grouped statement that fails is not an answer for everyone in it: each request is then
//! made again on its own ([`Grouped::seen`] falls back to `tables::seen`, [`Grouped::record`]
//! to `tables::record_delivery`, which runs [`record_rows`] with its one row), so one bad row
//! fails only its own delivery. A link the grouped statement could not settle (its
//! PaymentIntent met another process's link, or its payment has another PaymentIntent) is made
//! again on its own too, by `tables::link_payment`, which tells those cases apart.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use super::error::WebhookError;
use super::outcome::DeliveryOutcome;
use super::tables::{self, DeliveryRow, PaymentLink, Seen};

/// Most requests one statement answers.
pub(super) const MAX_GROUP: usize = 256;
/// Tasks per kind of statement: while a task's statement runs, the next group gathers. With
/// two each, under a burst on two cores shared with the database, statements ran side by side
/// at half the size (a record answered 2.8 deliveries against 4.5 with one task), and the
/// database spent more CPU on the same deliveries (docs/scaling.md, "Where a confirmation's
/// time goes").
const TASKS: usize = 1;
/// Requests waiting for a task; callers wait when it is full.
const QUEUE_CAPACITY: usize = 4_096;
/// How long a task keeps its statements' generic plans. A generic plan is made with the
/// tables as they are at its first execution: on a young, nearly empty table the planner
/// sees no difference between probing `(environment, stripe_event_id)` and scanning an index
/// on `environment` alone, and a kept scan grew slower with every delivery (4 ms a statement
/// after 9,000). Plans remade every few seconds follow the tables' growth, at the cost of
/// one planning per task and period.
const REPLAN_EVERY: Duration = Duration::from_secs(2);

/// `None`: the grouped statement failed; the caller makes its own.
type Reply<T> = oneshot::Sender<Option<T>>;

struct SeenRequest {
    environment: Environment,
    stripe_event_id: String,
    payment_intent_id: Option<String>,
    reply: Reply<Result<Seen, String>>,
}

/// A delivery's row, owned so that it can wait in the queue, with the subject whose parked
/// events the record asks about.
pub(super) struct RecordRow {
    environment: Environment,
    stripe_event_id: String,
    event_type: String,
    payment_intent_id: Option<String>,
    payment_id: Option<Uuid>,
    outcome: DeliveryOutcome,
    detail: Option<String>,
    positions: Option<(i64, i64)>,
    received_at: DateTime<Utc>,
    processed_at: DateTime<Utc>,
    subject: String,
}

impl RecordRow {
    pub fn stripe_event_id(&self) -> &str {
        &self.stripe_event_id
    }

    pub fn new(row: &DeliveryRow<'_>, subject: &str) -> Result<RecordRow, WebhookError> {
        let positions = match row.positions {
            Some((first, last)) => Some((tables::position(first)?, tables::position(last)?)),
            None => None,
        };
        Ok(RecordRow {
            environment: row.environment,
            stripe_event_id: row.stripe_event_id.to_owned(),
            event_type: row.event_type.to_owned(),
            payment_intent_id: row.payment_intent_id.map(str::to_owned),
            payment_id: row.payment_id,
            outcome: row.outcome,
            detail: tables::bounded(row.detail),
            positions,
            received_at: row.received_at,
            processed_at: row.processed_at,
            subject: subject.to_owned(),
        })
    }
}

struct RecordRequest {
    row: RecordRow,
    reply: Reply<bool>,
}

struct LinkRequest {
    environment: Environment,
    payment_intent_id: String,
    payment_id: Uuid,
    reply: Reply<Uuid>,
}

/// The queues, and the tasks that empty them (they stop once this is dropped).
pub(super) struct Grouped {
    pool: PgPool,
    seen: mpsc::Sender<SeenRequest>,
    record: mpsc::Sender<RecordRequest>,
    link: mpsc::Sender<LinkRequest>,
}

impl Grouped {
    /// Starts the tasks; needs a Tokio runtime.
    pub fn start(pool: PgPool) -> Grouped {
        let (seen, seen_waiting) = mpsc::channel(QUEUE_CAPACITY);
        let (record, record_waiting) = mpsc::channel(QUEUE_CAPACITY);
        let (link, link_waiting) = mpsc::channel(QUEUE_CAPACITY);
        let seen_waiting = Arc::new(Mutex::new(seen_waiting));
        let record_waiting = Arc::new(Mutex::new(record_waiting));
        let link_waiting = Arc::new(Mutex::new(link_waiting));
        for _ in 0..TASKS {
            tokio::spawn(serve(pool.clone(), seen_waiting.clone(), answer_seen));
            tokio::spawn(serve(pool.clone(), record_waiting.clone(), answer_records));
            tokio::spawn(serve(pool.clone(), link_waiting.clone(), answer_links));
        }
        Grouped {
            pool,
            seen,
            record,
            link,
        }
    }

    /// [`tables::seen`], grouped.
    pub async fn seen(
        &self,
        environment: Environment,
        stripe_event_id: &str,
        payment_intent_id: Option<&str>,
    ) -> Result<Seen, WebhookError> {
        let (reply, answer) = oneshot::channel();
        let request = SeenRequest {
            environment,
            stripe_event_id: stripe_event_id.to_owned(),
            payment_intent_id: payment_intent_id.map(str::to_owned),
            reply,
        };
        if self.seen.send(request).await.is_ok() {
            match answer.await {
                Ok(Some(Ok(seen))) => return Ok(seen),
                Ok(Some(Err(reason))) => {
                    return Err(WebhookError::CorruptRow {
                        stripe_event_id: stripe_event_id.to_owned(),
                        reason,
                    })
                }
                Ok(None) | Err(_) => {}
            }
        }
        tables::seen(&self.pool, environment, stripe_event_id, payment_intent_id).await
    }

    /// [`tables::record_delivery`], grouped: records the delivery and answers whether any
    /// event is parked on `subject`.
    pub async fn record(&self, row: &DeliveryRow<'_>, subject: &str) -> Result<bool, WebhookError> {
        let (reply, answer) = oneshot::channel();
        let request = RecordRequest {
            row: RecordRow::new(row, subject)?,
            reply,
        };
        if self.record.send(request).await.is_ok() {
            if let Ok(Some(parked)) = answer.await {
                return Ok(parked);
            }
        }
        tables::record_delivery(&self.pool, row, subject).await
    }

    /// [`tables::link_payment`], grouped: links a PaymentIntent to a payment, or answers the
    /// link it has already.
    pub async fn link(
        &self,
        environment: Environment,
        payment_intent_id: &str,
        payment_id: Uuid,
    ) -> Result<PaymentLink, WebhookError> {
        let (reply, answer) = oneshot::channel();
        let request = LinkRequest {
            environment,
            payment_intent_id: payment_intent_id.to_owned(),
            payment_id,
            reply,
        };
        if self.link.send(request).await.is_ok() {
            if let Ok(Some(linked)) = answer.await {
                return Ok(PaymentLink::Linked(linked));
            }
        }
        tables::link_payment(&self.pool, environment, payment_intent_id, payment_id).await
    }
}

/// A request that can be answered.
trait Request {
    fn given_up(&self) -> bool;
    /// Tells the caller to make the statement on its own.
    fn fall_back(self);
}

impl Request for SeenRequest {
    fn given_up(&self) -> bool {
        self.reply.is_closed()
    }

    fn fall_back(self) {
        let _ = self.reply.send(None);
    }
}

impl Request for LinkRequest {
    fn given_up(&self) -> bool {
        self.reply.is_closed()
    }

    fn fall_back(self) {
        let _ = self.reply.send(None);
    }
}

impl Request for RecordRequest {
    // A record is written even when its delivery stopped waiting: the append it records
    // happened.
    fn given_up(&self) -> bool {
        false
    }

    fn fall_back(self) {
        let _ = self.reply.send(None);
    }
}

/// A grouped statement's rows, one per request in their order; or `None`, every request told
/// to make its own statement, when it failed or answered another number of rows.
fn one_row_each<R: Request, T>(
    requests: &mut Vec<R>,
    rows: Result<Vec<T>, sqlx::Error>,
) -> Option<Vec<T>> {
    match rows {
        Ok(rows) if rows.len() == requests.len() => Some(rows),
        Ok(_) | Err(_) => {
            requests.drain(..).for_each(Request::fall_back);
            None
        }
    }
}

/// One task: takes the requests queued, answers them with one statement, and again.
///
/// Each task keeps a connection of its own ([`probing_connection`]), whose plans it has
/// remade every [`REPLAN_EVERY`]. A connection whose statement failed is dropped, and the
/// next group takes a new one.
async fn serve<R, F, Fut>(pool: PgPool, waiting: Arc<Mutex<mpsc::Receiver<R>>>, answer: F)
where
    R: Request,
    F: Fn(PgConnection, Vec<R>) -> Fut,
    Fut: std::future::Future<Output = Option<PgConnection>>,
{
    let mut requests = Vec::with_capacity(MAX_GROUP);
    let mut kept: Option<(PgConnection, Instant)> = None;
    loop {
        {
            let mut waiting = waiting.lock().await;
            if waiting.recv_many(&mut requests, MAX_GROUP).await == 0 {
                return;
            }
        }
        requests.retain(|request| !request.given_up());
        if requests.is_empty() {
            continue;
        }
        let connection = match kept.take() {
            Some((mut connection, planned_at)) if planned_at.elapsed() >= REPLAN_EVERY => {
                // Closing the prepared statements makes the next execution plan them again.
                match connection.clear_cached_statements().await {
                    Ok(()) => Ok((connection, Instant::now())),
                    Err(_) => probing_connection(&pool).await.map(|c| (c, Instant::now())),
                }
            }
            Some(kept) => Ok(kept),
            None => probing_connection(&pool).await.map(|c| (c, Instant::now())),
        };
        match connection {
            Ok((connection, planned_at)) => {
                kept = answer(connection, std::mem::take(&mut requests))
                    .await
                    .map(|connection| (connection, planned_at));
            }
            // Each request falls back to a statement of its own on the pool.
            Err(_) => requests.drain(..).for_each(Request::fall_back),
        }
    }
}

/// A connection of the pool's, detached from it, on which PostgreSQL keeps generic plans.
/// With custom plans it planned these statements again on every execution, sized by the
/// arrays in hand, and that cost more than running them.
async fn probing_connection(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query!(
        "SELECT set_config('plan_cache_mode', 'force_generic_plan', false) AS plan_cache_mode"
    )
    .fetch_one(&mut connection)
    .await?;
    Ok(connection)
}

async fn answer_seen(
    mut connection: PgConnection,
    mut requests: Vec<SeenRequest>,
) -> Option<PgConnection> {
    let environments: Vec<&str> = requests.iter().map(|r| r.environment.as_str()).collect();
    let event_ids: Vec<&str> = requests
        .iter()
        .map(|r| r.stripe_event_id.as_str())
        .collect();
    let payment_intents: Vec<Option<&str>> = requests
        .iter()
        .map(|r| r.payment_intent_id.as_deref())
        .collect();
    // One index probe into each table per request (scalar subqueries are never flattened
    // into a join).
    let rows = sqlx::query!(
        r#"SELECT k.n AS "n!",
               (SELECT outcome FROM webhook_deliveries d
                WHERE d.environment = k.environment AND d.stripe_event_id = k.event_id) AS outcome,
               (SELECT payment_id FROM webhook_payment_links l
                WHERE l.environment = k.environment AND l.payment_intent_id = k.payment_intent)
                   AS linked_payment
           FROM UNNEST($1::text[], $2::text[], $3::text[])
                WITH ORDINALITY AS k(environment, event_id, payment_intent, n)
           ORDER BY k.n"#,
        &environments as &[&str],
        &event_ids as &[&str],
        &payment_intents as &[Option<&str>],
    )
    .fetch_all(&mut connection)
    .await;
    let rows = one_row_each(&mut requests, rows)?;
    for (request, row) in requests.into_iter().zip(rows) {
        let outcome = row.outcome.map(|outcome| outcome.parse()).transpose();
        let _ = request.reply.send(Some(outcome.map(|outcome| Seen {
            outcome,
            linked_payment: row.linked_payment,
        })));
    }
    Some(connection)
}

async fn answer_records(
    mut connection: PgConnection,
    requests: Vec<RecordRequest>,
) -> Option<PgConnection> {
    let mut healthy = true;
    for group in without_repeats(requests) {
        if healthy {
            healthy = record_group(&mut connection, group).await;
        } else {
            // Each delivery records itself.
            group.into_iter().for_each(Request::fall_back);
        }
    }
    healthy.then_some(connection)
}

/// Links with one statement: each request is answered with the payment its PaymentIntent is
/// linked to, the new link or the one the statement's snapshot holds. A request left without
/// (its insert met a conflicting link committed after the snapshot, or its payment's own key
/// refused it) is answered `None` and links itself. Deliveries of one PaymentIntent take
/// turns on it, so a group names each PaymentIntent once.
async fn answer_links(
    mut connection: PgConnection,
    mut requests: Vec<LinkRequest>,
) -> Option<PgConnection> {
    let environments: Vec<&str> = requests.iter().map(|r| r.environment.as_str()).collect();
    let payment_intents: Vec<&str> = requests
        .iter()
        .map(|r| r.payment_intent_id.as_str())
        .collect();
    let payment_ids: Vec<Uuid> = requests.iter().map(|r| r.payment_id).collect();
    let rows = sqlx::query!(
        r#"WITH given AS (
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[])
                   WITH ORDINALITY AS g(environment, payment_intent_id, payment_id, n)),
           inserted AS (
               INSERT INTO webhook_payment_links (environment, payment_intent_id, payment_id)
               SELECT environment, payment_intent_id, payment_id FROM given ORDER BY n
               ON CONFLICT DO NOTHING
               RETURNING environment, payment_intent_id, payment_id)
           SELECT g.n AS "n!",
                  COALESCE((SELECT i.payment_id FROM inserted i
                            WHERE i.environment = g.environment
                              AND i.payment_intent_id = g.payment_intent_id),
                           (SELECT l.payment_id FROM webhook_payment_links l
                            WHERE l.environment = g.environment
                              AND l.payment_intent_id = g.payment_intent_id)) AS linked
           FROM given g
           ORDER BY g.n"#,
        &environments as &[&str],
        &payment_intents as &[&str],
        &payment_ids,
    )
    .fetch_all(&mut connection)
    .await;
    let rows = one_row_each(&mut requests, rows)?;
    for (request, row) in requests.into_iter().zip(rows) {
        let _ = request.reply.send(row.linked);
    }
    Some(connection)
}

/// Splits requests so that no event is recorded twice by one statement (an upsert may touch
/// a row only once per statement). Deliveries of one event take turns on its subject, so a
/// repeat in one group is rare.
fn without_repeats(requests: Vec<RecordRequest>) -> Vec<Vec<RecordRequest>> {
    let mut groups: Vec<Vec<RecordRequest>> = vec![Vec::new()];
    let mut keys: HashSet<(Environment, String)> = HashSet::new();
    for request in requests {
        let key = (request.row.environment, request.row.stripe_event_id.clone());
        if keys.contains(&key) {
            keys.clear();
            groups.push(Vec::new());
        }
        keys.insert(key);
        if let Some(group) = groups.last_mut() {
            group.push(request);
        }
    }
    groups
}

/// Records a group; false when its statement failed (each delivery then records itself).
async fn record_group(connection: &mut PgConnection, mut requests: Vec<RecordRequest>) -> bool {
    if requests.is_empty() {
        return true;
    }
    let rows: Vec<&RecordRow> = requests.iter().map(|request| &request.row).collect();
    let written = record_rows(&mut *connection, &rows).await;
    // Nothing of a failed statement was written: each delivery then records itself.
    let Some(parked) = one_row_each(&mut requests, written) else {
        return false;
    };
    for (request, parked) in requests.into_iter().zip(parked) {
        let _ = request.reply.send(Some(parked));
    }
    true
}

/// Records deliveries (no event twice) with one statement, and answers, in their order,
/// whether any event is parked on each one's subject. A row that already holds a final
/// outcome keeps it (and its payment and positions): copies of one event finishing in any
/// order leave the same row. The parked check reads `webhook_parked` in the statement's
/// snapshot, taken after every append it records committed, so it sees every event parked
/// before those commits, as a separate read afterwards would; one parked later is retried by
/// its own "park, then try once more".
pub(super) async fn record_rows(
    executor: impl sqlx::PgExecutor<'_>,
    rows: &[&RecordRow],
) -> Result<Vec<bool>, sqlx::Error> {
    let environments: Vec<&str> = rows.iter().map(|r| r.environment.as_str()).collect();
    let event_ids: Vec<&str> = rows.iter().map(|r| r.stripe_event_id.as_str()).collect();
    let event_types: Vec<&str> = rows.iter().map(|r| r.event_type.as_str()).collect();
    let payment_intents: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.payment_intent_id.as_deref())
        .collect();
    let payment_ids: Vec<Option<Uuid>> = rows.iter().map(|r| r.payment_id).collect();
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    let details: Vec<Option<&str>> = rows.iter().map(|r| r.detail.as_deref()).collect();
    let first_positions: Vec<Option<i64>> = rows
        .iter()
        .map(|r| r.positions.map(|(first, _)| first))
        .collect();
    let last_positions: Vec<Option<i64>> = rows
        .iter()
        .map(|r| r.positions.map(|(_, last)| last))
        .collect();
    let received: Vec<DateTime<Utc>> = rows.iter().map(|r| r.received_at).collect();
    let processed: Vec<DateTime<Utc>> = rows.iter().map(|r| r.processed_at).collect();
    let subjects: Vec<&str> = rows.iter().map(|r| r.subject.as_str()).collect();
    let answers = sqlx::query!(
        r#"WITH given AS (
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[],
                                    $6::text[], $7::text[], $8::bigint[], $9::bigint[],
                                    $10::timestamptz[], $11::timestamptz[], $12::text[])
                   WITH ORDINALITY AS g(environment, stripe_event_id, event_type,
                                        payment_intent_id, payment_id, outcome, detail,
                                        first_position, last_position, received_at,
                                        processed_at, subject, n)),
           recorded AS (
               INSERT INTO webhook_deliveries (
                   environment, stripe_event_id, event_type, payment_intent_id, payment_id,
                   outcome, detail, first_position, last_position, received_at,
                   last_received_at, processed_at)
               SELECT environment, stripe_event_id, event_type, payment_intent_id, payment_id,
                      outcome, detail, first_position, last_position, received_at,
                      received_at, processed_at
               FROM given
               ON CONFLICT (environment, stripe_event_id) DO UPDATE SET
                   delivery_count = webhook_deliveries.delivery_count + 1,
                   last_received_at = GREATEST(webhook_deliveries.last_received_at,
                                               EXCLUDED.last_received_at),
                   payment_intent_id = COALESCE(webhook_deliveries.payment_intent_id,
                                                EXCLUDED.payment_intent_id),
                   outcome = CASE WHEN webhook_deliveries.outcome IN ('applied', 'duplicate', 'ignored')
                                  THEN webhook_deliveries.outcome ELSE EXCLUDED.outcome END,
                   detail = CASE WHEN webhook_deliveries.outcome IN ('applied', 'duplicate', 'ignored')
                                 THEN webhook_deliveries.detail ELSE EXCLUDED.detail END,
                   payment_id = CASE WHEN webhook_deliveries.outcome IN ('applied', 'duplicate', 'ignored')
                                     THEN webhook_deliveries.payment_id
                                     ELSE COALESCE(EXCLUDED.payment_id, webhook_deliveries.payment_id) END,
                   first_position = CASE WHEN webhook_deliveries.outcome IN ('applied', 'duplicate', 'ignored')
                                         THEN webhook_deliveries.first_position
                                         ELSE EXCLUDED.first_position END,
                   last_position = CASE WHEN webhook_deliveries.outcome IN ('applied', 'duplicate', 'ignored')
                                        THEN webhook_deliveries.last_position
                                        ELSE EXCLUDED.last_position END,
                   processed_at = CASE WHEN webhook_deliveries.outcome IN ('applied', 'duplicate', 'ignored')
                                       THEN webhook_deliveries.processed_at
                                       ELSE EXCLUDED.processed_at END
               RETURNING 1)
           SELECT g.n AS "n!",
                  EXISTS (SELECT 1 FROM webhook_parked p
                          WHERE p.environment = g.environment AND p.subject = g.subject) AS "parked!"
           FROM given g
           ORDER BY g.n"#,
        &environments as &[&str],
        &event_ids as &[&str],
        &event_types as &[&str],
        &payment_intents as &[Option<&str>],
        &payment_ids as &[Option<Uuid>],
        &outcomes as &[&str],
        &details as &[Option<&str>],
        &first_positions as &[Option<i64>],
        &last_positions as &[Option<i64>],
        &received,
        &processed,
        &subjects as &[&str],
    )
    .fetch_all(executor)
    .await?;
    Ok(answers.into_iter().map(|answer| answer.parked).collect())
}
