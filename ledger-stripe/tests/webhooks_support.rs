//! Shared helpers of the webhook endpoint tests: a server on a real port over a fresh
//! database, a small HTTP/1.1 client, and bodies signed the way Stripe signs them. Included by
//! each `webhooks_*` test as a module; compiled alone it holds no tests.
#![allow(dead_code)]

use std::net::SocketAddr;

use chrono::Utc;
use ledger_core::ids::{Environment, MerchantId};
use ledger_store::commands::CommandHandler;
use ledger_store::testing::TestDatabase;
use ledger_store::EventStore;
use ledger_stripe::gateway::{sign, WebhookSecret, WebhookSecrets};
use ledger_stripe::webhooks::{
    recent_deliveries, stripe_router, DeliveryFilter, WebhookConfig, WebhookDelivery, WebhookState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TEST_SECRET: &str = "whsec_plRW2Kq9yT0vF6hJ3mXc8bNd";
pub const LIVE_SECRET: &str = "whsec_Lv7sQ2mZp9Xc4RtY8uWk3JhN";

/// Small enough that a test can exceed it cheaply.
pub const TEST_MAX_BODY_BYTES: usize = 64 * 1024;

pub struct TestApp {
    pub database: TestDatabase,
    pub store: EventStore,
    pub commands: CommandHandler,
    pub state: WebhookState,
    pub address: SocketAddr,
}

/// A webhook server for one test, with the given `LEDGER_STRIPE_WEBHOOK_SECRETS`.
pub async fn spawn_app_with_secrets(secrets: &str) -> TestApp {
    let mut config = WebhookConfig::new(
        WebhookSecrets::parse(secrets).unwrap(),
        MerchantId::parse("merchant_default").unwrap(),
    );
    config.max_body_bytes = TEST_MAX_BODY_BYTES;
    spawn_app_with_config(config).await
}

/// A webhook server for one test, with the given configuration.
pub async fn spawn_app_with_config(config: WebhookConfig) -> TestApp {
    let database = TestDatabase::new().await;
    let store = database.store();
    let commands = CommandHandler::new(store.clone());
    let state = WebhookState::new(commands.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router: axum::Router = stripe_router(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    TestApp {
        database,
        store,
        commands,
        state,
        address,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with_secrets(&format!("test:{TEST_SECRET},live:{LIVE_SECRET}")).await
}

/// An HTTP answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Answer {
    pub fn outcome(&self) -> &str {
        self.body["outcome"].as_str().unwrap_or("")
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// POSTs to the webhook path over a fresh connection (HTTP/1.1, `Connection: close`). With
/// `expect_continue`, the body is sent only after the server's `100 Continue`, as curl does
/// for large bodies: a server that answers first gets no body at all.
pub async fn post_raw(
    address: SocketAddr,
    headers: &[(&str, &str)],
    body: &[u8],
    expect_continue: bool,
) -> Answer {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut head = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if expect_continue {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    if expect_continue {
        let mut buffer = [0u8; 4096];
        let read = stream.read(&mut buffer).await.unwrap();
        received.extend_from_slice(&buffer[..read]);
        if received.starts_with(b"HTTP/1.1 100") {
            received.clear();
            stream.write_all(body).await.unwrap();
        }
    } else {
        stream.write_all(body).await.unwrap();
    }
    stream.read_to_end(&mut received).await.unwrap();
    parse_answer(&received)
}

fn parse_answer(received: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(received);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = if body.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_owned()))
    };
    Answer { status, body }
}

pub fn secret(environment: Environment, text: &str) -> WebhookSecret {
    WebhookSecret::new(environment, text).unwrap()
}

/// A `Stripe-Signature` header for the body, made now with the test-mode secret.
pub fn signature_now(body: &[u8]) -> String {
    sign(
        &secret(Environment::Test, TEST_SECRET),
        Utc::now().timestamp(),
        body,
    )
}

/// Delivers a body signed now with the test-mode secret.
pub async fn deliver(app: &TestApp, body: &[u8]) -> Answer {
    let header = signature_now(body);
    post_raw(app.address, &[("Stripe-Signature", &header)], body, false).await
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stripe")
        .join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A fixture with one JSON value replaced (by JSON pointer).
pub fn with_value(body: &[u8], pointer: &str, value: serde_json::Value) -> Vec<u8> {
    let mut event: serde_json::Value = serde_json::from_slice(body).unwrap();
    *event.pointer_mut(pointer).unwrap() = value;
    serde_json::to_vec(&event).unwrap()
}

/// A fixture with every occurrence of some strings replaced (ids, to make a new payment).
pub fn with_replaced(body: &[u8], replacements: &[(&str, &str)]) -> Vec<u8> {
    let mut text = String::from_utf8(body.to_vec()).unwrap();
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    text.into_bytes()
}

pub async fn log_head(app: &TestApp) -> u64 {
    app.store.head().await.unwrap().last_position
}

pub async fn deliveries(app: &TestApp) -> Vec<WebhookDelivery> {
    recent_deliveries(
        app.database.pool(),
        Environment::Test,
        &DeliveryFilter::default(),
        200,
    )
    .await
    .unwrap()
}

pub async fn delivery(app: &TestApp, stripe_event_id: &str) -> WebhookDelivery {
    let filter = DeliveryFilter {
        stripe_event_id: Some(stripe_event_id.to_owned()),
        payment_id: None,
    };
    let mut rows = recent_deliveries(app.database.pool(), Environment::Test, &filter, 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one delivery row for {stripe_event_id}");
    rows.remove(0)
}

pub async fn parked_count(app: &TestApp) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM webhook_parked")
        .fetch_one(app.database.pool())
        .await
        .unwrap()
}

pub fn event_id(body: &[u8]) -> String {
    let event: serde_json::Value = serde_json::from_slice(body).unwrap();
    event["id"].as_str().unwrap().to_owned()
}
