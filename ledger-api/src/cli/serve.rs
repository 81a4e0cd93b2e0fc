//! `ledger serve`: the HTTP server, until Ctrl-C or SIGTERM, then a clean drain.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::graphql::{build_schema, AppState};
use crate::http::{router, ServerState};
use crate::live::LiveLog;
use crate::stripe::secrets::WEBHOOK_SECRETS_VARIABLE;
use crate::stripe::WebhookSecrets;
use crate::webhooks::{stripe_router, WebhookConfig, WebhookState};
use ledger_core::ids::MerchantId;
use ledger_store::commands::CommandHandler;
use ledger_store::EventStore;

/// Refunds above this many major units need an admin key, unless configured otherwise.
pub const DEFAULT_REFUND_APPROVAL_THRESHOLD: i64 = 10_000;

/// The process-wide Prometheus recorder; installed once.
pub fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
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
        .context("could not install the metrics recorder")?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

fn refund_approval_threshold() -> anyhow::Result<Decimal> {
    match std::env::var("LEDGER_REFUND_APPROVAL_THRESHOLD") {
        Ok(text) => text
            .parse::<Decimal>()
            .ok()
            .filter(|threshold| !threshold.is_sign_negative())
            .with_context(|| {
                format!("LEDGER_REFUND_APPROVAL_THRESHOLD={text:?} is not a non-negative amount")
            }),
        Err(_) => Ok(Decimal::from(DEFAULT_REFUND_APPROVAL_THRESHOLD)),
    }
}

/// The merchant of gateway events that name none, unless configured otherwise.
pub const DEFAULT_MERCHANT_ID: &str = "default";

/// The Stripe webhooks' state, when `LEDGER_STRIPE_WEBHOOK_SECRETS` configures their secrets.
/// Without secrets no signature could be checked, so the route is not served at all.
pub fn webhook_state(handler: &CommandHandler) -> anyhow::Result<Option<WebhookState>> {
    let Ok(secrets) = std::env::var(WEBHOOK_SECRETS_VARIABLE) else {
        tracing::warn!(
            "{WEBHOOK_SECRETS_VARIABLE} is not set: POST /webhooks/stripe is not served"
        );
        return Ok(None);
    };
    let secrets = WebhookSecrets::parse(&secrets)
        .with_context(|| format!("{WEBHOOK_SECRETS_VARIABLE} is malformed"))?;
    let merchant = std::env::var("LEDGER_DEFAULT_MERCHANT_ID")
        .unwrap_or_else(|_| DEFAULT_MERCHANT_ID.to_owned());
    let merchant = MerchantId::parse(merchant)
        .context("LEDGER_DEFAULT_MERCHANT_ID is not a valid merchant id")?;
    let state = WebhookState::new(handler.clone(), WebhookConfig::new(secrets, merchant));
    crate::webhooks::metrics::describe();
    Ok(Some(state))
}

/// Everything the server needs, built from a connected pool.
pub fn application(pool: PgPool) -> anyhow::Result<(ServerState, Router)> {
    let store = EventStore::new(pool.clone());
    let handler = CommandHandler::new(store.clone());
    let webhooks = webhook_state(&handler)?;
    let app = AppState {
        pool,
        handler: handler.clone(),
        refund_approval_threshold: refund_approval_threshold()?,
        live: LiveLog::new(store),
        webhooks: webhooks.clone(),
        keys: crate::auth::KeyCache::default(),
    };
    let state = ServerState {
        schema: build_schema(Some(app.clone())),
        app,
        metrics: metrics_handle()?,
        parsed_queries: Default::default(),
    };
    let routes = router(
        state.clone(),
        webhooks.map(stripe_router).unwrap_or_default(),
    );
    Ok((state, routes))
}

pub async fn run(pool: PgPool, bind: SocketAddr) -> anyhow::Result<()> {
    let (stop_projections, projections_stopped) = tokio::sync::watch::channel(false);
    let projector = tokio::spawn(ledger_projections::Projector::live(pool.clone()).follow(
        async move {
            let mut stopped = projections_stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
    let (state, routes) = application(pool)?;
    let sweep = state.app.webhooks.clone().map(|webhooks| {
        let mut stopped = stop_projections.subscribe();
        tokio::spawn(crate::webhooks::sweep_parked(
            webhooks,
            crate::webhooks::PARKED_SWEEP_INTERVAL,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    });
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("could not listen on {bind}"))?;
    tracing::info!(address = %bind, "ledger serving: GraphiQL at http://{bind}/graphql");
    println!("ledger serving on http://{bind} (GraphiQL at http://{bind}/graphql); Ctrl-C stops");
    axum::serve(listener, routes)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("drained; stopping the projections");
    let _ = stop_projections.send(true);
    projector
        .await
        .context("the projector task failed to stop cleanly")?;
    if let Some(sweep) = sweep {
        sweep
            .await
            .context("the sweep of parked webhooks failed to stop cleanly")?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
