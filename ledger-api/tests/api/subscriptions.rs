//! Subscriptions through a real websocket (graphql-transport-ws at `/graphql/ws`) against the
//! real server, with the events they should deliver recorded through GraphQL over HTTP.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ledger_api::auth::{create_key, revoke_key, Role, KEY_CACHE_TTL};
use ledger_api::http::subscriptions::WebsocketSettings;
use ledger_api::http::MAX_BODY_BYTES;
use ledger_api::live::{MAX_SUBSCRIPTIONS_PER_CONNECTION, MAX_SUBSCRIPTIONS_PER_KEY};
use ledger_api::server::ServerConfig;
use ledger_core::ids::Environment;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use crate::helpers::*;

/// Longest wait for any one message; events normally arrive within milliseconds.
const WAIT: Duration = Duration::from_secs(15);

const EVENT_FIELDS: &str = "position streamId version type hash";

fn payment_events_query() -> String {
    format!(
        "subscription($id: UUID!, $from: Position) {{ \
            paymentEvents(paymentId: $id, fromVersion: $from) {{ {EVENT_FIELDS} }} }}"
    )
}

fn ledger_events_query() -> String {
    format!(
        "subscription($from: Position) {{ ledgerEvents(fromPosition: $from) {{ {EVENT_FIELDS} }} }}"
    )
}

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws client: messages of each subscription are kept apart.
struct Client {
    socket: Socket,
    pending: HashMap<String, VecDeque<Value>>,
}

