//! `/graphql/ws`: GraphQL subscriptions over a websocket, graphql-transport-ws (async-graphql
//! also speaks the older graphql-ws, which some tools still use).
//!
//! The API key comes in the `connection_init` payload (`{"Authorization": "Bearer lk_…"}`,
//! or `authorization`), or else in the upgrade request's `Authorization` header, and is
//! checked before anything may be subscribed; the principal then stays with the connection,
//! where every resolver's `caller` finds it. A refused key closes the socket with 4401, a
//! connection that does not introduce itself within [`CONNECTION_INIT_TIMEOUT`] with 4408, as
//! the protocol names them.
//!
//! A connection outlives the HTTP request's limits, so it keeps its own, in one loop
//! ([`Connection::run`]) in front of async-graphql: only subscriptions pass (`screen`); a
//! message is at most [`MAX_BODY_BYTES`], as an HTTP body (larger: closed with 1009); the key
//! is looked up again every [`WebsocketSettings::key_recheck_interval`] (revoked: closed with
//! 4403, as interfaces.md promises); a client is pinged every
//! [`WebsocketSettings::ping_interval`] and dropped (3008) when it stays silent for a whole
//! interval after a ping, or does not take what is sent to it within one.

mod screen;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::{WebSocket as GraphqlConnection, WebSocketProtocols, WsMessage};
use async_graphql::Data;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, Stream, StreamExt};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::SendError;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};
use tracing::Instrument;

use super::{ServerState, MAX_BODY_BYTES};
use crate::auth::api_key::ApiKey;
use crate::auth::keys::{authenticate as authenticate_key, bearer_key};
use crate::auth::{Principal, KEY_CACHE_TTL};
use crate::error::ApiError;
use crate::live::ConnectionSlots;
use screen::{screen, Screened};

/// How long a new connection may take to send `connection_init`.
pub const CONNECTION_INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an open connection is pinged. A client that stays silent for a whole interval
/// after a ping (no pong, no message) is dropped, so a vanished one holds its subscriptions
/// for at most two intervals.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

/// graphql-transport-ws close codes. 4401 rather than the protocol's 4403 for a refused key:
/// the graphql-ws client library gives up on 4401, where on 4403 it would retry the same
/// key forever.
const CLOSE_UNAUTHORIZED: u16 = 4401;
/// A key revoked while its connection is open: the code interfaces.md names.
const CLOSE_KEY_REVOKED: u16 = 4403;
const CLOSE_INIT_TIMEOUT: u16 = 4408;
const CLOSE_INTERNAL: u16 = 4500;
/// WebSocket's "try again later": clients reconnect, as they should when the database is away.
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// WebSocket's "message too big".
const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
/// The IANA-registered "timeout" (async-graphql's keep-alive uses it too): the client did not
/// answer pings or did not read.
const CLOSE_TIMEOUT: u16 = 3008;
/// The most a close frame's reason may hold.
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// How a websocket connection is kept honest; the defaults suit production, tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct WebsocketSettings {
    /// See [`PING_INTERVAL`].
    pub ping_interval: Duration,
    /// How often a connection's key is looked up again. At most [`KEY_CACHE_TTL`], so that a
    /// revoked key's subscriptions end no later than its HTTP requests are refused.
    pub key_recheck_interval: Duration,
}

impl Default for WebsocketSettings {
    fn default() -> Self {
        WebsocketSettings {
            ping_interval: PING_INTERVAL,
            key_recheck_interval: KEY_CACHE_TTL,
        }
    }
}

pub async fn subscriptions(
    State(state): State<ServerState>,
    upgrade: WebSocketUpgrade,
    headers: HeaderMap,
) -> Response {
    let Some(protocol) = protocol(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must name graphql-transport-ws",
        )
            .into_response();
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    // The connection outlives the request, but its log lines should still carry its id.
    let span = tracing::Span::current();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Bounded as an HTTP body is; a larger frame is refused from its header, before it
        // is read.
        .max_message_size(MAX_BODY_BYTES)
        .max_frame_size(MAX_BODY_BYTES)
        .on_upgrade(move |socket| {
            let (sink, incoming) = socket.split();
            let connection = Connection {
                sink,
                protocol,
                settings: state.websocket,
                pool: state.app.pool.clone(),
            };
            connection
                .run(incoming, state, authorization)
                .instrument(span)
        })
}

/// The first graphql protocol the client offers, as async-graphql-axum's extractor reads it.
fn protocol(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?
        .split(',')
        .find_map(|offered| offered.trim().parse().ok())
}

