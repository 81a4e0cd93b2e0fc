//! `/healthz` (the process is up), `/readyz` (the database answers and the schema is current)
//! and `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use super::ServerState;

/// `/readyz` fails when a projection is further behind the log than this many events…
pub const MAX_READY_LAG_POSITIONS: u64 = 10_000;
/// …or than this many seconds.
pub const MAX_READY_LAG_SECONDS: f64 = 30.0;

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
    let lag = ledger_projections::projection_lag(&state.app.pool)
        .await
        .unwrap_or_default();
    // No checkpoint yet means no projector has run: current only while the log is empty.
    let projections_current = if lag.is_empty() {
        sqlx::query_scalar!("SELECT last_position FROM log_head WHERE id = 1")
            .fetch_one(&state.app.pool)
            .await
            .is_ok_and(|head| head == 0)
    } else {
        lag.iter().all(|projection| {
            projection.positions_behind <= MAX_READY_LAG_POSITIONS
                && projection.seconds_behind <= MAX_READY_LAG_SECONDS
        })
    };
    let ready = database && migrations_current && projections_current;
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
            "projections_current": projections_current,
            "projections": lag.iter().map(|projection| serde_json::json!({
                "projection": projection.projection,
                "positions_behind": projection.positions_behind,
                "seconds_behind": projection.seconds_behind,
            })).collect::<Vec<_>>(),
            // Shown, never counted against readiness: reads go to the primary without them.
            "read_replicas": state.app.reads.statuses().iter().map(|standby| serde_json::json!({
                "replica": standby.label,
                "state": standby.state,
                "in_rotation": standby.in_rotation,
                "replayed_position": standby.replayed_position,
                "lag_positions": standby.lag_positions,
                "lag_seconds": standby.lag_seconds,
            })).collect::<Vec<_>>(),
        })),
    )
}

pub async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    if let Ok(lag) = ledger_projections::projection_lag(&state.app.pool).await {
        for projection in lag {
            metrics::gauge!("ledger_projection_lag_positions", "projection" => projection.projection.clone())
                .set(projection.positions_behind as f64);
            metrics::gauge!("ledger_projection_lag_seconds", "projection" => projection.projection)
                .set(projection.seconds_behind);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render()
            + &writer_series(state.app.handler.store().writer_statistics())
            + &replica_series(&state.app.reads.statuses()),
    )
}

/// How one series reads its value off a standby's status.
type StandbyValue = fn(&crate::replicas::StandbyStatus) -> String;

/// Each standby's lag and whether it is in rotation, labelled by where it is (no
/// credentials). Written by hand, like the writer's, so that each server shows its own.
fn replica_series(standbys: &[crate::replicas::StandbyStatus]) -> String {
    if standbys.is_empty() {
        return String::new();
    }
    let series: [(&str, &str, &str, StandbyValue); 4] = [
        (
            "ledger_read_replica_lag_positions",
            "Log positions the standby lacks (NaN when it cannot be measured)",
            "gauge",
            |standby| optional(standby.lag_positions.map(|lag| lag as f64)),
        ),
        (
            "ledger_read_replica_lag_seconds",
            "Age of the oldest event the standby lacks (NaN when it cannot be measured)",
            "gauge",
            |standby| optional(standby.lag_seconds),
        ),
        (
            "ledger_read_replica_in_rotation",
            "1 while reads go to the standby, 0 while it is out of rotation",
            "gauge",
            |standby| u8::from(standby.in_rotation).to_string(),
        ),
        (
            "ledger_read_replica_fallbacks_total",
            "Reads that failed on the standby and were answered by the primary",
            "counter",
            |standby| standby.fallbacks.to_string(),
        ),
    ];
    let mut text = String::new();
    for (name, help, kind, value) in series {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for standby in standbys {
            text.push_str(&format!(
                "{name}{{replica=\"{}\"}} {}\n",
                label_value(&standby.label),
                value(standby)
            ));
        }
    }
    text
}

fn optional(value: Option<f64>) -> String {
    value.map_or_else(|| "NaN".to_owned(), |value| value.to_string())
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// How this server's writer is batching: requests per commit, and how often it pipelines. A
/// growing count of batches written again means another process writes to the same log.
/// Written from the store's own counts rather than through the process-wide recorder, which
/// every store of a process (the tests start many) would share.
fn writer_series(statistics: ledger_store::WriterStatistics) -> String {
    [
        (
            "ledger_writer_batches_total",
            "Batches committed by the store's writer",
            statistics.batches,
        ),
        (
            "ledger_writer_requests_total",
            "Append requests answered in them",
            statistics.requests,
        ),
        (
            "ledger_writer_pipelined_batches_total",
            "Batches written on the state the batches before them left, without reading it",
            statistics.pipelined,
        ),
        (
            "ledger_writer_written_again_batches_total",
            "Pipelined batches the database refused, written again under the lock",
            statistics.written_again,
        ),
    ]
    .into_iter()
    .map(|(name, help, value)| {
        format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n")
    })
    .collect()
}
