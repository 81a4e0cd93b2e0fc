//! The sender: takes due deliveries, signs and POSTs them, records the outcome, and schedules
//! retries with exponential back-off and jitter for up to the retry window (3 days), after
//! which the delivery fails and its endpoint is disabled.
//!
//! Order per subject: only the oldest pending delivery of each (endpoint, payment / batch /
//! run) is ever taken, so the next one about the same payment waits until it was delivered
//! (or given up), whatever the concurrency. A taken delivery is leased (`leased_until`) so
//! that the sender of another process skips it; a lease outlives the attempt's timeouts, and
//! one left by a killed process expires and the delivery is taken again (at least once; the
//! notification id is the same).
//!
//! Throughput: sending is continuous, not in rounds, and two loops work side by side. The
//! claim loop keeps up to `concurrency` deliveries in hand: each attempt runs as a task of its
//! own, so requests go on while the database is asked something, and a slow endpoint holds
//! only its own slots. The record loop writes finished attempts in batches (one UPDATE for
//! whatever finished while the previous batch was written), frees their slots and tells the
//! claim loop, which claims again once half of the slots are free. A claim walks the pending
//! deliveries in due order (a partial index) and keeps those with no earlier pending delivery
//! of the same endpoint and subject, stopping at the batch size, so its cost follows the
//! batch, not the backlog.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use rand::Rng;
use sqlx::PgPool;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::client::{self, Timeouts};
use crate::error::NotifyError;
use crate::signing::{signature_header, SIGNATURE_HEADER};
use crate::url_policy::UrlPolicy;

/// Most bytes of an answer kept.
pub const MAX_RESPONSE_KEPT: usize = 1024;

/// How the sender works.
#[derive(Debug, Clone, Copy)]
pub struct SenderOptions {
    pub timeouts: Timeouts,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Most deliveries taken per claim (a claim fills at most the free request slots).
    pub claim_size: i64,
    /// The first retry's delay; each next one doubles, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a delivery is retried before it fails and its endpoint is disabled.
    pub retry_window: Duration,
    /// Longest sleep when nothing is due (new deliveries wake the sender earlier).
    pub poll_interval: Duration,
    pub policy: UrlPolicy,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            timeouts: Timeouts::default(),
            concurrency: 64,
            claim_size: 1_000,
            base_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3_600),
            retry_window: Duration::from_secs(3 * 24 * 3_600),
            poll_interval: Duration::from_secs(1),
            policy: UrlPolicy::default(),
        }
    }
}

impl SenderOptions {
    /// The lease of a taken delivery: longer than one attempt can take.
    fn lease(&self) -> Duration {
        self.timeouts.connect + self.timeouts.response + Duration::from_secs(5)
    }

    /// The delay before attempt `attempts + 1`: `base · 2^(attempts-1)`, capped, times a
    /// random factor in [0.5, 1] so that the retries of many deliveries spread out.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let delay = self
            .base_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        delay.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// A delivery taken for an attempt.
struct Taken {
    delivery_id: i64,
    endpoint_id: Uuid,
    subject_id: Uuid,
    environment: Environment,
    url: String,
    body: String,
    secrets: Vec<String>,
    created_at: DateTime<Utc>,
    attempts: i32,
}

/// What one attempt gave.
struct Attempt {
    delivery_id: i64,
    endpoint_id: Uuid,
    subject_id: Uuid,
    created_at: DateTime<Utc>,
    attempts: i32,
    status_code: Option<u16>,
    latency: Duration,
    error: Option<String>,
    response: Option<String>,
}

impl Attempt {
    fn succeeded(&self) -> bool {
        self.status_code
            .is_some_and(|code| (200..300).contains(&code))
    }
}

/// Heads whose attempt failed and that will be tried again.
#[derive(Default)]
struct Retried {
    delivery_ids: Vec<i64>,
    endpoint_ids: Vec<Uuid>,
    subject_ids: Vec<Uuid>,
    next_attempts: Vec<DateTime<Utc>>,
}

/// An attempt's outcome, holding its request slot until the outcome is recorded: a slot is
/// free only once the next delivery of its subject can be claimed.
struct Finished {
    attempt: Attempt,
    slot: OwnedSemaphorePermit,
}

/// Outcomes recorded at once, at most.
const RECORD_BATCH: usize = 512;

/// Sends due deliveries.
pub struct Sender {
    pool: PgPool,
    options: SenderOptions,
    test_client: reqwest::Client,
    live_client: reqwest::Client,
    wake: Arc<Notify>,
}

impl Sender {
    pub fn new(
        pool: PgPool,
        options: SenderOptions,
        wake: Arc<Notify>,
    ) -> Result<Sender, NotifyError> {
        Ok(Sender {
            pool,
            test_client: client::build(options.timeouts, false, options.concurrency)?,
            live_client: client::build(
                options.timeouts,
                !options.policy.allow_private_targets,
                options.concurrency,
            )?,
            options,
            wake,
        })
    }