async fn open(app: &TestApp, header_key: Option<&str>) -> Socket {
    let url = format!("{}/graphql/ws", app.address.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    if let Some(key) = header_key {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {key}").parse().unwrap());
    }
    let (socket, response) = connect_async(request).await.expect("websocket opens");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    socket
}

impl Client {
    /// Opens a connection and introduces it with `payload`, without waiting for the answer.
    async fn introduce(app: &TestApp, header_key: Option<&str>, payload: Value) -> Client {
        let mut client = Client {
            socket: open(app, header_key).await,
            pending: HashMap::new(),
        };
        client
            .send(json!({"type": "connection_init", "payload": payload}))
            .await;
        client
    }

    /// A connection authenticated with `key` in the `connection_init` payload.
    async fn connect(app: &TestApp, key: &str) -> Client {
        let mut client =
            Client::introduce(app, None, json!({"Authorization": format!("Bearer {key}")})).await;
        client.expect_ack().await;
        client
    }

    async fn expect_ack(&mut self) {
        let message = self.receive().await;
        assert_eq!(message["type"], "connection_ack", "{message}");
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("message sent");
    }

    /// The next protocol message, whatever subscription it is for.
    async fn receive(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a message arrives in time")
                .expect("the connection is open")
                .expect("the message is readable");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// The close frame's code and reason, pings aside; panics on anything else.
    async fn closed(&mut self) -> (u16, String) {
        // One deadline for all: a server that keeps pinging must still close in time.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("the connection closes in time");
            match message {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frame.code.into(), frame.reason.to_string())
                }
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe",
                         "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// The next message of subscription `id` (`next` or `complete`).
    async fn message_for(&mut self, id: &str) -> Value {
        loop {
            if let Some(message) = self.pending.get_mut(id).and_then(VecDeque::pop_front) {
                return message;
            }
            let message = self.receive().await;
            let for_id = message["id"]
                .as_str()
                .expect("message has an id")
                .to_owned();
            self.pending.entry(for_id).or_default().push_back(message);
        }
    }

    /// The next event of subscription `id`, which must not have failed or completed.
    async fn event(&mut self, id: &str, field: &str) -> Value {
        let message = self.message_for(id).await;
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        message["payload"]["data"][field].clone()
    }

    /// The error code subscription `id` failed with; it must then complete.
    async fn failure(&mut self, id: &str) -> String {
        let message = self.message_for(id).await;
        assert_eq!(message["type"], "next", "{message}");
        let code = message["payload"]["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {message}"))
            .to_owned();
        let complete = self.message_for(id).await;
        assert_eq!(complete["type"], "complete", "{complete}");
        code
    }
}

/// Asserts that `event` is the recorded event `expected` (from a mutation's `events`).
fn assert_same_event(event: &Value, expected: &Value) {
    for field in ["position", "version", "type", "hash"] {
        assert_eq!(
            event[field], expected[field],
            "{field}: {event} vs {expected}"
        );
    }
}

async fn initiate_events(app: &TestApp, key: &str) -> (String, Vec<Value>) {
    let result = payment_mutation(
        app,
        "initiatePayment",
        json!({"idempotencyKey": key, "orderId": "order-1", "merchantId": "merchant-1",
               "amount": "100.00", "currency": "USD", "captureMode": "MANUAL"}),
    )
    .await;
    let id = result["payment"]["id"].as_str().unwrap().to_owned();
    (id, result["events"].as_array().unwrap().clone())
}

/// Polls `condition` until it holds, for at most [`WAIT`].
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn payment_events_bring_the_history_then_each_new_event_in_order() {
    let app = spawn_app().await;
    let (id, mut recorded) = initiate_events(&app, "sub-1").await;
    recorded.extend(
        authorize(&app, &id).await["events"]
            .as_array()
            .unwrap()
            .clone(),
    );

    let support = app.key(Role::Support, Environment::Test).to_owned();
    let mut client = Client::connect(&app, &support).await;
    client
        .subscribe("all", &payment_events_query(), json!({"id": id}))
        .await;
    for expected in &recorded {
        let event = client.event("all", "paymentEvents").await;
        assert_same_event(&event, expected);
        assert_eq!(event["streamId"], id.as_str());
    }
    assert_eq!(recorded[0]["version"], "1");

    // Another payment's events are recorded in between and must not show up.
    initiate_events(&app, "sub-other").await;
    let captured = payment_mutation(
        &app,
        "capturePayment",
        json!({"idempotencyKey": "sub-cap", "paymentId": id, "amount": "60", "final": false}),
    )
    .await;
    let captured = captured["events"].as_array().unwrap().clone();
    for expected in &captured {
        assert_same_event(&client.event("all", "paymentEvents").await, expected);
    }

    // A second subscription on the same connection, from a version: history from there on.
    client
        .subscribe(
            "from-3",
            &payment_events_query(),
            json!({"id": id, "from": "3"}),
        )
        .await;
    assert_same_event(&client.event("from-3", "paymentEvents").await, &captured[0]);

    let refunded = payment_mutation(
        &app,
        "refundPayment",
        json!({"idempotencyKey": "sub-ref", "paymentId": id, "amount": "10.00", "refundId": "re_1"}),
    )
    .await;
    let refunded = refunded["events"].as_array().unwrap().clone();
    for expected in &refunded {
        assert_same_event(&client.event("all", "paymentEvents").await, expected);
        assert_same_event(&client.event("from-3", "paymentEvents").await, expected);
    }
    let positions: Vec<u64> = recorded
        .iter()
        .chain(&captured)
        .chain(&refunded)
        .map(|event| event["position"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
}

#[tokio::test]
async fn ledger_events_follow_the_global_log_of_the_key_environment_from_a_position() {
    let app = spawn_app().await;
    let live_service = app.key(Role::Service, Environment::Live).to_owned();
    let initiate_live = async |key: &str| {
        app.graphql_as(
            Some(&live_service),
            &mutation("initiatePayment", "InitiatePaymentInput"),
            json!({"input": {"idempotencyKey": key, "orderId": "o", "merchantId": "m",
                   "amount": "5.00", "currency": "EUR"}}),
        )
        .await
        .data();
    };
    let (first_id, first_events) = initiate_events(&app, "g-1").await;
    let authorized = authorize(&app, &first_id).await;
    initiate_live("g-live").await;
    let (_, second_events) = initiate_events(&app, "g-2").await;

    // From the authorization on: the first payment's initiation is before it, the live
    // payment is another environment's.
    let from = authorized["events"][0]["position"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first_events[0]["position"], from.as_str());
    let mut expected = authorized["events"].as_array().unwrap().clone();
    expected.extend(second_events);
    for role in [Role::Auditor, Role::Admin] {
        let key = app.key(role, Environment::Test).to_owned();
        let mut client = Client::connect(&app, &key).await;
        client
            .subscribe("log", &ledger_events_query(), json!({"from": from}))
            .await;
        for recorded in &expected {
            assert_same_event(&client.event("log", "ledgerEvents").await, recorded);
        }
        // Live: the live environment's event is passed over, the test one arrives.
        initiate_live(&format!("g-live-{role}")).await;
        let (_, events) = initiate_events(&app, &format!("g-new-{role}")).await;
        for recorded in &events {
            assert_same_event(&client.event("log", "ledgerEvents").await, recorded);
        }
        expected.extend(events);
    }
    let positions: Vec<u64> = expected
        .iter()
        .map(|event| event["position"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
}

#[tokio::test]
async fn only_finance_auditors_and_admins_may_follow_the_global_log() {
    let app = spawn_app().await;
    for role in [Role::Service, Role::Support] {
        let key = app.key(role, Environment::Test).to_owned();
        let mut client = Client::connect(&app, &key).await;
        client
            .subscribe("log", &ledger_events_query(), json!({}))
            .await;
        assert_eq!(client.failure("log").await, "FORBIDDEN", "{role}");
    }
    // A payment's history is for support and up, not for the service role.
    let (id, _) = initiate_events(&app, "f-1").await;
    let service = app.key(Role::Service, Environment::Test).to_owned();
    let mut client = Client::connect(&app, &service).await;
    client
        .subscribe("payment", &payment_events_query(), json!({"id": id}))
        .await;
    assert_eq!(client.failure("payment").await, "FORBIDDEN");
}

/// The query's own faults (syntax, an unknown field, a missing variable) carry a code over the
/// websocket too, as every error does on `POST /graphql`.
#[tokio::test]
async fn errors_in_the_query_itself_carry_a_code() {
    let app = spawn_app().await;
    let key = app.key(Role::Auditor, Environment::Test).to_owned();
    let mut client = Client::connect(&app, &key).await;
    for (id, query) in [
        ("syntax", "subscription { ledgerEvents("),
        ("unknown", "subscription { noSuchField { position } }"),
        (
            "variable",
            "subscription($id: UUID!) { paymentEvents(paymentId: $id) { position } }",
        ),
    ] {
        client.subscribe(id, query, json!({})).await;
        assert_eq!(client.failure(id).await, "VALIDATION_ERROR", "{query}");
    }
}

#[tokio::test]
async fn a_test_key_cannot_subscribe_to_a_live_payment() {
    let app = spawn_app().await;
    let live_service = app.key(Role::Service, Environment::Live).to_owned();
    let answer = app
        .graphql_as(
            Some(&live_service),
            &mutation("initiatePayment", "InitiatePaymentInput"),
            json!({"input": {"idempotencyKey": "iso-1", "orderId": "o", "merchantId": "m",
                   "amount": "5.00", "currency": "EUR"}}),
        )
        .await;
    let live_id = answer.data()["initiatePayment"]["payment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for role in [Role::Support, Role::Auditor, Role::Admin] {
        let key = app.key(role, Environment::Test).to_owned();
        let mut client = Client::connect(&app, &key).await;
        client
            .subscribe("live", &payment_events_query(), json!({"id": live_id}))
            .await;
        assert_eq!(client.failure("live").await, "NOT_FOUND", "{role}");
        // Indistinguishable from a payment that does not exist at all.
        client
            .subscribe(
                "none",
                &payment_events_query(),
                json!({"id": uuid::Uuid::new_v4()}),
            )
            .await;
        assert_eq!(client.failure("none").await, "NOT_FOUND", "{role}");
    }
    let live_support = app.key(Role::Support, Environment::Live).to_owned();
    let mut client = Client::connect(&app, &live_support).await;
    client
        .subscribe("live", &payment_events_query(), json!({"id": live_id}))
        .await;
    let event = client.event("live", "paymentEvents").await;
    assert_eq!(event["type"], "PaymentInitiated");
}

#[tokio::test]
async fn a_bad_key_is_refused_at_connection_init() {
    let app = spawn_app().await;
    let unknown = "lk_test_0123456789abcdef0123456789abcdef0123456789abcdef";
    let support = app.key(Role::Support, Environment::Test).to_owned();
    for payload in [
        json!({}),
        json!(null),
        json!({"Authorization": "Bearer lk_test_nothex"}),
        json!({"authorization": format!("Bearer {unknown}")}),
        json!({"Authorization": support}),
        json!({"Authorization": 42}),
    ] {
        let mut client = Client::introduce(&app, None, payload.clone()).await;
        let (code, reason) = client.closed().await;
        assert_eq!(code, 4401, "{payload}");
        assert!(reason.starts_with("UNAUTHENTICATED"), "{reason}");
    }
    // A bad key in the payload is refused even when the header carries a good one.
    let mut client = Client::introduce(
        &app,
        Some(&support),
        json!({"Authorization": format!("Bearer {unknown}")}),
    )
    .await;
    assert_eq!(client.closed().await.0, 4401);
}

#[tokio::test]
async fn the_key_may_come_in_lower_case_or_in_the_upgrade_header() {
    let app = spawn_app().await;
    let (id, recorded) = initiate_events(&app, "k-1").await;
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let mut lower = Client::introduce(
        &app,
        None,
        json!({"authorization": format!("Bearer {support}")}),
    )
    .await;
    lower.expect_ack().await;
    let mut header = Client::introduce(&app, Some(&support), json!({})).await;
    header.expect_ack().await;
    for client in [&mut lower, &mut header] {
        client
            .subscribe("p", &payment_events_query(), json!({"id": id}))
            .await;
        assert_same_event(&client.event("p", "paymentEvents").await, &recorded[0]);
    }
}

#[tokio::test]
async fn a_connection_that_never_introduces_itself_is_closed() {
    let app = spawn_app().await;
    let mut client = Client {
        socket: open(&app, None).await,
        pending: HashMap::new(),
    };
    assert_eq!(client.closed().await.0, 4408);
}

#[tokio::test]
async fn subscriptions_are_bounded_per_connection_and_freed_when_the_client_goes() {
    let app = spawn_app().await;
    let live = app.state.app.live.clone();
    let auditor = app.key(Role::Auditor, Environment::Test).to_owned();
    let mut client = Client::connect(&app, &auditor).await;
    let ids: Vec<String> = (0..=MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .map(|index| format!("s{index}"))
        .collect();
    for id in &ids {
        client
            .subscribe(id, &ledger_events_query(), json!({}))
            .await;
    }
    // Which one is refused depends on the order the server starts them in.
    let message = client.receive().await;
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "VALIDATION_ERROR",
        "{message}"
    );
    let refused = message["id"].as_str().unwrap().to_owned();
    assert_eq!(client.message_for(&refused).await["type"], "complete");
    eventually("every other subscription runs", async || {
        live.subscriptions() == MAX_SUBSCRIPTIONS_PER_CONNECTION
    })
    .await;
    eventually("the follower runs", async || live.is_following().await).await;

    // Each running subscription still gets events.
    let (_, recorded) = initiate_events(&app, "b-1").await;
    for id in ids.iter().filter(|id| **id != refused) {
        assert_same_event(&client.event(id, "ledgerEvents").await, &recorded[0]);
    }

    let completed = ids.iter().find(|id| **id != refused).unwrap();
    client
        .send(json!({"id": completed, "type": "complete"}))
        .await;
    eventually("a completed subscription is freed", async || {
        live.subscriptions() == MAX_SUBSCRIPTIONS_PER_CONNECTION - 1
    })
    .await;

    // Gone without a close frame: everything it held is freed, the follower stops.
    drop(client);
    eventually("a dropped connection frees its subscriptions", async || {
        live.subscriptions() == 0
    })
    .await;
    eventually("the follower stops", async || !live.is_following().await).await;
}

/// A query or a mutation sent on the socket is refused with the protocol's `error` message
/// and a code, and is not run: queries and mutations go through `POST /graphql`, with its body
/// limit and timeout. The connection stays usable for subscriptions.
#[tokio::test]
async fn the_socket_serves_subscriptions_only() {
    let app = spawn_app().await;
    let admin = app.key(Role::Admin, Environment::Test).to_owned();
    let mut client = Client::connect(&app, &admin).await;
    let head = app.log_head().await;
    let initiate = mutation("initiatePayment", "InitiatePaymentInput");
    let input = json!({"input": {"idempotencyKey": "ws-mutation", "orderId": "o",
                       "merchantId": "m", "amount": "5.00", "currency": "USD"}});
    client.subscribe("mutation", &initiate, input).await;
    client
        .subscribe(
            "query",
            "query { payments(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await;
    client
        .subscribe("anonymous", "{ projectionLag }", json!({}))
        .await;
    for id in ["mutation", "query", "anonymous"] {
        let message = client.message_for(id).await;
        assert_eq!(message["type"], "error", "{message}");
        assert_eq!(
            message["payload"][0]["extensions"]["code"], "VALIDATION_ERROR",
            "{message}"
        );
        assert!(
            message["payload"][0]["message"]
                .as_str()
                .unwrap()
                .contains("POST /graphql"),
            "{message}"
        );
    }
    assert_eq!(app.log_head().await, head, "the mutation was recorded");

    let (_, recorded) = initiate_events(&app, "ws-after").await;
    client
        .subscribe("log", &ledger_events_query(), json!({}))
        .await;
    assert_same_event(&client.event("log", "ledgerEvents").await, &recorded[0]);
}

/// A key revoked while its connection is open ends that connection with 4403 within the key
/// cache's lifetime, as its HTTP requests are refused within it; other keys' connections go on.
#[tokio::test]
async fn a_revoked_key_ends_its_connection_with_4403() {
    let app = spawn_app().await;
    let (key, record) = create_key(app.database.pool(), Role::Auditor, Environment::Test, "ws")
        .await
        .unwrap();
    let mut revoked = Client::connect(&app, key.reveal()).await;
    revoked
        .subscribe("log", &ledger_events_query(), json!({}))
        .await;
    let other_key = app.key(Role::Auditor, Environment::Test).to_owned();
    let mut other = Client::connect(&app, &other_key).await;
    other
        .subscribe("log", &ledger_events_query(), json!({}))
        .await;
    let (_, first) = initiate_events(&app, "rv-1").await;
    for expected in &first {
        assert_same_event(&revoked.event("log", "ledgerEvents").await, expected);
    }

    revoke_key(app.database.pool(), record.id).await.unwrap();
    let closed = tokio::time::timeout(KEY_CACHE_TTL + Duration::from_secs(2), revoked.closed())
        .await
        .expect("the revoked key's connection closes within the key cache's lifetime");
    assert_eq!(closed.0, 4403, "{closed:?}");
    assert!(closed.1.starts_with("FORBIDDEN"), "{closed:?}");

    let (_, second) = initiate_events(&app, "rv-2").await;
    for expected in first.iter().chain(&second) {
        assert_same_event(&other.event("log", "ledgerEvents").await, expected);
    }
}

/// A subscribe message padded to `bytes` in all.
fn padded_subscribe(id: &str, bytes: usize) -> String {
    let message = |padding: &str| {
        json!({"id": id, "type": "subscribe", "payload": {
            "query": format!("{} #{padding}", ledger_events_query())}})
        .to_string()
    };
    let padding = "x".repeat(bytes - message("").len());
    let padded = message(&padding);
    assert_eq!(padded.len(), bytes);
    padded
}

/// A message is bounded as an HTTP body is: one at the limit is served, a larger one closes
/// the connection with 1009 (message too big) and is not served.
#[tokio::test]
async fn a_message_larger_than_an_http_body_closes_the_connection() {
    let app = spawn_app().await;
    let (_, recorded) = initiate_events(&app, "big-1").await;
    let auditor = app.key(Role::Auditor, Environment::Test).to_owned();
    let mut client = Client::connect(&app, &auditor).await;
    client
        .socket
        .send(Message::text(padded_subscribe("at-limit", MAX_BODY_BYTES)))
        .await
        .unwrap();
    for expected in &recorded {
        assert_same_event(&client.event("at-limit", "ledgerEvents").await, expected);
    }

    client
        .socket
        .send(Message::text(padded_subscribe(
            "over-limit",
            MAX_BODY_BYTES + 1,
        )))
        .await
        .unwrap();
    let (code, _) = client.closed().await;
    assert_eq!(code, 1009);
}

/// Drains the socket for `duration`: pings are answered (by reading), anything else is a
/// failure, and so is the connection closing.
async fn stay_responsive(client: &mut Client, duration: Duration) -> usize {
    let mut pings = 0;
    let until = tokio::time::Instant::now() + duration;
    while let Ok(message) = tokio::time::timeout_at(until, client.socket.next()).await {
        match message {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings only, got {other:?}"),
        }
    }
    pings
}

/// Open connections are pinged; one that answers stays open however long it is idle, one
/// that stops answering is closed (3008) and its subscriptions are freed.
#[tokio::test]
async fn a_client_that_stops_answering_pings_is_dropped() {
    let interval = Duration::from_millis(300);
    let app = spawn_app_with(ServerConfig {
        websocket: WebsocketSettings {
            ping_interval: interval,
            ..WebsocketSettings::default()
        },
        ..test_config()
    })
    .await;
    let live = app.state.app.live.clone();
    let auditor = app.key(Role::Auditor, Environment::Test).to_owned();
    let mut silent = Client::connect(&app, &auditor).await;
    silent
        .subscribe("log", &ledger_events_query(), json!({}))
        .await;
    eventually("the silent client's subscription runs", async || {
        live.subscriptions() == 1
    })
    .await;
    let mut answering = Client::connect(&app, &auditor).await;

    // The silent client reads nothing meanwhile, so it answers no ping.
    let pings = stay_responsive(&mut answering, interval * 8).await;
    assert!(pings >= 4, "only {pings} pings");
    let (code, _) = silent.closed().await;
    assert_eq!(code, 3008);
    eventually("the silent client's subscription is freed", async || {
        live.subscriptions() == 0
    })
    .await;

    let (_, recorded) = initiate_events(&app, "ping-1").await;
    answering
        .subscribe("log", &ledger_events_query(), json!({}))
        .await;
    assert_same_event(&answering.event("log", "ledgerEvents").await, &recorded[0]);
}

/// One key holds at most its share of the process's subscriptions, over all its
/// connections; past it a subscription fails with a code, and other keys still subscribe.
#[tokio::test]
async fn subscriptions_are_bounded_per_key() {
    let app = spawn_app().await;
    let live = app.state.app.live.clone();
    let (_, recorded) = initiate_events(&app, "key-1").await;
    let auditor = app.key(Role::Auditor, Environment::Test).to_owned();
    let mut full = Vec::new();
    for connection in 0..MAX_SUBSCRIPTIONS_PER_KEY.div_ceil(MAX_SUBSCRIPTIONS_PER_CONNECTION) {
        let mut client = Client::connect(&app, &auditor).await;
        let first = connection * MAX_SUBSCRIPTIONS_PER_CONNECTION;
        let last = MAX_SUBSCRIPTIONS_PER_KEY.min(first + MAX_SUBSCRIPTIONS_PER_CONNECTION);
        for index in first..last {
            let id = format!("s{index}");
            client
                .subscribe(&id, &ledger_events_query(), json!({}))
                .await;
            assert_same_event(&client.event(&id, "ledgerEvents").await, &recorded[0]);
        }
        full.push(client);
    }
    assert_eq!(live.subscriptions(), MAX_SUBSCRIPTIONS_PER_KEY);

    let mut one_more = Client::connect(&app, &auditor).await;
    one_more
        .subscribe("over", &ledger_events_query(), json!({}))
        .await;
    assert_eq!(one_more.failure("over").await, "VALIDATION_ERROR");

    let admin = app.key(Role::Admin, Environment::Test).to_owned();
    let mut other_key = Client::connect(&app, &admin).await;
    other_key
        .subscribe("log", &ledger_events_query(), json!({}))
        .await;
    assert_same_event(&other_key.event("log", "ledgerEvents").await, &recorded[0]);

    // A place the key gives back may be taken again.
    full.pop();
    eventually("a closed connection's places are given back", async || {
        live.subscriptions() < MAX_SUBSCRIPTIONS_PER_KEY
    })
    .await;
    one_more
        .subscribe("again", &ledger_events_query(), json!({}))
        .await;
    assert_same_event(&one_more.event("again", "ledgerEvents").await, &recorded[0]);
}

/// Appends `count` events in one go, on a stream of their own.
pub(crate) async fn append_events(store: &ledger_store::EventStore, count: usize) {
    use ledger_store::{
        AppendRequest, EventMetadata, ExpectedVersion, NewEvent, StreamAppend, StreamType,
    };
    let events = (0..count)
        .map(|index| NewEvent {
            event_id: uuid::Uuid::new_v4(),
            event_type: "Tick".to_owned(),
            schema_version: 1,
            occurred_at: chrono::Utc::now(),
            payload: json!({"index": index}),
            metadata: EventMetadata {
                environment: ledger_store::Environment::Test,
                actor_id: "test".to_owned(),
                actor_role: "test".to_owned(),
                correlation_id: uuid::Uuid::new_v4(),
                causation_id: None,
                idempotency_key: None,
            },
        })
        .collect();
    store
        .append(AppendRequest {
            streams: vec![StreamAppend {
                stream_id: uuid::Uuid::new_v4(),
                stream_type: StreamType::Payment,
                expected_version: ExpectedVersion::NoStream,
                events,
                kept_state: None,
            }],
            idempotency: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_subscriber_far_behind_the_live_channel_misses_nothing_and_repeats_nothing() {
    // The store alone: these events are no domain's, so no projection may read them.
    let database = ledger_store::testing::TestDatabase::new().await;
    let store = database.store();
    let live = ledger_api::live::LiveLog::new(store.clone());
    // More than twice what the channel holds (1,024).
    let batches = 5;
    let total: u64 = 10 + batches * 500;

    // One subscriber is read as events commit; the other takes its first event, so its
    // place in the channel exists, and then is left behind by far more than the channel holds.
    let keeping_up = live.follow(1, live.reserve(None).unwrap());
    let keeping_up = tokio::spawn(async move {
        keeping_up
            .take(total as usize)
            .map(|event| event.unwrap().position)
            .collect::<Vec<u64>>()
            .await
    });
    append_events(&store, 10).await;
    let mut behind = Box::pin(live.follow(1, live.reserve(None).unwrap()));
    assert_eq!(behind.next().await.unwrap().unwrap().position, 1);
    for _ in 0..batches {
        append_events(&store, 500).await;
    }

    let expected: Vec<u64> = (1..=total).collect();
    let kept_up = tokio::time::timeout(WAIT, keeping_up)
        .await
        .expect("every event arrives in time")
        .unwrap();
    assert_eq!(kept_up, expected);
    let mut caught_up = vec![1];
    while caught_up.len() < total as usize {
        let event = tokio::time::timeout(WAIT, behind.next())
            .await
            .expect("every event arrives in time")
            .unwrap()
            .unwrap();
        caught_up.push(event.position);
    }
    assert_eq!(caught_up, expected);
    // Caught up from the store, it now meets its receiver, lagged far behind: the next event
    // must come once and next, and none of the old ones again.
    append_events(&store, 1).await;
    let next = tokio::time::timeout(WAIT, behind.next()).await.unwrap();
    assert_eq!(next.unwrap().unwrap().position, total + 1);
    let nothing = tokio::time::timeout(Duration::from_millis(500), behind.next()).await;
    assert!(nothing.is_err(), "an event came twice: {nothing:?}");
    assert_eq!(live.subscriptions(), 1);
    drop(behind);
    assert_eq!(live.subscriptions(), 0);
}
