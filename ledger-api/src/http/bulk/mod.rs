//! `POST /commands`: many payment and settlement commands in one request.
//!
//! The body is newline-delimited JSON, one command a line:
//! `{"command": "capturePayment", "input": {…the mutation's input…}}`. Each line runs the
//! mutation of that name through the schema (`documents`), with the request's key: the same
//! input types, parsing, permission checks, command handling and error codes as `/graphql`,
//! so a line's answer is exactly the mutation's. The answer is newline-delimited JSON in the
//! order of the lines: each the mutation's payload (`payment`/`batch`, `events`, `position`,
//! `replayed`) or `{"error": {message, code, retryable, rule}}`.
//!
//! Lines are independent: they run concurrently (up to [`LINES_IN_FLIGHT`] at a time), so the
//! store's writer commits them in groups, and one refused line refuses nothing else. With
//! `?atomic=true` they are decided in order and appended in one transaction, or none is
//! (`atomic`).
//!
//! A request over the limits (more than [`MAX_LINES`] lines, a body over
//! [`super::MAX_BODY_BYTES`], another content type) is refused whole, in GraphQL's error
//! shape, and nothing is run.

pub mod documents;
mod line;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use std::sync::Arc;

use ledger_store::commands::unit::Unit;

use super::ServerState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::graphql::context::UnitLine;

/// Most lines (commands) one request may carry.
pub const MAX_LINES: usize = 1_000;
/// Lines of one independent request run at once: enough for the store's writer to commit
/// them in large groups, bounded so one request cannot hold every connection.
pub const LINES_IN_FLIGHT: usize = 128;
/// The content type of the request and of the answer.
pub const NDJSON: &str = "application/x-ndjson";

#[derive(Debug, Default, Deserialize)]
pub struct Mode {
    #[serde(default)]
    atomic: bool,
}

pub async fn commands(
    State(state): State<ServerState>,
    headers: HeaderMap,
    mode: Result<Query<Mode>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Response {
    match answer(&state, &headers, mode, &body).await {
        Ok(lines) => {
            let mut text = String::with_capacity(lines.len() * 512);
            for line in lines {
                text.push_str(&line.to_string());
                text.push('\n');
            }
            ([(header::CONTENT_TYPE, NDJSON)], text).into_response()
        }
        Err((status, error)) => super::error_shape::answer(status, &error),
    }
}

type Refusal = (StatusCode, ApiError);

async fn answer(
    state: &ServerState,
    headers: &HeaderMap,
    mode: Result<Query<Mode>, axum::extract::rejection::QueryRejection>,
    body: &[u8],
) -> Result<Vec<serde_json::Value>, Refusal> {
    let refuse = |error: ApiError| (error.http_status(), error);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let principal = state
        .app
        .keys
        .authenticate_bearer(&state.app.pool, authorization)
        .await
        .map_err(refuse)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some(NDJSON) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::validation(
                "Content-Type",
                format!("send the commands as {NDJSON}, one JSON object a line"),
            ),
        ));
    }
    let Query(mode) = mode.map_err(|rejection| {
        refuse(ApiError::validation(
            "atomic",
            format!("the query string is not understood: {rejection}"),
        ))
    })?;
    let text = std::str::from_utf8(body)
        .map_err(|_| refuse(ApiError::validation("body", "the body is not UTF-8 text")))?;
    // A final newline ends the last line; it does not start another.
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .collect();
    if text.trim().is_empty() {
        return Err(refuse(ApiError::validation("body", "no command to run")));
    }
    if lines.len() > MAX_LINES {
        return Err(refuse(ApiError::validation(
            "body",
            format!(
                "{} lines: a request carries at most {MAX_LINES} commands; split it",
                lines.len()
            ),
        )));
    }
    let commands: Vec<Result<line::Command, ApiError>> =
        lines.iter().map(|text| line::parse(text)).collect();
    if mode.atomic {
        return Ok(atomic(state, principal, commands).await);
    }
    // Each line's future owns what it uses (the state is a few shared handles), so the
    // stream of them is `Send` without borrowing across lines.
    Ok(futures::stream::iter(commands)
        .map(|command| run_line(state.clone(), principal, command, None))
        .buffered(LINES_IN_FLIGHT)
        .collect()
        .await)
}

async fn run_line(
    state: ServerState,
    principal: Principal,
    command: Result<line::Command, ApiError>,
    handler: Option<UnitLine>,
) -> serde_json::Value {
    match command {
        Ok(command) => line::run(&state, &principal, &command, handler).await,
        Err(error) => line::error(&error),
    }
}

/// Runs the lines as one unit: each decided in order on the state the lines before it
/// leave, all appended in one transaction or none (see `ledger_store::commands::unit`).
/// Every line runs at once, so that each can wait for its turn and then for the verdict.
async fn atomic(
    state: &ServerState,
    principal: Principal,
    commands: Vec<Result<line::Command, ApiError>>,
) -> Vec<serde_json::Value> {
    let unit = Unit::new(&state.app.handler, commands.len());
    let lines = commands.into_iter().enumerate().map(|(index, command)| {
        let (state, unit) = (state.clone(), Arc::clone(&unit));
        async move {
            let handler = UnitLine(unit.handler_for(index));
            let answer = run_line(state, principal, command, Some(handler)).await;
            unit.finished(index);
            answer
        }
    });
    let (answers, ()) = futures::join!(futures::future::join_all(lines), unit.drive());
    answers
}
