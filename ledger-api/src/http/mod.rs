//! The HTTP edge: routes, and the limits and tracing every request passes through.
//! A websocket's request ends when it is upgraded, so those limits do not bound a
//! subscription connection; `subscriptions` and `live` set its own (the same message size,
//! subscriptions only, pings, the key checked again).

pub mod bulk;
pub mod error_shape;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod operation_names;
pub mod parsed_queries;
pub mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::graphql::{AppState, LedgerSchema};

/// The largest request body accepted anywhere. The largest request the contract allows is a
/// `recordSettlementBatch` of 2,000 items, each up to about 400 bytes of JSON with the longest
/// ids: it must fit, with room for the query around it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests taking longer are answered 408 and their work abandoned.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct ServerState {
    pub app: AppState,
    pub schema: LedgerSchema,
    pub metrics: PrometheusHandle,
    pub parsed_queries: Arc<parsed_queries::ParsedQueryCache>,
    /// The operation names `/metrics` counts by name (the schema's root fields).
    pub known_operations: Arc<operation_names::KnownOperations>,
    /// How `/graphql/ws` connections are pinged and their keys checked again.
    pub websocket: subscriptions::WebsocketSettings,
}

pub fn router(state: ServerState, extra: Router) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/graphql", get(graphiql::page).post(graphql::execute))
        .route("/graphql/assets/{name}", get(graphiql::asset))
        .route("/graphql/ws", get(subscriptions::subscriptions))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/commands", post(bulk::commands))
        .with_state(state)
        .merge(extra)
        // A panic is caught here, answered 500 and the server goes on; the answers of this
        // layer and the two below are put in GraphQL's error shape by the one above them.
        .layer(CatchPanicLayer::new())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(error_shape::in_graphql_shape))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(
            |request: &axum::http::Request<axum::body::Body>| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %request_id,
                )
            },
        ))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