/// Why `connection_init` was refused, for the close frame that follows.
type Refusal = Arc<OnceLock<(u16, String)>>;
/// The key a connection was accepted with, once it has been.
type AcceptedKey = Arc<OnceLock<ApiKey>>;

/// The server's side of one websocket.
struct Connection {
    sink: SplitSink<WebSocket, Message>,
    protocol: WebSocketProtocols,
    settings: WebsocketSettings,
    pool: PgPool,
}

/// What the loop does after one step.
enum Step {
    Continue,
    Close(u16, String),
    /// The client is gone, or is answered with nothing more.
    Stop,
}

/// The tickers of one connection, started when it opens.
struct Timers {
    init_deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    ping: Interval,
    recheck: Interval,
}

impl Timers {
    fn new(settings: &WebsocketSettings) -> Timers {
        let every = |period: Duration| {
            let mut ticks = interval_at(Instant::now() + period, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticks
        };
        Timers {
            init_deadline: Box::pin(tokio::time::sleep(CONNECTION_INIT_TIMEOUT)),
            ping: every(settings.ping_interval),
            recheck: every(settings.key_recheck_interval),
        }
    }
}

impl Connection {
    /// Serves the connection until either side ends it. Dropping async-graphql's connection
    /// at the end drops its subscriptions' streams: nothing is left running once the client
    /// has gone.
    async fn run(
        mut self,
        mut incoming: SplitStream<WebSocket>,
        state: ServerState,
        authorization: Option<String>,
    ) {
        let refusal = Refusal::default();
        let accepted = AcceptedKey::default();
        // One message waits here at most while async-graphql is busy (authenticating, say),
        // so the client's messages are read no faster than they are handled.
        let (to_graphql, inbox) = mpsc::channel::<Bytes>(1);
        let graphql = {
            let (pool, refusal, accepted) = (self.pool.clone(), refusal.clone(), accepted.clone());
            GraphqlConnection::new(state.schema.clone(), receiver_stream(inbox), self.protocol)
                .on_connection_init(move |payload| {
                    initialise(pool, authorization, payload, refusal, accepted)
                })
        };
        let mut graphql = std::pin::pin!(graphql);
        let mut waiting: Option<Bytes> = None;
        let mut introduced = false;
        let mut heard = true;
        let mut timers = Timers::new(&self.settings);
        loop {
            let step = tokio::select! {
                permit = to_graphql.reserve(), if waiting.is_some() => {
                    forward(permit, waiting.take())
                }
                message = incoming.next(), if waiting.is_none() => {
                    heard = true;
                    self.receive(message, &mut waiting, &mut introduced).await
                }
                answer = graphql.next() => self.answer(answer, &refusal).await,
                () = &mut timers.init_deadline, if !introduced => Step::Close(
                    CLOSE_INIT_TIMEOUT,
                    "Connection initialisation timeout".to_owned(),
                ),
                _ = timers.ping.tick() => self.ping(std::mem::replace(&mut heard, false)).await,
                _ = timers.recheck.tick(), if accepted.get().is_some() => {
                    self.recheck(accepted.get()).await
                }
            };
            match step {
                Step::Continue => {}
                Step::Stop => return,
                Step::Close(code, reason) => {
                    self.close(code, reason).await;
                    return;
                }
            }
        }
    }

    /// One message from the client: forwarded to async-graphql (through `waiting`), answered
    /// here, or the end of the connection.
    async fn receive(
        &mut self,
        message: Option<Result<Message, axum::Error>>,
        waiting: &mut Option<Bytes>,
        introduced: &mut bool,
    ) -> Step {
        let bytes = match message {
            Some(Ok(Message::Text(text))) => Bytes::from(text),
            Some(Ok(Message::Binary(bytes))) => bytes,
            // Answered by the websocket layer itself (a ping), or proof of life only.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Step::Continue,
            Some(Ok(Message::Close(_))) => {
                // The websocket layer has queued the answering close frame; send it off.
                let _ = tokio::time::timeout(self.settings.ping_interval, self.sink.flush()).await;
                return Step::Stop;
            }
            None => return Step::Stop,
            Some(Err(error)) if is_too_big(&error) => {
                tracing::info!("websocket message over the size limit");
                return Step::Close(
                    CLOSE_MESSAGE_TOO_BIG,
                    format!("a message may have at most {MAX_BODY_BYTES} bytes"),
                );
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "websocket read failed");
                return Step::Stop;
            }
        };
        match screen(&bytes, self.protocol) {
            Screened::Forward { introduces } => {
                *introduced |= introduces;
                *waiting = Some(bytes);
                Step::Continue
            }
            Screened::Refuse(answer) => self.send(Message::Text(answer.into())).await,
        }
    }

