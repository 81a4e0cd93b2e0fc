//! The HTTP surface: Stripe's `/v1/…` routes, the sandbox's own `/sandbox/…` controls, and
//! Stripe's 404 for everything else. Handlers are thin: parse, run the operation on the
//! state under its lock with Stripe's idempotency, answer.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Extract};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::auth::{authenticate, ApiKey};
use crate::params::Params;
use crate::state::{Cursor, EventFilter, State, LATER_DELAY};
use crate::webhooks::DeliveryStats;

mod payouts;

/// Stripe's bound on an `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 255;

/// Stripe's requests are small; a form larger than this is not a card payment.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct App {
    pub state: Mutex<State>,
    pub stats: Arc<DeliveryStats>,
}

type Shared = Arc<App>;

pub fn router(app: Shared) -> Router {
    payouts::routes(Router::new())
        .route("/v1/payment_intents", post(create_intent).get(list_intents))
        .route(
            "/v1/payment_intents/{id}",
            get(retrieve_intent).post(update_intent),
        )
        .route("/v1/payment_intents/{id}/confirm", post(confirm_intent))
        .route("/v1/payment_intents/{id}/capture", post(capture_intent))
        .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
        .route("/v1/charges/{id}", get(retrieve_charge))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/refunds/{id}", get(retrieve_refund).post(update_refund))
        .route(
            "/v1/disputes/{id}",
            get(retrieve_dispute).post(update_dispute),
        )
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(retrieve_event))
        .route(
            "/sandbox/payment_intents/{id}/authenticate",
            post(authenticate_intent),
        )
        .route("/sandbox/webhooks", get(webhook_stats))
        .fallback(unrecognized)
        .method_not_allowed_fallback(unrecognized)
        .layer(axum::middleware::from_fn(authenticate))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

async fn unrecognized(method: Method, uri: Uri) -> Response {
    ApiError::unrecognized_url(method.as_str(), uri.path()).into_response()
}

fn lock(app: &App) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock leaves plain data behind; serving on is safe.
    app.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A POST: Stripe's idempotency around the operation, then the answer.
fn write(
    app: &Shared,
    key: &ApiKey,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    operation: impl FnOnce(&mut State, Params) -> Result<Value, ApiError>,
) -> Response {
    let mut params = match Params::parse(body) {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    let fingerprint = format!("POST {path} {}", params.fingerprint());
    let expand = match params.take_expand() {
        Ok(expand) => expand,
        Err(error) => return error.into_response(),
    };
    let idempotency_key = match headers.get("idempotency-key").map(HeaderValue::to_str) {
        None => None,
        Some(Ok(value)) if !value.is_empty() && value.len() <= MAX_IDEMPOTENCY_KEY_LENGTH => {
            Some(value.to_owned())
        }
        Some(_) => {
            return ApiError::invalid_request(
                "idempotency_key_invalid",
                format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters of visible ASCII."),
            )
            .into_response()
        }
    };
    let scope = idempotency_key
        .as_ref()
        .map(|idempotency_key| format!("{}\n{idempotency_key}", key.0));
    let mut state = lock(app);
    if let (Some(scope), Some(idempotency_key)) = (&scope, &idempotency_key) {
        if let Some(saved) = state.saved(scope) {
            if saved.fingerprint != fingerprint {
                return ApiError::idempotency_mismatch(idempotency_key).into_response();
            }
            let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
            let mut response = (status, Json(saved.body.clone())).into_response();
            let headers = response.headers_mut();
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            if let Ok(value) = HeaderValue::from_str(idempotency_key) {
                headers.insert("idempotency-key", value);
            }
            return response;
        }
    }
    let request_id = state.begin_request(idempotency_key.clone());
    let outcome = operation(&mut state, params).map(|body| state.expand(body, &expand));
    state.end_request();
    let (status, body) = match outcome {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => (error.status, json!({ "error": error.body() })),
    };
    // Stripe saves a result once the endpoint ran: successes and card errors. Validation
    // errors are not saved, so a corrected retry with the same key goes through.
    if let Some(scope) = scope {
        if status.is_success() || status == StatusCode::PAYMENT_REQUIRED {
            state.save(
                scope,
                crate::state::Saved {
                    fingerprint,
                    status: status.as_u16(),
                    body: body.clone(),
                },
            );
        }
    }
    let later = std::mem::take(&mut state.scheduled);
    drop(state);
    for change in later {
        let app = app.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LATER_DELAY).await;
            lock(&app).run_later(&change);
        });
    }
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("request-id", value);
    }
    if let Some(Ok(value)) = idempotency_key.as_deref().map(HeaderValue::from_str) {
        headers.insert("idempotency-key", value);
    }
    response
}

