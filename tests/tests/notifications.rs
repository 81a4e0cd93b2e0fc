//! `ledger serve` killed with SIGKILL while it delivers notifications, then started again:
//! every notification arrives, duplicates only with the same id (and the same body), and one
//! payment's notifications first arrive in the order they happened.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use chrono::Utc;
use ledger_core::ids::{Environment, MerchantId, OrderId, PaymentId};
use ledger_core::payment::{CaptureMode, InitiatePayment, PaymentCommand, RecordAuthorization};
use ledger_core::{Currency, PositiveMoney};
use ledger_store::commands::{CommandContext, CommandHandler};
use ledger_store::testing::TestDatabase;
use ledger_tests::ledger_binary;
use ledger_tests::server::{create_key, free_port};
use serde_json::{json, Value};
use uuid::Uuid;

const PAYMENTS: usize = 40;

/// `ledger serve` on `port`, killed with SIGKILL when dropped (or by `kill`).
struct Serve(Child);

impl Serve {
    fn start(database_url: &str, port: u16) -> Serve {
        let child = Command::new(ledger_binary())
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env_remove("LEDGER_SERVER_DATABASE_URL")
            .env_remove("LEDGER_STRIPE_WEBHOOK_SECRETS")
            .env("LEDGER_NOTIFY_RETRY_BASE_MS", "100")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "ledger serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve(child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn context() -> CommandContext {
    CommandContext {
        environment: Environment::Test,
        actor_id: "test".to_owned(),
        actor_role: "service".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: None,
    }
}

async fn captured_payment(handler: CommandHandler, number: usize) {
    let payment_id = PaymentId::from_uuid(Uuid::new_v4());
    let initiate = PaymentCommand::Initiate(InitiatePayment {
        merchant_id: MerchantId::parse("merchant-kill").unwrap(),
        order_id: OrderId::parse(format!("order-{number}")).unwrap(),
        environment: Environment::Test,
        amount: PositiveMoney::parse("30.00", Currency::EUR).unwrap(),
        capture_mode: CaptureMode::Automatic,
        payment_method: None,
    });
    let approve = PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
        authorized_amount: None,
        authorization_code: None,
        gateway_reference: None,
        expires_at: None,
    });
    for command in [initiate, approve] {
        handler
            .handle_payment(payment_id, &command, &context())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_mid_delivery_loses_nothing_and_repeats_only_with_the_same_id() {
    let database = TestDatabase::new().await;
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/hook",
        post({
            let received = received.clone();
            move |body: String| async move {
                // Slow enough that the kill finds deliveries in flight.
                tokio::time::sleep(Duration::from_millis(20)).await;
                received.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = free_port();
    let mut server = Some(Serve::start(database.url(), port));
    let key = create_key(database.url(), "admin");
    let created: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .bearer_auth(&key)
        .json(&json!({
            "query": "mutation($input: CreateWebhookEndpointInput!) {
                createWebhookEndpoint(input: $input) { endpoint { id } secret } }",
            "variables": {"input": {"idempotencyKey": "kill", "url": hook, "eventTypes": ["*"]}}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        created["data"]["createWebhookEndpoint"]["secret"].is_string(),
        "{created}"
    );
    let first_position = database.store().head().await.unwrap().last_position + 1;

    let handler = CommandHandler::new(database.store());
    let mut tasks = tokio::task::JoinSet::new();
    for number in 0..PAYMENTS {
        tasks.spawn(captured_payment(handler.clone(), number));
    }
    // Kill the server once some notifications arrived, while the rest are being delivered.
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().unwrap().len() < 20 {
        assert!(Instant::now() < deadline, "no notification arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(server.take());
    let at_kill = received.lock().unwrap().len();
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let last_position = database.store().head().await.unwrap().last_position;
    assert!(
        at_kill < PAYMENTS * 3,
        "everything arrived before the kill; the test proves nothing"
    );

    let _restarted = Serve::start(database.url(), port);
    // Deliveries leased by the killed process are taken again once their lease ends (20 s).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let positions: BTreeSet<u64> = received
            .lock()
            .unwrap()
            .iter()
            .map(|body| {
                serde_json::from_str::<Value>(body).unwrap()["position"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        if positions.len() == PAYMENTS * 3 {
            // Every committed event after the endpoint's creation, none skipped.
            assert_eq!(positions, (first_position..=last_position).collect());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {} notifications arrived",
            positions.len(),
            PAYMENTS * 3
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let received = received.lock().unwrap().clone();
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    let mut first_seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for body in &received {
        let parsed: Value = serde_json::from_str(body).unwrap();
        let id = parsed["id"].as_str().unwrap().to_owned();
        match by_id.get(&id) {
            // A duplicate is the same notification: same id, same bytes.
            Some(earlier) => assert_eq!(earlier, body),
            None => {
                by_id.insert(id, body.clone());
                first_seen
                    .entry(parsed["data"]["payment"]["id"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(parsed["position"].as_u64().unwrap());
            }
        }
    }
    assert_eq!(by_id.len(), PAYMENTS * 3);
    assert_eq!(first_seen.len(), PAYMENTS);
    for (payment, positions) in first_seen {
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "payment {payment} arrived out of order: {positions:?}"
        );
    }
}

/// Runs `ledger endpoints …` against the database and returns what it printed.
fn endpoints_command(database_url: &str, arguments: &[&str]) -> String {
    let output = Command::new(ledger_binary())
        .arg("endpoints")
        .args(arguments)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ledger endpoints {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The value of a Prometheus series line that starts with `series` (its name and labels).
fn series_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// An operator registers an endpoint from the command line, sees its deliveries there and in
/// `/metrics` (attempts by outcome, latency, backlog), and disables it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_manages_endpoints_and_metrics_report_their_deliveries() {
    let database = TestDatabase::new().await;
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/hook",
        post({
            let received = received.clone();
            move |headers: axum::http::HeaderMap, body: String| async move {
                let signature = headers["ledger-signature"].to_str().unwrap().to_owned();
                received.lock().unwrap().push((signature, body));
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let created = endpoints_command(
        database.url(),
        &[
            "create",
            "--env",
            "test",
            "--url",
            &hook,
            "--event-type",
            "payment.captured",
            "--event-type",
            "payment.authorized",
            "--description",
            "orders service",
        ],
    );
    let endpoint_id = created.split_whitespace().next().unwrap().to_owned();
    let secret = created.lines().last().unwrap().trim().to_owned();
    assert!(secret.starts_with("lwhsec_"), "{created}");
    let listed = endpoints_command(database.url(), &["list", "--env", "test"]);
    assert!(
        listed.contains(&endpoint_id) && listed.contains("enabled") && listed.contains(&hook),
        "{listed}"
    );
    assert!(
        !endpoints_command(database.url(), &["list", "--env", "live"]).contains(&endpoint_id),
        "an endpoint belongs to one environment"
    );

    let port = free_port();
    let _server = Serve::start(database.url(), port);
    let handler = CommandHandler::new(database.store());
    for number in 0..3 {
        captured_payment(handler.clone(), number).await;
    }
    // Three payments: authorized and captured each (initiated is not asked for).
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().unwrap().len() < 6 {
        assert!(
            Instant::now() < deadline,
            "the notifications did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (signature, body) in received.lock().unwrap().iter() {
        let parsed: Value = serde_json::from_str(body).unwrap();
        let kind = parsed["type"].as_str().unwrap();
        assert!(
            kind == "payment.captured" || kind == "payment.authorized",
            "{kind}"
        );
        // Signed with the secret the command line printed.
        let (timestamp, v1) = signature
            .split_once(',')
            .map(|(t, v)| (&t[2..], &v[3..]))
            .unwrap();
        let expected = {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(format!("{timestamp}.{body}").as_bytes());
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(v1, expected);
    }

    // The outcomes are recorded a moment after the answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let shown = endpoints_command(
            database.url(),
            &["deliveries", "--env", "test", &endpoint_id],
        );
        if shown.matches("delivered").count() == 6 {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries not recorded: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        shown.contains("payment.captured") && shown.contains("last 200"),
        "{shown}"
    );

    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let delivered = series_value(
        &metrics,
        "ledger_notify_attempts_total{outcome=\"delivered\"}",
    );
    assert_eq!(delivered, Some(6.0), "{metrics}");
    assert!(
        metrics.contains("ledger_notify_delivery_latency_seconds"),
        "{metrics}"
    );
    assert!(
        series_value(&metrics, "ledger_notify_backlog").is_some(),
        "{metrics}"
    );

    let disabled = endpoints_command(database.url(), &["disable", "--env", "test", &endpoint_id]);
    assert!(disabled.contains("disabled"), "{disabled}");
    assert!(endpoints_command(database.url(), &["list", "--env", "test"]).contains("disabled"));
}