    /// Leases up to `limit` due deliveries, each the oldest pending one of its endpoint and
    /// subject. `SKIP LOCKED`: rows another process is claiming or recording are left to it.
    async fn take(&self, limit: i64) -> Result<Vec<Taken>, NotifyError> {
        let lease_ms = i64::try_from(self.options.lease().as_millis()).unwrap_or(i64::MAX);
        let mut transaction = ledger_store::begin_transaction(&self.pool).await?;
        // Without statistics (a new table, before autovacuum's first ANALYZE) the planner
        // sorts every due row by a bitmap scan instead of walking the due index: 80 ms
        // instead of 0.7 ms at 12,000 pending, slower as the backlog grows. Sorting is only
        // ever the worse plan for this ORDER BY … LIMIT, so it is ruled out for the claim.
        sqlx::query!("SET LOCAL enable_sort = off")
            .execute(&mut *transaction)
            .await?;
        let rows = sqlx::query!(
            // The heads are chosen once, in a materialized CTE: as `IN (subquery)` the planner
            // may run the subquery again per row, and with SKIP LOCKED each run can pick other
            // rows, so more than `limit` were leased.
            r#"WITH heads AS MATERIALIZED (
                   SELECT c.delivery_id
                   FROM notification_deliveries c
                   WHERE c.status = 'pending'
                     AND c.next_attempt_at <= now()
                     AND (c.leased_until IS NULL OR c.leased_until < now())
                     AND NOT EXISTS (
                         SELECT FROM notification_deliveries earlier
                         WHERE earlier.status = 'pending'
                           AND earlier.endpoint_id = c.endpoint_id
                           AND earlier.subject_id = c.subject_id
                           AND earlier.position <= c.position
                           AND (earlier.position, earlier.round, earlier.delivery_id)
                               < (c.position, c.round, c.delivery_id))
                     -- An array, not a join: joined, the planner starts from the endpoints
                     -- and sorts all their pending rows (90 ms at 12,000 pending) instead
                     -- of walking the due index (0.6 ms).
                     AND c.endpoint_id = ANY (ARRAY(
                         SELECT endpoint_id FROM notification_endpoints
                         WHERE status = 'enabled'))
                   ORDER BY c.next_attempt_at
                   LIMIT $2
                   FOR UPDATE OF c SKIP LOCKED),
               leased AS (
                   -- By primary key alone, from the array: joined to `heads` (which the
                   -- planner guesses at 3 rows), the update scanned every pending delivery of
                   -- each endpoint against each head (250 ms for 256 heads instead of 2);
                   -- with the heads' conditions repeated here, it and-ed the primary key with
                   -- the whole due index, a cost that grows with the backlog. The heads are
                   -- locked above, so nothing can have changed them since.
                   UPDATE notification_deliveries d
                   SET leased_until = now() + make_interval(secs => $1::bigint / 1000.0)
                   WHERE d.delivery_id = ANY (ARRAY(SELECT delivery_id FROM heads))
                   RETURNING d.delivery_id, d.endpoint_id, d.subject_id, d.notification_id,
                             d.created_at, d.attempts)
               -- The same snapshot chose the heads among enabled endpoints' deliveries, so
               -- every leased one finds its endpoint here.
               SELECT l.delivery_id, l.endpoint_id, l.subject_id, n.body, l.created_at,
                      l.attempts, e.environment, e.url, e.secret, e.previous_secret,
                      e.previous_secret_expires_at
               FROM leased l
               JOIN notification_endpoints e ON e.endpoint_id = l.endpoint_id
               JOIN notifications n ON n.notification_id = l.notification_id"#,
            lease_ms,
            limit,
        )
        .fetch_all(&mut *transaction)
        .await?;
        transaction.commit().await?;
        let now = Utc::now();
        rows.into_iter()
            .map(|row| {
                let mut secrets = vec![row.secret];
                if let (Some(previous), Some(expires_at)) =
                    (row.previous_secret, row.previous_secret_expires_at)
                {
                    if expires_at > now {
                        secrets.push(previous);
                    }
                }
                Ok(Taken {
                    delivery_id: row.delivery_id,
                    endpoint_id: row.endpoint_id,
                    subject_id: row.subject_id,
                    environment: row.environment.parse().map_err(|_| {
                        NotifyError::Corrupt(format!("environment {:?}", row.environment))
                    })?,
                    url: row.url,
                    body: row.body,
                    secrets,
                    created_at: row.created_at,
                    attempts: row.attempts,
                })
            })
            .collect()
    }

