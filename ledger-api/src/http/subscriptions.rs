//! `/graphql/ws`: GraphQL subscriptions over a websocket, graphql-transport-ws (async-graphql
//! also speaks the older graphql-ws, which some tools still use).
//!
//! The API key comes in the `connection_init` payload (`{"Authorization": "Bearer lk_…"}`,
//! or `authorization`), or else in the upgrade request's `Authorization` header, and is
//! checked once, before anything may be subscribed; the principal then stays with the
//! connection, where every resolver's `caller` finds it. A refused key closes the socket with
//! 4401, a connection that does not introduce itself within [`CONNECTION_INIT_TIMEOUT`] with
//! 4408, as the protocol names them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use sqlx::PgPool;
use tracing::Instrument;

use super::ServerState;
use crate::auth::{authenticate_bearer, Principal};
use crate::error::ApiError;
use crate::live::ConnectionSlots;

/// How long a new connection may take to send `connection_init`.
pub const CONNECTION_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// graphql-transport-ws close codes. 4401 rather than the protocol's 4403 for a refused key:
/// the graphql-ws client library gives up on 4401, where on 4403 it would retry the same
/// key forever.
const CLOSE_UNAUTHORIZED: u16 = 4401;
const CLOSE_INIT_TIMEOUT: u16 = 4408;
const CLOSE_INTERNAL: u16 = 4500;
/// WebSocket's "try again later": clients reconnect, as they should when the database is away.
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// The most a close frame's reason may hold.
const MAX_CLOSE_REASON_BYTES: usize = 123;

pub async fn subscriptions(
    State(state): State<ServerState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    // The connection outlives the request, but its log lines should still carry its id.
    let span = tracing::Span::current();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve(socket, state, protocol, authorization).instrument(span))
}

/// Why `connection_init` was refused, for the close frame that follows.
type Refusal = Arc<OnceLock<(u16, String)>>;

async fn serve(
    socket: WebSocket,
    state: ServerState,
    protocol: GraphQLProtocol,
    authorization: Option<String>,
) {
    let (mut sink, stream) = socket.split();
    let refusal = Refusal::default();
    let introduced = Arc::new(OnceLock::new());
    let timed_out = {
        let refused = Arc::clone(&refusal);
        // async-graphql closes a refused connection with 1002 (protocol error), which clients
        // read as a bug of theirs; the close frame it sends is rewritten here to say why.
        let sink = (&mut sink).with(move |message| {
            let message = match (message, refused.get()) {
                (Message::Close(_), Some((code, reason))) => Message::Close(Some(CloseFrame {
                    code: *code,
                    reason: reason.as_str().into(),
                })),
                (message, _) => message,
            };
            std::future::ready(Ok::<_, axum::Error>(message))
        });
        let pool = state.app.pool.clone();
        let introduced_now = Arc::clone(&introduced);
        let connection =
            GraphQLWebSocket::new_with_pair(sink, stream, state.schema.clone(), protocol)
                .on_connection_init(move |payload| {
                    let _ = introduced_now.set(());
                    initialise(pool, authorization, payload, refusal)
                })
                .serve();
        let deadline = async {
            tokio::time::sleep(CONNECTION_INIT_TIMEOUT).await;
            if introduced.get().is_some() {
                std::future::pending::<()>().await;
            }
        };
        // Dropping the connection drops its subscriptions' streams: nothing is left running
        // once the client has gone.
        tokio::select! {
            () = connection => false,
            () = deadline => true,
        }
    };
    if timed_out {
        let close = Message::Close(Some(CloseFrame {
            code: CLOSE_INIT_TIMEOUT,
            reason: "Connection initialisation timeout".into(),
        }));
        let _ = sink.send(close).await;
    }
}

/// Authenticates `connection_init`; its principal and subscription count become the
/// connection's data.
async fn initialise(
    pool: PgPool,
    header: Option<String>,
    payload: serde_json::Value,
    refusal: Refusal,
) -> async_graphql::Result<Data> {
    match authenticate(&pool, header.as_deref(), &payload).await {
        Ok(principal) => {
            let mut data = Data::default();
            data.insert(principal);
            data.insert(ConnectionSlots::new());
            Ok(data)
        }
        Err(error) => {
            let code = match error {
                ApiError::Unauthenticated | ApiError::Forbidden(_) => CLOSE_UNAUTHORIZED,
                ApiError::Unavailable(_) => CLOSE_TRY_AGAIN_LATER,
                _ => CLOSE_INTERNAL,
            };
            let reason = close_reason(&error);
            tracing::info!(code, "websocket connection refused");
            let _ = refusal.set((code, reason.clone()));
            Err(async_graphql::Error::new(reason))
        }
    }
}

/// The payload's key when it has one (a present but unusable one is refused, not replaced by
/// the header's), else the upgrade request's header.
async fn authenticate(
    pool: &PgPool,
    header: Option<&str>,
    payload: &serde_json::Value,
) -> Result<Principal, ApiError> {
    let from_payload = ["Authorization", "authorization"]
        .iter()
        .find_map(|name| payload.get(name));
    let authorization = match from_payload {
        Some(value) => value.as_str(),
        None => header,
    };
    authenticate_bearer(pool, authorization).await
}

/// The error's code and client message, cut to what a close frame can carry.
fn close_reason(error: &ApiError) -> String {
    let mut reason = format!("{}: {}", error.code(), error.client_message());
    if reason.len() > MAX_CLOSE_REASON_BYTES {
        let mut end = MAX_CLOSE_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let long = ApiError::Forbidden("é".repeat(200));
        let reason = close_reason(&long);
        assert!(reason.len() <= MAX_CLOSE_REASON_BYTES);
        assert!(reason.starts_with("FORBIDDEN: é"));
        assert_eq!(
            close_reason(&ApiError::Unauthenticated),
            "UNAUTHENTICATED: a valid API key is required: send `Authorization: Bearer lk_…`"
        );
    }
}