/// A GET: query parameters, then the operation on the state.
fn read(
    app: &Shared,
    query: Option<String>,
    operation: impl FnOnce(&State, Params) -> Result<Value, ApiError>,
) -> Response {
    let mut params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    let expand = match params.take_expand() {
        Ok(expand) => expand,
        Err(error) => return error.into_response(),
    };
    let state = lock(app);
    match operation(&state, params).map(|body| state.expand(body, &expand)) {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

fn no_params(mut params: Params) -> Result<(), ApiError> {
    params.ignore_common();
    params.finish()
}

async fn create_intent(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(
        &app,
        &key,
        &headers,
        "/v1/payment_intents",
        &body,
        |state, params| state.create_intent(params),
    )
}

async fn retrieve_intent(
    Extract(app): Extract<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    read(&app, query, |state, params| {
        no_params(params)?;
        state.retrieve_intent(&id)
    })
}

async fn update_intent(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/payment_intents/{id}");
    write(&app, &key, &headers, &path, &body, |state, params| {
        state.update_intent(&id, params)
    })
}

async fn list_intents(Extract(app): Extract<Shared>, RawQuery(query): RawQuery) -> Response {
    read(&app, query, |state, params| state.list_intents(params))
}

async fn confirm_intent(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/payment_intents/{id}/confirm");
    write(&app, &key, &headers, &path, &body, |state, params| {
        state.confirm_intent(&id, params)
    })
}

async fn capture_intent(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/payment_intents/{id}/capture");
    write(&app, &key, &headers, &path, &body, |state, params| {
        state.capture_intent(&id, params)
    })
}

async fn cancel_intent(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/payment_intents/{id}/cancel");
    write(&app, &key, &headers, &path, &body, |state, params| {
        state.cancel_intent(&id, params)
    })
}

async fn authenticate_intent(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/sandbox/payment_intents/{id}/authenticate");
    write(&app, &key, &headers, &path, &body, |state, params| {
        state.authenticate_intent(&id, params)
    })
}

async fn retrieve_charge(
    Extract(app): Extract<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    read(&app, query, |state, params| {
        no_params(params)?;
        state
            .charges
            .get(&id)
            .map(crate::objects::Charge::render)
            .ok_or_else(|| ApiError::resource_missing("charge", &id))
    })
}

async fn create_refund(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(
        &app,
        &key,
        &headers,
        "/v1/refunds",
        &body,
        |state, params| state.create_refund(params),
    )
}

async fn retrieve_refund(
    Extract(app): Extract<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    read(&app, query, |state, params| {
        no_params(params)?;
        state.retrieve_refund(&id)
    })
}

async fn update_refund(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/refunds/{id}");
    write(&app, &key, &headers, &path, &body, |state, params| {
        state.update_refund(&id, params)
    })
}

async fn retrieve_dispute(
    Extract(app): Extract<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    read(&app, query, |state, params| {
        no_params(params)?;
        state.retrieve_dispute(&id)
    })
}

async fn update_dispute(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/disputes/{id}");
    write(&app, &key, &headers, &path, &body, |state, params| {
        state.update_dispute(&id, params)
    })
}

async fn retrieve_event(
    Extract(app): Extract<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    read(&app, query, |state, params| {
        no_params(params)?;
        state
            .event(&id)
            .cloned()
            .ok_or_else(|| ApiError::resource_missing("event", &id))
    })
}

async fn list_events(Extract(app): Extract<Shared>, RawQuery(query): RawQuery) -> Response {
    read(&app, query, |state, mut params| {
        params.ignore_common();
        let limit = params.integer("limit", 1..=100)?.unwrap_or(10);
        let starting_after = params.text("starting_after")?;
        let ending_before = params.text("ending_before")?;
        let filter = EventFilter {
            event_type: params.text("type")?,
            created: params.timestamp_range("created")?,
        };
        params.finish()?;
        let cursor =
            match (&starting_after, &ending_before) {
                (Some(_), Some(_)) => return Err(ApiError::invalid_param(
                    "ending_before",
                    "You may only specify one of these parameters: ending_before, starting_after.",
                )),
                (_, Some(before)) => Cursor::EndingBefore(before),
                (after, None) => Cursor::StartingAfter(after.as_deref()),
            };
        for (cursor, param) in [
            (&starting_after, "starting_after"),
            (&ending_before, "ending_before"),
        ] {
            if let Some(id) = cursor {
                if state.event(id).is_none() {
                    return Err(ApiError::resource_missing("event", id).with_param(param));
                }
            }
        }
        let (data, has_more) = state.list_events(limit, cursor, &filter);
        Ok(json!({ "object": "list", "data": data, "has_more": has_more, "url": "/v1/events" }))
    })
}

async fn webhook_stats(Extract(app): Extract<Shared>) -> Response {
    Json(app.stats.view()).into_response()
}
