//! The server assembled from its parts, as `ledger serve`, `ledger demo` and the tests run it.
//! What it is configured with arrives as a [`ServerConfig`]: reading the environment is the
//! binary's job.

use std::sync::Arc;

use axum::Router;
use ledger_core::payment::RefundApprovalThresholds;
use ledger_store::commands::CommandHandler;
use ledger_store::EventStore;
use ledger_stripe::webhooks::{
    stripe_router, unconfigured_stripe_router, WebhookConfig, WebhookState,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

use crate::error::ApiError;
use crate::graphql::{build_schema, AppState};
use crate::http::operation_names::KnownOperations;
use crate::http::subscriptions::WebsocketSettings;
use crate::http::{router, ServerState};
use crate::live::LiveLog;
use crate::replicas::{ReadPools, ReplicaSettings};

/// What an operator configures the server with; by default, the documented thresholds and no
/// webhook secrets.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// When a payment's refunds in all need an admin key, per currency.
    pub refund_approval: RefundApprovalThresholds,
    /// The Stripe webhooks' secrets and default merchant; without them no signature could be
    /// checked, so the route answers 503 (Stripe retries) with a message saying so.
    pub webhooks: Option<WebhookConfig>,
    /// How `/graphql/ws` connections are pinged and their keys checked again.
    pub websocket: WebsocketSettings,
    /// Which URLs notification endpoints may have (private targets in live mode).
    pub notify_url_policy: ledger_notify::UrlPolicy,
    /// Standbys that answer reads (see [`crate::replicas`]); none by default.
    pub read_replicas: ReplicaSettings,
}

/// The process-wide Prometheus recorder; installed once.
pub fn metrics_handle() -> Result<PrometheusHandle, ApiError> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    // Installing twice fails, so concurrent first callers (tests build several servers at
    // once) take turns, and the later ones find the handle installed.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let _turn = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|error| ApiError::internal(format!("the metrics recorder: {error}")))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Everything the server needs, built from a connected pool: its shared state and its routes.
pub fn application(pool: PgPool, config: ServerConfig) -> Result<(ServerState, Router), ApiError> {
    let store = EventStore::new(pool.clone());
    let reads = ReadPools::new(pool.clone(), &config.read_replicas)?;
    let handler = CommandHandler::new(store.clone());
    let webhooks = config.webhooks.map(|webhooks| {
        ledger_stripe::webhooks::metrics::describe();
        WebhookState::new(handler.clone(), webhooks)
    });
    let app = AppState {
        endpoints: ledger_notify::Endpoints::new(pool.clone(), config.notify_url_policy),
        pool,
        handler: handler.clone(),
        refund_approval: config.refund_approval,
        live: LiveLog::with_reads(store, reads.clone()),
        reads,
        webhooks: webhooks.clone(),
        keys: crate::auth::KeyCache::default(),
        checkpoints: Default::default(),
    };
    let schema = build_schema(Some(app.clone()));
    let state = ServerState {
        known_operations: Arc::new(KnownOperations::from_sdl(&schema.sdl())),
        schema,
        app,
        metrics: metrics_handle()?,
        parsed_queries: Default::default(),
        websocket: config.websocket,
    };
    let routes = router(
        state.clone(),
        webhooks.map_or_else(unconfigured_stripe_router, stripe_router),
    );
    Ok((state, routes))
}
