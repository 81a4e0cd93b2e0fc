//! Every answer of `/graphql` and `/commands` is in GraphQL's error shape with a code
//! (interfaces.md), including those made by the layers in front of the schema: a body over the
//! limit (413), a request over time (408) and a panic caught on its way out (500). Those layers
//! answer in plain text of their own; this rewrites such answers on the GraphQL paths, once,
//! from [`ApiError`], so their codes and messages are the ones every other error has.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{MAX_BODY_BYTES, REQUEST_TIMEOUT};
use crate::error::ApiError;

/// The paths whose answers are GraphQL's (the websocket's are protocol messages): `/graphql`
/// and the bulk commands under `/commands`.
fn speaks_graphql(path: &str) -> bool {
    path == "/graphql" || path == "/commands" || path.starts_with("/commands/")
}

/// Rewrites a layer's plain-text refusal on a GraphQL path into GraphQL's error shape.
pub async fn in_graphql_shape(request: Request, next: Next) -> Response {
    let graphql = speaks_graphql(request.uri().path());
    let response = next.run(request).await;
    if !graphql || is_json(&response) {
        return response;
    }
    let error = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::validation(
            "body",
            format!(
                "the request body is larger than {} KiB; send less in one request",
                MAX_BODY_BYTES / 1024
            ),
        ),
        StatusCode::REQUEST_TIMEOUT => ApiError::Unavailable(format!(
            "the request took longer than {} s and was abandoned",
            REQUEST_TIMEOUT.as_secs()
        )),
        StatusCode::INTERNAL_SERVER_ERROR => {
            ApiError::internal("a panic was caught while answering a GraphQL request")
        }
        _ => return response,
    };
    answer(response.status(), &error)
}

/// A GraphQL error answer with `status`, for requests refused before the schema ran them.
pub fn answer(status: StatusCode, error: &ApiError) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": error.client_message(),
            "extensions": {"code": error.code(), "retryable": error.retryable()},
        }]
    });
    (status, Json(body)).into_response()
}

fn is_json(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}