    fn client_for(&self, environment: Environment) -> &reqwest::Client {
        match environment {
            Environment::Live => &self.live_client,
            Environment::Test => &self.test_client,
        }
    }

    async fn record(&self, attempts: Vec<Attempt>) -> Result<(), NotifyError> {
        let window =
            chrono::Duration::from_std(self.options.retry_window).unwrap_or(chrono::Duration::MAX);
        let now = Utc::now();
        let mut ids: Vec<i64> = Vec::with_capacity(attempts.len());
        let mut statuses = Vec::with_capacity(attempts.len());
        let mut next_attempts = Vec::with_capacity(attempts.len());
        let mut codes = Vec::with_capacity(attempts.len());
        let mut latencies = Vec::with_capacity(attempts.len());
        let mut errors = Vec::with_capacity(attempts.len());
        let mut responses = Vec::with_capacity(attempts.len());
        let mut given_up = Vec::new();
        let mut retried = Retried::default();
        for attempt in &attempts {
            let latency = attempt.latency.as_secs_f64();
            metrics::histogram!("ledger_notify_delivery_latency_seconds").record(latency);
            let status = if attempt.succeeded() {
                metrics::counter!("ledger_notify_attempts_total", "outcome" => "delivered")
                    .increment(1);
                "delivered"
            } else if now - attempt.created_at >= window {
                metrics::counter!("ledger_notify_attempts_total", "outcome" => "given_up")
                    .increment(1);
                given_up.push(attempt.endpoint_id);
                "failed"
            } else {
                metrics::counter!("ledger_notify_attempts_total", "outcome" => "failed")
                    .increment(1);
                "pending"
            };
            ids.push(attempt.delivery_id);
            statuses.push(status.to_owned());
            // The jittered delay is computed here, from the attempts the row held when taken.
            let attempts = u32::try_from(attempt.attempts).unwrap_or(0) + 1;
            let delay = chrono::Duration::from_std(self.options.backoff(attempts))
                .unwrap_or(chrono::Duration::MAX);
            next_attempts.push(now + delay);
            if status == "pending" {
                retried.delivery_ids.push(attempt.delivery_id);
                retried.endpoint_ids.push(attempt.endpoint_id);
                retried.subject_ids.push(attempt.subject_id);
                retried.next_attempts.push(now + delay);
            }
            codes.push(attempt.status_code.map(i32::from));
            latencies.push(i32::try_from(attempt.latency.as_millis()).unwrap_or(i32::MAX));
            errors.push(attempt.error.clone());
            responses.push(attempt.response.clone());
        }
        let mut transaction = ledger_store::begin_transaction(&self.pool).await?;
        sqlx::query!(
            r#"UPDATE notification_deliveries d
               SET status = a.status,
                   attempts = d.attempts + 1,
                   next_attempt_at = a.next_attempt_at,
                   leased_until = NULL,
                   last_attempt_at = now(),
                   last_status_code = a.code,
                   last_latency_ms = a.latency,
                   last_error = a.error,
                   last_response = a.response,
                   delivered_at = CASE WHEN a.status = 'delivered' THEN now() END
               FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::int[], $5::int[],
                           $6::text[], $7::text[])
                    AS a(delivery_id, status, next_attempt_at, code, latency, error, response)
               WHERE d.delivery_id = a.delivery_id"#,
            &ids,
            &statuses,
            &next_attempts,
            &codes as &[Option<i32>],
            &latencies,
            &errors as &[Option<String>],
            &responses as &[Option<String>],
        )
        .execute(&mut *transaction)
        .await?;
        if !retried.delivery_ids.is_empty() {
            // The later deliveries of a subject wait for its head: due no earlier than the
            // head's retry, so that claims do not walk past them in the meantime.
            sqlx::query!(
                r#"UPDATE notification_deliveries f
                   SET next_attempt_at = r.next_attempt_at
                   FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::timestamptz[])
                        AS r(delivery_id, endpoint_id, subject_id, next_attempt_at)
                   WHERE f.status = 'pending'
                     AND f.endpoint_id = r.endpoint_id AND f.subject_id = r.subject_id
                     AND f.delivery_id <> r.delivery_id
                     AND f.next_attempt_at < r.next_attempt_at"#,
                &retried.delivery_ids,
                &retried.endpoint_ids,
                &retried.subject_ids,
                &retried.next_attempts,
            )
            .execute(&mut *transaction)
            .await?;
        }
        if !given_up.is_empty() {
            let disabled = sqlx::query!(
                r#"UPDATE notification_endpoints
                   SET status = 'disabled', disabled_reason = 'failing', disabled_at = now()
                   WHERE endpoint_id = ANY($1) AND status = 'enabled'"#,
                &given_up
            )
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            metrics::counter!("ledger_notify_endpoints_disabled_total").increment(disabled);
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The number of deliveries waiting, for `/metrics`.
    pub async fn backlog(&self) -> Result<i64, NotifyError> {
        backlog(&self.pool).await
    }

    /// Sends until `shutdown`: the claim loop and the record loop side by side (see the
    /// module's docs). Errors are logged and retried; on shutdown, attempts in flight are
    /// dropped and their leases expire, so they are sent again (same notification id).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let slots = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let recorded = Notify::new();
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        tokio::select! {
            () = self.claim_loop(&slots, &recorded, finished_tx) => {}
            () = self.record_loop(finished_rx, &recorded) => {}
            () = shutdown => {}
        }
    }

    /// Claims due deliveries into free slots and starts their attempts; when nothing is due,
    /// or fewer than half of the slots are free, it waits to be woken by the record loop, the
    /// dispatcher or the poll interval.
    async fn claim_loop(
        &self,
        slots: &Arc<Semaphore>,
        recorded: &Notify,
        finished: mpsc::UnboundedSender<Finished>,
    ) {
        let concurrency = self.options.concurrency.max(1);
        // Claims are batched: one once half of the slots are free.
        let refill_at = (concurrency / 2).max(1);
        // Dropped with the loop, which aborts the attempts still running.
        let mut attempts = JoinSet::new();
        // False once a claim found fewer due deliveries than it asked for: until an outcome
        // is recorded (which can make a subject's next delivery its head), a wake-up or the
        // poll interval, asking again would find nothing.
        let mut may_be_due = true;
        let mut last_backlog = Instant::now() - Duration::from_secs(60);
        loop {
            while attempts.try_join_next().is_some() {}
            if last_backlog.elapsed() >= Duration::from_secs(5) {
                if let Ok(pending) = self.backlog().await {
                    metrics::gauge!("ledger_notify_backlog").set(pending as f64);
                }
                last_backlog = Instant::now();
            }
            let free = slots.available_permits();
            if may_be_due && free > 0 && (free >= refill_at || free == concurrency) {
                let limit = i64::try_from(free)
                    .unwrap_or(i64::MAX)
                    .min(self.options.claim_size.max(1));
                match self.take(limit).await {
                    Ok(taken) => {
                        may_be_due = i64::try_from(taken.len()).unwrap_or(i64::MAX) >= limit;
                        for delivery in taken {
                            // This loop is the only one that takes slots, so the `free` it
                            // counted are still free; were one not, the delivery's lease
                            // would expire and it would be claimed again.
                            let Ok(slot) = slots.clone().try_acquire_owned() else {
                                break;
                            };
                            let client = self.client_for(delivery.environment).clone();
                            let finished = finished.clone();
                            attempts.spawn(async move {
                                let attempt = attempt(client, delivery).await;
                                // Fails only when the sender stops; the lease then expires.
                                let _ = finished.send(Finished { attempt, slot });
                            });
                        }
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "notification sender could not claim; retrying");
                    }
                }
            }
            tokio::select! {
                () = recorded.notified() => may_be_due = true,
                () = self.wake.notified() => may_be_due = true,
                () = tokio::time::sleep(self.options.poll_interval) => may_be_due = true,
            }
        }
    }

    /// Records finished attempts: whatever finished while the previous batch was written, up
    /// to [`RECORD_BATCH`], in one transaction; then frees their slots and wakes the claim
    /// loop. Returns when the claim loop is gone.
    async fn record_loop(
        &self,
        mut finished: mpsc::UnboundedReceiver<Finished>,
        recorded: &Notify,
    ) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            let (attempts, slots): (Vec<Attempt>, Vec<OwnedSemaphorePermit>) = batch
                .drain(..)
                .map(|finished| (finished.attempt, finished.slot))
                .unzip();
            // On failure the leases expire and the deliveries are sent again (same id).
            if let Err(error) = self.record(attempts).await {
                tracing::warn!(%error, "notification sender could not record; retrying");
            }
            drop(slots);
            recorded.notify_one();
        }
    }
}

