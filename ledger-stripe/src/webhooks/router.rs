//! The route: body bound, verification with the server clock, processing, the answer.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use futures::StreamExt;
use tracing::Instrument;

use super::error::WebhookError;
use super::metrics;
use super::outcome::DeliveryOutcome;
use super::process::{process, Resolution};
use super::state::WebhookState;
use crate::gateway::secrets::WEBHOOK_SECRETS_VARIABLE;
use crate::gateway::{verify_event, StripeError, SIGNATURE_HEADER};

/// Where Stripe delivers (interfaces.md).
pub const STRIPE_WEBHOOK_PATH: &str = "/webhooks/stripe";

/// `POST /webhooks/stripe`, ready to merge into any router (its state is its own).
pub fn stripe_router<S>(state: WebhookState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(STRIPE_WEBHOOK_PATH, post(receive))
        .with_state(state)
}

/// `POST /webhooks/stripe` on a server without webhook secrets: 503, so that Stripe keeps
/// retrying (for up to three days) while an operator sets `LEDGER_STRIPE_WEBHOOK_SECRETS`, and
/// nothing sent meanwhile is lost. No signature can be checked, so nothing is read or recorded.
pub fn unconfigured_stripe_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(STRIPE_WEBHOOK_PATH, post(not_configured))
}

async fn not_configured() -> Response {
    let body = serde_json::json!({ "error": {
        "code": "webhooks_not_configured",
        "message": format!(
            "this ledger has no Stripe webhook secret yet: set {WEBHOOK_SECRETS_VARIABLE} \
             (test:whsec_…,live:whsec_…) and restart; Stripe retries this event meanwhile"
        ),
    }});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    match handle(&state, &headers, body).await {
        Ok(resolution) => {
            let outcome = resolution.delivery_outcome();
            metrics::delivery(outcome, started.elapsed());
            if let Some(error) = resolution.rejection {
                // Signed but unusable: recorded as rejected, and answered as refused.
                metrics::rejection(error.code());
                return WebhookError::Stripe(error).into_response();
            }
            tracing::info!(outcome = %outcome, "stripe webhook handled");
            let body = serde_json::json!({ "received": true, "outcome": outcome.as_str() });
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(error) if error.is_refusal() => {
            metrics::delivery(DeliveryOutcome::Rejected, started.elapsed());
            metrics::rejection(error.code());
            tracing::info!(code = error.code(), "stripe webhook refused");
            error.into_response()
        }
        Err(error) => {
            metrics::failure(started.elapsed());
            error.into_response()
        }
    }
}

async fn handle(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Resolution, WebhookError> {
    let max_bytes = state.config().max_body_bytes;
    let body = read_body(headers, body, max_bytes).await?;
    let received_at = Utc::now();
    let signature = match headers.get(SIGNATURE_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| StripeError::MalformedSignatureHeader {
                    reason: "it is not visible ASCII",
                })?,
        ),
    };
    let event = verify_event(
        signature,
        &body,
        &state.config().secrets,
        received_at,
        max_bytes,
    )?;
    let span = tracing::info_span!(
        "stripe_webhook",
        stripe_event_id = event.id(),
        event_type = event.event_type(),
        environment = %event.environment()
    );
    process(state, &event, received_at).instrument(span).await
}

/// Reads the body up to `max_bytes`. A declared length above the bound is refused before
/// anything is read (so a client that waits for `100 Continue` never sends it); a body that
/// grows past the bound is refused as soon as it does.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max_bytes: usize,
) -> Result<Vec<u8>, WebhookError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(size_bytes) = declared.filter(|size| *size > max_bytes) {
        return Err(StripeError::BodyTooLarge {
            size_bytes,
            max_bytes,
        }
        .into());
    }
    let mut buffer = Vec::with_capacity(declared.unwrap_or(0).min(max_bytes));
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| WebhookError::BodyUnreadable(error.to_string()))?;
        let size_bytes = buffer.len().saturating_add(chunk.len());
        if size_bytes > max_bytes {
            return Err(StripeError::BodyTooLarge {
                size_bytes,
                max_bytes,
            }
            .into());
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer)
}
