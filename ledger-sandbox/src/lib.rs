//! A local Stripe-compatible test gateway: the part of Stripe's REST API a card integration
//! uses (PaymentIntents, refunds, disputes, events), Stripe's test cards, Stripe's error
//! shapes and idempotency, and webhooks signed and retried as Stripe does, all in memory.
//!
//! It exists so that an integration (the ledger, a checkout, Stripe's official client
//! libraries) can be rehearsed without Stripe. It never reaches a real gateway and touches no
//! database: every object lives in this process and is gone when it stops.
//!
//! # Layout
//! - `routes`: the HTTP surface and idempotency; `auth`: test keys only.
//! - `params`: Stripe's bracketed form encoding; `api_error`: Stripe's error answer.
//! - `state`: the objects, events and saved results behind one lock; `payments`, `refunds`,
//!   `disputes`: the operations; `objects`: how each renders as Stripe's JSON.
//! - `balance`: balance transactions, the sandbox clock, daily payouts and the payout
//!   reconciliation report.
//! - `cards`: the test cards, as data.
//! - `webhooks`: signing, delivery with retries, chaos profiles.
//! - `scenarios`: the scenario runner, a client of a gateway and a ledger over HTTP.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// `json!` of a whole Stripe charge nests deeper than the default limit allows.
#![recursion_limit = "256"]

pub mod api_error;
mod auth;
mod balance;
pub mod cards;
mod disputes;
mod error;
mod objects;
mod params;
mod payments;
mod refunds;
mod routes;
pub mod scenarios;
mod state;
pub mod webhooks;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use error::SandboxError;
pub use reqwest::Url;
pub use state::API_VERSION;
pub use webhooks::{Chaos, RetryPolicy};

/// Where `ledger sandbox` listens unless told otherwise (the port Stripe's own mock uses).
pub const DEFAULT_BIND: &str = "127.0.0.1:12112";

/// Stripe's standard payout delay for US accounts, in days; Stripe allows up to 30.
pub const DEFAULT_PAYOUT_DELAY_DAYS: u32 = 2;
pub const MAX_PAYOUT_DELAY_DAYS: u32 = 30;

/// At most this many webhook endpoints.
pub const MAX_WEBHOOK_URLS: usize = 16;
/// At most this many event types in one endpoint's `enabled_events`.
pub const MAX_ENABLED_EVENTS: usize = 256;

/// Where events are delivered, and which: a Stripe webhook endpoint's `url` and
/// `enabled_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub url: Url,
    pub enabled_events: EnabledEvents,
}

/// The event types an endpoint receives, as Stripe's `enabled_events`: every type (`*`), or
/// the listed ones. A listed type the sandbox never emits (say `payout.failed`) is accepted,
/// as Stripe accepts it, and simply never delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnabledEvents {
    All,
    Only(BTreeSet<String>),
}

impl EnabledEvents {
    /// `*` alone, or event types such as `payment_intent.succeeded`.
    pub fn parse<'a>(
        types: impl IntoIterator<Item = &'a str>,
    ) -> Result<EnabledEvents, SandboxError> {
        let mut listed = BTreeSet::new();
        let mut all = false;
        for event_type in types {
            let event_type = event_type.trim();
            if event_type == "*" {
                all = true;
            } else if is_event_type(event_type) {
                listed.insert(event_type.to_owned());
            } else {
                return Err(SandboxError::InvalidEventType {
                    event_type: event_type.chars().take(100).collect(),
                });
            }
            if listed.len() > MAX_ENABLED_EVENTS {
                return Err(SandboxError::TooManyEnabledEvents {
                    max: MAX_ENABLED_EVENTS,
                });
            }
        }
        match (all, listed.is_empty()) {
            (true, true) => Ok(EnabledEvents::All),
            (false, false) => Ok(EnabledEvents::Only(listed)),
            // `*` beside other types would say two things at once, and an endpoint with
            // nothing enabled receives nothing: both are refused rather than guessed at.
            (true, false) => Err(SandboxError::WildcardWithOtherEvents),
            (false, true) => Err(SandboxError::NoEnabledEvents),
        }
    }

    pub fn includes(&self, event_type: &str) -> bool {
        match self {
            EnabledEvents::All => true,
            EnabledEvents::Only(listed) => listed.contains(event_type),
        }
    }
}

