//! Delivery: one dispatcher task takes events in emission order, draws each delivery's
//! [`Plan`] from the seeded generator, and spawns the attempts.
//!
//! Retries follow Stripe's rule (any answer other than 2xx, or no answer, is retried with
//! exponential backoff), compressed in time for a sandbox: Stripe retries for up to three
//! days; here the n-th retry waits `first_retry · 2^(n-1)` (100 ms, 200 ms, 400 ms, … by
//! default) and a delivery gives up after `max_attempts` attempts (8: about 13 s in all).
//! Every attempt is signed afresh with its own timestamp, as Stripe signs each attempt.
//!
//! Like Stripe, the sandbox holds only a few requests open to one endpoint at a time
//! (`in_flight_per_endpoint`): attempts beyond that wait their turn instead of opening more
//! connections. Unbounded, a burst of thousands of events opened thousands of connections at
//! once, attempts timed out in the queue of a busy receiver, and every timeout came back as a
//! retry: a storm that made the receiver slower still. Only attempts wait; a chaos delay or a
//! backoff runs before the turn is taken, so reordering and duplicates are unchanged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use reqwest::Url;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::Semaphore;

use super::chaos::Chaos;
use super::signing::signature_header;
use crate::state::now;
use crate::{EnabledEvents, WebhookEndpoint};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_retry: Duration,
    pub max_attempts: u32,
    /// How long one attempt may take once sent (Stripe waits a few seconds at most).
    pub timeout: Duration,
    /// Attempts open to one endpoint at once.
    pub in_flight_per_endpoint: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_retry: Duration::from_millis(100),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
            in_flight_per_endpoint: 64,
        }
    }
}

/// Counters of webhook delivery, served at `GET /sandbox/webhooks` so that a test or a
/// scenario can wait for deliveries to settle.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Deliveries (one event to one endpoint, duplicates included) not finished yet, counted
    /// from the moment the event is emitted (queued and held ones included).
    pub pending: AtomicU64,
    pub attempts: AtomicU64,
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub given_up: AtomicU64,
}

#[derive(Debug, Serialize)]
pub struct StatsView {
    pub pending: u64,
    pub attempts: u64,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub given_up: u64,
}

impl DeliveryStats {
    pub fn view(&self) -> StatsView {
        StatsView {
            pending: self.pending.load(Ordering::SeqCst),
            attempts: self.attempts.load(Ordering::SeqCst),
            delivered: self.delivered.load(Ordering::SeqCst),
            failed_attempts: self.failed_attempts.load(Ordering::SeqCst),
            given_up: self.given_up.load(Ordering::SeqCst),
        }
    }
}

/// Everything delivery needs.
pub struct Dispatcher {
    pub client: reqwest::Client,
    pub endpoints: Vec<WebhookEndpoint>,
    pub secret: String,
    pub chaos: Chaos,
    pub seed: u64,
    pub retry: RetryPolicy,
    pub stats: Arc<DeliveryStats>,
}

/// Runs until the sending side (the sandbox's state) is dropped.
pub fn spawn_dispatcher(
    dispatcher: Dispatcher,
    mut events: UnboundedReceiver<Value>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let shared = Arc::new(dispatcher);
        let endpoints: Vec<Endpoint> = shared
            .endpoints
            .iter()
            .map(|endpoint| Endpoint {
                url: endpoint.url.clone(),
                enabled_events: endpoint.enabled_events.clone(),
                turns: Arc::new(Semaphore::new(shared.retry.in_flight_per_endpoint.max(1))),
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(shared.seed);
        while let Some(event) = events.recv().await {
            let body = match serde_json::to_vec_pretty(&event) {
                Ok(body) => Arc::new(body),
                Err(_) => continue,
            };
            let event_type = event["type"].as_str().unwrap_or_default();
            for endpoint in endpoints
                .iter()
                .filter(|endpoint| endpoint.enabled_events.includes(event_type))
            {
                let plan = shared.chaos.plan(&mut rng);
                // The first delivery was counted pending when the event was emitted.
                shared
                    .stats
                    .pending
                    .fetch_add(plan.duplicates.len() as u64, Ordering::SeqCst);
                if plan.in_order && !plan.delay.is_zero() {
                    tokio::time::sleep(plan.delay).await;
                }
                let first_delay = if plan.in_order {
                    Duration::ZERO
                } else {
                    plan.delay
                };
                schedule(&shared, endpoint, &body, first_delay, plan.drop_first);
                for extra in &plan.duplicates {
                    schedule(&shared, endpoint, &body, first_delay + *extra, false);
                }
            }
        }
    })
}

/// An endpoint and its turns: one permit per attempt in flight.
#[derive(Clone)]
struct Endpoint {
    url: Url,
    enabled_events: EnabledEvents,
    turns: Arc<Semaphore>,
}

fn schedule(
    shared: &Arc<Dispatcher>,
    endpoint: &Endpoint,
    body: &Arc<Vec<u8>>,
    delay: Duration,
    drop_first: bool,
) {
    let (shared, endpoint, body) = (shared.clone(), endpoint.clone(), body.clone());
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        deliver(&shared, endpoint, &body, drop_first).await;
        shared.stats.pending.fetch_sub(1, Ordering::SeqCst);
    });
}

async fn deliver(shared: &Dispatcher, endpoint: Endpoint, body: &[u8], drop_first: bool) {
    let stats = &shared.stats;
    for attempt in 1..=shared.retry.max_attempts {
        stats.attempts.fetch_add(1, Ordering::SeqCst);
        let delivered = if attempt == 1 && drop_first {
            false
        } else {
            // The semaphore is never closed, so a turn always comes.
            let _turn = endpoint.turns.acquire().await;
            attempt_once(shared, &endpoint.url, body).await
        };
        if delivered {
            stats.delivered.fetch_add(1, Ordering::SeqCst);
            return;
        }
        stats.failed_attempts.fetch_add(1, Ordering::SeqCst);
        if attempt < shared.retry.max_attempts {
            let backoff = shared
                .retry
                .first_retry
                .saturating_mul(1 << (attempt - 1).min(20));
            tokio::time::sleep(backoff).await;
        }
    }
    stats.given_up.fetch_add(1, Ordering::SeqCst);
    tracing::warn!(endpoint = %endpoint.url, "webhook delivery gave up after {} attempts", shared.retry.max_attempts);
}

async fn attempt_once(shared: &Dispatcher, endpoint: &Url, body: &[u8]) -> bool {
    let signature = signature_header(&shared.secret, now(), body);
    let answer = shared
        .client
        .post(endpoint.clone())
        .header("Content-Type", "application/json; charset=utf-8")
        .header(
            "User-Agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .header("Stripe-Signature", signature)
        .timeout(shared.retry.timeout)
        .body(body.to_vec())
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => true,
        Ok(response) => {
            tracing::debug!(%endpoint, status = %response.status(), "webhook refused; will retry");
            false
        }
        Err(error) => {
            tracing::debug!(%endpoint, %error, "webhook not delivered; will retry");
            false
        }
    }
}
