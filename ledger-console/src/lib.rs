//! The console `ledger serve` serves at `/console`: the pages finance, support and operations
//! use, server-rendered from compiled templates over the read models (never a scan of the
//! log), signed in with an API key and following its role and environment.
//!
//! # Layout
//! - [`session`]: server-side sessions, their cookie, CSRF tokens.
//! - [`current`]: who is signed in on a request (the key checked again each time), and the
//!   frame every page shares (TEST/LIVE banner, the links the role may follow).
//! - [`pages`]: one module per page.
//! - [`assets`]: the stylesheet, in the binary; the policy that lets pages load nothing else.
//! - [`csv_download`]: tables as CSV downloads, behind the same checks as their page.
//! - [`charts`]: server-drawn SVG charts (plotters).
//! - [`error`]: [`error::ConsoleError`] and the page each one answers with.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod assets;
pub mod charts;
pub mod csv_download;
pub mod current;
pub mod error;
pub mod pages;
pub mod session;

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use ledger_store::commands::CommandHandler;
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The largest form the console accepts: its forms carry a key, a token and a reason.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// A page taking longer is answered 408.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every console request can reach.
#[derive(Clone)]
pub struct ConsoleState {
    pub pool: PgPool,
    /// The one command path (and the store's stream reads, for a payment's timeline).
    pub handler: CommandHandler,
    pub sessions: session::Sessions,
}

impl ConsoleState {
    pub fn new(pool: PgPool, handler: CommandHandler) -> ConsoleState {
        ConsoleState {
            pool,
            handler,
            sessions: session::Sessions::default(),
        }
    }
}

/// The console's routes, all under `/console`, with their own limits; merge it into the
/// server's router.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route(
            "/console/sign-in",
            get(pages::sign_in::form).post(pages::sign_in::submit),
        )
        .route("/console/sign-out", post(pages::sign_in::sign_out))
        .route("/console/payments", get(pages::payments::search))
        .route("/console/payments/{id}", get(pages::payments::detail))
        .route("/console/balances", get(pages::balances::page))
        .route("/console/reconciliation", get(pages::reconciliation::runs))
        .route(
            "/console/reconciliation/{id}",
            get(pages::reconciliation::run),
        )
        .route("/console/exceptions", get(pages::exceptions::page))
        .route(
            "/console/exceptions/{id}/resolve",
            post(pages::exceptions::resolve),
        )
        .route("/console/audit", get(pages::audit::page))
        .route("/console/audit/export.jsonl", get(pages::audit::export))
        // Webhook health and launch metrics (charts).
        .route("/console/webhook-health", get(pages::webhook_health::page))
        .route("/console/launch-metrics", get(pages::launch_metrics::page))
        .route("/console/assets/{name}", get(assets::asset))
        .with_state(state)
        .layer(axum::middleware::from_fn(assets::security_headers))
        .layer(CatchPanicLayer::new())
        .layer(RequestBodyLimitLayer::new(MAX_FORM_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            PAGE_TIMEOUT,
        ))
}