/// Stripe's event type shape: dot-separated lowercase words (`charge.dispute.created`).
fn is_event_type(text: &str) -> bool {
    text.len() <= 100
        && text.contains('.')
        && text.split('.').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte == b'_')
        })
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Each event is delivered to each endpoint that enables its type.
    pub webhook_endpoints: Vec<WebhookEndpoint>,
    /// The endpoint secret (`whsec_…`) that signs deliveries.
    pub webhook_secret: String,
    pub chaos: Chaos,
    /// Seeds ids and chaos, so that a run can be replayed.
    pub seed: u64,
    pub retry: RetryPolicy,
    /// Days from a movement of money to its availability and payout (Stripe's payout
    /// schedule `delay_days`).
    pub payout_delay_days: u32,
}

impl SandboxConfig {
    pub fn new(webhook_secret: &str) -> Result<SandboxConfig, SandboxError> {
        check_secret(webhook_secret)?;
        Ok(SandboxConfig {
            webhook_endpoints: Vec::new(),
            webhook_secret: webhook_secret.to_owned(),
            chaos: Chaos::None,
            seed: 0,
            retry: RetryPolicy::default(),
            payout_delay_days: DEFAULT_PAYOUT_DELAY_DAYS,
        })
    }

    pub fn with_payout_delay_days(mut self, days: u32) -> Result<SandboxConfig, SandboxError> {
        if days > MAX_PAYOUT_DELAY_DAYS {
            return Err(SandboxError::PayoutDelayTooLong {
                max: MAX_PAYOUT_DELAY_DAYS,
            });
        }
        self.payout_delay_days = days;
        Ok(self)
    }

    /// An endpoint that receives every event.
    pub fn with_webhook_url(self, url: &str) -> Result<SandboxConfig, SandboxError> {
        self.with_webhook_endpoint(url, EnabledEvents::All)
    }

    pub fn with_webhook_endpoint(
        mut self,
        url: &str,
        enabled_events: EnabledEvents,
    ) -> Result<SandboxConfig, SandboxError> {
        if self.webhook_endpoints.len() >= MAX_WEBHOOK_URLS {
            return Err(SandboxError::TooManyWebhookUrls {
                max: MAX_WEBHOOK_URLS,
            });
        }
        self.webhook_endpoints.push(WebhookEndpoint {
            url: parse_webhook_url(url)?,
            enabled_events,
        });
        Ok(self)
    }
}

/// A webhook secret as Stripe makes them: `whsec_` and printable ASCII.
fn check_secret(secret: &str) -> Result<(), SandboxError> {
    let well_formed = secret.len() > "whsec_".len()
        && secret.len() <= 256
        && secret.starts_with("whsec_")
        && secret.bytes().all(|byte| byte.is_ascii_graphic());
    if well_formed {
        Ok(())
    } else {
        Err(SandboxError::InvalidWebhookSecret)
    }
}

fn parse_webhook_url(text: &str) -> Result<Url, SandboxError> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        _ => Err(SandboxError::InvalidWebhookUrl {
            url: text.to_owned(),
        }),
    }
}

/// A sandbox serving in the background, as tests and the scenario runner use it.
pub struct RunningSandbox {
    pub address: SocketAddr,
    pub task: tokio::task::JoinHandle<Result<(), SandboxError>>,
}

impl RunningSandbox {
    /// `http://ADDR`, the API base to give a client library.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// Binds `bind` and serves in a background task until the task is aborted.
pub async fn start(
    config: SandboxConfig,
    bind: SocketAddr,
) -> Result<RunningSandbox, SandboxError> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| SandboxError::Bind {
            address: bind,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| SandboxError::Bind {
        address: bind,
        source,
    })?;
    let task = tokio::spawn(serve(listener, config, std::future::pending()));
    Ok(RunningSandbox { address, task })
}

/// Serves on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SandboxConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    let (outbox, events) = tokio::sync::mpsc::unbounded_channel();
    let stats = Arc::new(webhooks::DeliveryStats::default());
    let client = reqwest::Client::builder()
        .build()
        .map_err(SandboxError::Client)?;
    let dispatcher = webhooks::spawn_dispatcher(
        webhooks::Dispatcher {
            client,
            endpoints: config.webhook_endpoints.clone(),
            secret: config.webhook_secret.clone(),
            chaos: config.chaos,
            seed: config.seed,
            retry: config.retry,
            stats: stats.clone(),
        },
        events,
    );
    let mut state = state::State::new(
        config.seed,
        outbox,
        config
            .webhook_endpoints
            .iter()
            .map(|endpoint| endpoint.enabled_events.clone())
            .collect(),
        stats.clone(),
    );
    state.books.delay_days = i64::from(config.payout_delay_days);
    let app = Arc::new(routes::App {
        state: Mutex::new(state),
        stats,
    });
    let served = axum::serve(listener, routes::router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(SandboxError::Serve);
    dispatcher.abort();
    served
}