    /// One message from async-graphql, sent on; a refused connection's close frame is
    /// rewritten to say why (async-graphql closes with 1002, protocol error, which clients
    /// read as a bug of theirs).
    async fn answer(&mut self, answer: Option<WsMessage>, refusal: &Refusal) -> Step {
        match answer {
            Some(WsMessage::Text(text)) => self.send(Message::Text(text.into())).await,
            Some(WsMessage::Close(code, reason)) => match refusal.get() {
                Some((code, reason)) => Step::Close(*code, reason.clone()),
                None => Step::Close(code, reason),
            },
            None => Step::Stop,
        }
    }

    /// Pings the client, unless it has been silent since the last ping: then it is gone.
    async fn ping(&mut self, heard_since_last_ping: bool) -> Step {
        if !heard_since_last_ping {
            tracing::info!("websocket client stopped answering pings");
            return Step::Close(CLOSE_TIMEOUT, "no answer to ping".to_owned());
        }
        self.send(Message::Ping(Bytes::new())).await
    }

    /// Looks the connection's key up again: a revoked key ends the connection. A database out
    /// of reach ends nothing (the subscriptions wait for it too); the next tick asks again.
    async fn recheck(&mut self, key: Option<&ApiKey>) -> Step {
        let Some(key) = key else {
            return Step::Continue;
        };
        match authenticate_key(&self.pool, key).await {
            Ok(_) => Step::Continue,
            Err(ApiError::Unauthenticated | ApiError::Forbidden(_)) => {
                tracing::info!("websocket key revoked; closing its connection");
                Step::Close(
                    CLOSE_KEY_REVOKED,
                    close_reason(&ApiError::Forbidden(
                        "this API key has been revoked; connect again with a current key"
                            .to_owned(),
                    )),
                )
            }
            Err(error) => {
                tracing::warn!(%error, "websocket key could not be checked again; retrying");
                Step::Continue
            }
        }
    }

    /// Sends one message; a client that does not take it within a ping interval is gone.
    async fn send(&mut self, message: Message) -> Step {
        match tokio::time::timeout(self.settings.ping_interval, self.sink.send(message)).await {
            Ok(Ok(())) => Step::Continue,
            Ok(Err(_)) => Step::Stop,
            Err(_) => {
                tracing::info!("websocket client stopped reading");
                Step::Stop
            }
        }
    }

    async fn close(&mut self, code: u16, reason: String) {
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = self.send(close).await;
    }
}

/// Hands a waiting message to async-graphql, once it has room for it.
fn forward(permit: Result<mpsc::Permit<'_, Bytes>, SendError<()>>, message: Option<Bytes>) -> Step {
    match (permit, message) {
        (Ok(permit), Some(message)) => {
            permit.send(message);
            Step::Continue
        }
        // async-graphql's side has ended; so has the connection.
        _ => Step::Stop,
    }
}

/// Whether a read failed because the message was over the size limit.
fn is_too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    error
        .source()
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|error| matches!(error, tungstenite::Error::Capacity(_)))
}

fn receiver_stream(inbox: mpsc::Receiver<Bytes>) -> impl Stream<Item = Bytes> + Send {
    futures::stream::unfold(inbox, |mut inbox| async move {
        inbox.recv().await.map(|message| (message, inbox))
    })
}

/// Authenticates `connection_init`; its principal and subscription places become the
/// connection's data, its key is kept for the rechecks.
async fn initialise(
    pool: PgPool,
    header: Option<String>,
    payload: serde_json::Value,
    refusal: Refusal,
    accepted: AcceptedKey,
) -> async_graphql::Result<Data> {
    match authenticate(&pool, header.as_deref(), &payload).await {
        Ok((principal, key)) => {
            let _ = accepted.set(key);
            let mut data = Data::default();
            data.insert(principal);
            data.insert(ConnectionSlots::new(principal.key_id));
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
) -> Result<(Principal, ApiKey), ApiError> {
    let from_payload = ["Authorization", "authorization"]
        .iter()
        .find_map(|name| payload.get(name));
    let authorization = match from_payload {
        Some(value) => value.as_str(),
        None => header,
    };
    let key = bearer_key(authorization)?;
    Ok((authenticate_key(pool, &key).await?, key))
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
