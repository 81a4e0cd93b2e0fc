//! `POST /graphql`, authenticated (`GET /graphql` is the GraphiQL page: `graphiql`).

use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::ServerState;
use crate::error::ApiError;

/// Answers a request refused before the schema runs it (a bad key, a body that is not
/// GraphQL) the way a GraphQL client reads errors, with the error's HTTP status.
fn refuse(error: ApiError) -> Response {
    super::error_shape::answer(error.http_status(), &error)
}

async fn principal(
    state: &ServerState,
    headers: &HeaderMap,
) -> Result<crate::auth::Principal, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    state
        .app
        .keys
        .authenticate_bearer(&state.app.pool, authorization)
        .await
}

pub async fn execute(
    State(state): State<ServerState>,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let principal = match principal(&state, &headers).await {
        Ok(principal) => principal,
        Err(error) => return refuse(error),
    };
    let request = match request {
        Ok(request) => request,
        Err(rejection) => {
            return refuse(ApiError::validation(
                "body",
                format!(
                    "the request is not a GraphQL request in JSON: {}",
                    rejection.0
                ),
            ))
        }
    };
    let mut request = request.into_inner().data(principal);
    if let Some(document) = state.parsed_queries.document(&request.query) {
        request.set_parsed_query(document);
    }
    let operation = state
        .known_operations
        .label(request.operation_name.as_deref());
    let started = std::time::Instant::now();
    let response = state.schema.execute(request).await;
    let outcome = response
        .errors
        .first()
        .and_then(|error| error.extensions.as_ref())
        .and_then(|extensions| extensions.get("code"))
        .map(|code| code.to_string().trim_matches('"').to_owned())
        .unwrap_or_else(|| "OK".to_owned());
    metrics::counter!("ledger_graphql_requests_total", "operation" => operation.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("ledger_graphql_request_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    GraphQLResponse::from(response).into_response()
}