/// One attempt: signs the body, POSTs it and keeps at most [`MAX_RESPONSE_KEPT`] of the answer.
async fn attempt(client: reqwest::Client, delivery: Taken) -> Attempt {
    let timestamp = Utc::now().timestamp();
    let signature = signature_header(
        delivery.secrets.iter().map(String::as_str),
        timestamp,
        &delivery.body,
    );
    let started = Instant::now();
    let sent = client
        .post(&delivery.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .body(delivery.body)
        .send()
        .await;
    let mut attempt = Attempt {
        delivery_id: delivery.delivery_id,
        endpoint_id: delivery.endpoint_id,
        subject_id: delivery.subject_id,
        created_at: delivery.created_at,
        attempts: delivery.attempts,
        status_code: None,
        latency: Duration::ZERO,
        error: None,
        response: None,
    };
    match sent {
        Ok(mut response) => {
            attempt.status_code = Some(response.status().as_u16());
            let mut kept = Vec::new();
            // Only the first KiB is read: an endpoint cannot make us hold more.
            while kept.len() < MAX_RESPONSE_KEPT {
                match response.chunk().await {
                    Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            attempt.response = Some(truncate(&kept));
        }
        Err(error) => {
            attempt.error = Some(describe(&error));
        }
    }
    attempt.latency = started.elapsed();
    attempt
}

/// Deliveries not yet delivered nor given up.
pub async fn backlog(pool: &PgPool) -> Result<i64, NotifyError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM notification_deliveries WHERE status = 'pending'"#
    )
    .fetch_one(pool)
    .await?)
}

/// At most [`MAX_RESPONSE_KEPT`] bytes, cut at a character boundary, as text.
fn truncate(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_RESPONSE_KEPT)]);
    let mut text = text.into_owned();
    while text.len() > MAX_RESPONSE_KEPT {
        text.pop();
    }
    text
}

/// What went wrong, without the URL (it can carry a token of the client's).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(1024).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let options = SenderOptions::default();
        for attempts in 1..=12u32 {
            let full = (options.base_backoff * 2u32.pow(attempts - 1)).min(options.max_backoff);
            let delay = options.backoff(attempts);
            assert!(delay <= full && delay >= full / 2, "{attempts}: {delay:?}");
        }
        assert!(options.backoff(200) <= options.max_backoff);
    }

    #[test]
    fn kept_answers_are_at_most_a_kibibyte() {
        assert_eq!(truncate(&[b'a'; 5000]).len(), MAX_RESPONSE_KEPT);
        let accents = "é".repeat(700);
        assert!(truncate(accents.as_bytes()).len() <= MAX_RESPONSE_KEPT);
    }
}
