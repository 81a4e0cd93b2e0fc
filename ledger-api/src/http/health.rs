//! `/healthz` (the process is up), `/readyz` (the database answers and the schema is current)
//! and `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use super::ServerState;

pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

pub async fn readyz(State(state): State<ServerState>) -> impl IntoResponse {
    let database = sqlx::query_scalar!("SELECT 1 AS \"one!\"")
        .fetch_one(&state.app.pool)
        .await
        .is_ok();
    let applied = sqlx::query_scalar!(
        "SELECT COALESCE(MAX(version), 0) AS \"version!\" FROM _sqlx_migrations WHERE success"
    )
    .fetch_one(&state.app.pool)
    .await
    .ok();
    let expected = ledger_store::MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0);
    let migrations_current = applied == Some(expected);
    let ready = database && migrations_current;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "ready": ready,
            "database": database,
            "migrations_current": migrations_current,
        })),
    )
}

pub async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
