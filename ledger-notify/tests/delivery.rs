//! Notifications end to end on a real database and real HTTP receivers (axum servers started
//! here): the dispatcher follows the log, the sender delivers, and the receivers see what a
//! client service would.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use ledger_core::ids::{Environment, MerchantId, OrderId, PaymentId};
use ledger_core::payment::{CaptureMode, InitiatePayment, PaymentCommand, RecordAuthorization};
use ledger_core::{Currency, PositiveMoney};
use ledger_notify::{deliveries, retention};
use ledger_notify::{Dispatcher, Endpoints, NewEndpoint, Sender, SenderOptions, UrlPolicy};
use ledger_store::commands::{CommandContext, CommandHandler};
use ledger_store::testing::TestDatabase;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use uuid::Uuid;

/// What a receiver got: the signature header and the body, in arrival order.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String)>>>);

impl Received {
    fn bodies(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| serde_json::from_str(body).unwrap())
            .collect()
    }

    fn all(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }

    fn distinct_ids(&self) -> HashSet<String> {
        self.bodies()
            .iter()
            .map(|body| body["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A receiver on `listener`; `answer` picks the status from the number of earlier requests
/// with the same notification id. Only 2xx answers are recorded as received.
async fn serve_receiver(
    listener: TcpListener,
    received: Received,
    answer: fn(usize) -> StatusCode,
    delay: Duration,
) {
    let seen: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let received = received.clone();
            let seen = seen.clone();
            async move {
                tokio::time::sleep(delay).await;
                let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let earlier = {
                    let mut seen = seen.lock().unwrap();
                    let count = seen.entry(id).or_insert(0);
                    *count += 1;
                    *count - 1
                };
                let status = answer(earlier);
                if status.is_success() {
                    let signature = headers
                        .get("ledger-signature")
                        .map(|value| value.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    received.0.lock().unwrap().push((signature, body));
                }
                (status, "thanks")
            }
        }),
    );
    axum::serve(listener, app).await.unwrap();
}

async fn receiver(answer: fn(usize) -> StatusCode, delay: Duration) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    tokio::spawn(serve_receiver(listener, received.clone(), answer, delay));
    (format!("http://{address}/hook"), received)
}

fn always_ok(_: usize) -> StatusCode {
    StatusCode::OK
}

/// Dispatcher and sender running on the server's role, stopped when dropped.
struct Running(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn fast_options() -> SenderOptions {
    SenderOptions {
        base_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        poll_interval: Duration::from_millis(50),
        ..SenderOptions::default()
    }
}

async fn start(database: &TestDatabase, options: SenderOptions) -> Running {
    let pool = database.server_pool().await;
    let wake = Arc::new(Notify::new());
    let dispatcher = Dispatcher::new(pool.clone(), wake.clone());
    let sender = Sender::new(pool, options, wake).unwrap();
    Running(vec![
        tokio::spawn(dispatcher.follow(Duration::from_millis(50), std::future::pending())),
        tokio::spawn(sender.run(std::future::pending())),
    ])
}

async fn endpoint(database: &TestDatabase, url: &str, types: &[&str]) -> (Uuid, String) {
    let created = Endpoints::new(database.pool().clone(), UrlPolicy::default())
        .create(
            Environment::Test,
            NewEndpoint {
                idempotency_key: Uuid::new_v4().to_string(),
                url: url.to_owned(),
                event_types: types.iter().map(|name| (*name).to_owned()).collect(),
                description: Some("test receiver".to_owned()),
            },
        )
        .await
        .unwrap();
    (created.endpoint.id, created.secret)
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

/// A payment initiated and approved with automatic capture: initiated, authorized, captured.
async fn captured_payment(handler: &CommandHandler, number: usize) -> PaymentId {
    let payment_id = PaymentId::from_uuid(Uuid::new_v4());
    let initiate = PaymentCommand::Initiate(InitiatePayment {
        merchant_id: MerchantId::parse("merchant-notify").unwrap(),
        order_id: OrderId::parse(format!("order-{number}")).unwrap(),
        environment: Environment::Test,
        amount: PositiveMoney::parse("12.50", Currency::USD).unwrap(),
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
    payment_id
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Per payment, the positions received are increasing and the types come in lifecycle order.
fn assert_in_order_per_payment(bodies: &[Value]) {
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for body in bodies {
        let payment = body["data"]["payment"]["id"].as_str().unwrap().to_owned();
        let position = body["position"].as_u64().unwrap();
        if let Some(previous) = last.insert(payment.clone(), position) {
            assert!(
                previous < position,
                "payment {payment}: position {position} arrived after {previous}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_down_then_up_gets_everything_in_order() {
    let database = TestDatabase::new().await;
    // A port that nobody listens on yet.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{address}/hook");
    let (endpoint_id, _) = endpoint(&database, &url, &["*"]).await;
    let _running = start(&database, fast_options()).await;

    let handler = CommandHandler::new(database.store());
    for number in 0..5 {
        captured_payment(&handler, number).await;
    }
    // Attempts fail while nothing listens: they are recorded with the error and retried.
    let pool = database.pool().clone();
    let mut failed_attempts = 0;
    for _ in 0..200 {
        let listed = deliveries::list(&pool, Environment::Test, endpoint_id, 100, None)
            .await
            .unwrap();
        failed_attempts = listed
            .iter()
            .filter(|delivery| delivery.attempts > 0)
            .count();
        if failed_attempts > 0 {
            let failed = listed
                .iter()
                .find(|delivery| delivery.attempts > 0)
                .unwrap();
            assert_eq!(failed.status, "pending");
            assert!(failed.last_error.as_deref().unwrap().contains("connect"));
            assert!(failed.next_attempt_at.is_some());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(failed_attempts > 0, "no failed attempt was recorded");

    let received = Received::default();
    let listener = TcpListener::bind(address).await.unwrap();
    tokio::spawn(serve_receiver(
        listener,
        received.clone(),
        always_ok,
        Duration::ZERO,
    ));
    wait_for("15 notifications", || received.distinct_ids().len() == 15).await;
    let bodies = received.bodies();
    assert_in_order_per_payment(&bodies);
    let types: HashSet<&str> = bodies
        .iter()
        .map(|body| body["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        HashSet::from([
            "payment.initiated",
            "payment.authorized",
            "payment.captured"
        ])
    );
    let captured = bodies
        .iter()
        .find(|body| body["type"] == "payment.captured")
        .unwrap();
    assert_eq!(captured["environment"], "test");
    assert_eq!(captured["data"]["version"], 1);
    assert_eq!(captured["data"]["event"]["type"], "PaymentCaptured");
    assert_eq!(captured["data"]["payment"]["status"], "CAPTURED");
    assert_eq!(
        captured["data"]["payment"]["captured_amount"]["amount"],
        "12.50"
    );
}

fn fail_first(earlier: usize) -> StatusCode {
    if earlier == 0 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_500_is_retried_with_the_same_id_and_recorded() {
    let database = TestDatabase::new().await;
    let (url, received) = receiver(fail_first, Duration::ZERO).await;
    let (endpoint_id, _) = endpoint(&database, &url, &["payment.captured"]).await;
    let _running = start(&database, fast_options()).await;
    let handler = CommandHandler::new(database.store());
    let payment_id = captured_payment(&handler, 1).await;

    wait_for("the capture", || received.distinct_ids().len() == 1).await;
    let body = &received.bodies()[0];
    assert_eq!(body["type"], "payment.captured");
    assert_eq!(body["data"]["payment"]["id"], payment_id.to_string());
    let pool = database.pool().clone();
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = deliveries::list(&pool, Environment::Test, endpoint_id, 10, None)
            .await
            .unwrap();
        if listed
            .first()
            .is_some_and(|delivery| delivery.status == "delivered")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(listed.len(), 1, "only the subscribed type is delivered");
    let delivery = &listed[0];
    assert_eq!(delivery.status, "delivered");
    assert_eq!(delivery.attempts, 2);
    assert_eq!(delivery.last_status_code, Some(200));
    assert_eq!(delivery.last_response.as_deref(), Some("thanks"));
    assert!(delivery.next_attempt_at.is_none());
    assert_eq!(
        delivery.notification_id.to_string(),
        body["id"].as_str().unwrap()
    );
}

fn slow_ok(_: usize) -> StatusCode {
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifications_about_one_payment_arrive_in_order_under_concurrent_commands() {
    let database = TestDatabase::new().await;
    let (url, received) = receiver(slow_ok, Duration::from_millis(3)).await;
    endpoint(&database, &url, &["*"]).await;
    let _running = start(&database, fast_options()).await;
    let handler = CommandHandler::new(database.store());
    let mut tasks = tokio::task::JoinSet::new();
    for number in 0..30 {
        let handler = handler.clone();
        tasks.spawn(async move { captured_payment(&handler, number).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    wait_for("90 notifications", || received.distinct_ids().len() == 90).await;
    let bodies = received.bodies();
    assert_eq!(
        bodies.len(),
        90,
        "each delivered once when every answer is 200"
    );
    assert_in_order_per_payment(&bodies);
}

/// After dispatching, the dispatcher lets the next events gather: what is appended during its
/// pause goes out together, in one transaction (one `created_at` for all its deliveries), and
/// the first event after a quiet spell goes out at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_appended_while_the_dispatcher_pauses_go_out_together_and_the_first_at_once() {
    let database = TestDatabase::new().await;
    let (url, received) = receiver(always_ok, Duration::ZERO).await;
    let (endpoint_id, _) = endpoint(&database, &url, &["*"]).await;
    let gather = Duration::from_secs(5);
    let pool = database.server_pool().await;
    let wake = Arc::new(Notify::new());
    let dispatcher = Dispatcher::new(pool.clone(), wake.clone()).gathering_for(gather);
    let sender = Sender::new(pool, fast_options(), wake).unwrap();
    let _running = Running(vec![
        tokio::spawn(dispatcher.follow(Duration::from_millis(50), std::future::pending())),
        tokio::spawn(sender.run(std::future::pending())),
    ]);

    let handler = CommandHandler::new(database.store());
    let started = std::time::Instant::now();
    // Initiated (dispatched at once), then authorized and captured, during the pause.
    captured_payment(&handler, 0).await;
    wait_for("the first notification", || {
        !received.distinct_ids().is_empty()
    })
    .await;
    assert!(
        started.elapsed() < gather,
        "the first event after a quiet spell waited for the pause"
    );
    for number in 1..=10 {
        captured_payment(&handler, number).await;
    }
    wait_for("33 notifications", || received.distinct_ids().len() == 33).await;
    assert!(started.elapsed() >= gather);
    let listed = deliveries::list(database.pool(), Environment::Test, endpoint_id, 100, None)
        .await
        .unwrap();
    assert_eq!(listed.len(), 33);
    let transactions: HashSet<_> = listed.iter().map(|delivery| delivery.created_at).collect();
    assert_eq!(
        transactions.len(),
        2,
        "the first event alone, then everything appended during the pause in one transaction"
    );
}

/// An endpoint created while the dispatcher is inside a batch (it has read the batch's events
/// and not yet the endpoints) waits for that batch to commit, so its `created_position` is at
/// or past every event the batch passed without seeing it. Reading the log's head first, it
/// could commit after the batch read no endpoint: the events appended in between, after its
/// `created_position`, would never be delivered to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_created_during_a_dispatcher_batch_starts_after_what_the_batch_passed() {
    let database = TestDatabase::new().await;
    let handler = CommandHandler::new(database.store());
    captured_payment(&handler, 0).await;

    // A dispatcher's batch in progress: the checkpoint held, as `Dispatcher::run_batch` holds it.
    let mut batch = database.pool().begin().await.unwrap();
    sqlx::query("SELECT position FROM notification_checkpoint WHERE id FOR UPDATE")
        .execute(&mut *batch)
        .await
        .unwrap();
    let creating = tokio::spawn({
        let pool = database.pool().clone();
        async move {
            Endpoints::new(pool, UrlPolicy::default())
                .create(
                    Environment::Test,
                    NewEndpoint {
                        idempotency_key: "created-during-a-batch".to_owned(),
                        url: "http://127.0.0.1:9/hook".to_owned(),
                        event_types: vec!["*".to_owned()],
                        description: None,
                    },
                )
                .await
                .unwrap()
        }
    });
    // Events appended while the endpoint is being created, which the batch reads.
    captured_payment(&handler, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !creating.is_finished(),
        "the endpoint was created while a dispatcher batch was in progress"
    );
    let passed: i64 = sqlx::query_scalar("SELECT last_position FROM log_head WHERE id = 1")
        .fetch_one(&mut *batch)
        .await
        .unwrap();
    sqlx::query("UPDATE notification_checkpoint SET position = $1 WHERE id")
        .bind(passed)
        .execute(&mut *batch)
        .await
        .unwrap();
    batch.commit().await.unwrap();

    let created = creating.await.unwrap();
    assert!(
        created.endpoint.created_position >= passed as u64,
        "created at position {}, but the batch passed {passed} without seeing the endpoint",
        created.endpoint.created_position
    );
}

/// The verification snippet that docs/notifications.md gives for `language` (the code block
/// after the line naming it), so the documented code is the code that is checked.
fn documented_snippet(language: &str) -> String {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/notifications.md"
    ))
    .unwrap();
    let fence = format!("```{language}\n");
    let start = docs
        .find(&fence)
        .unwrap_or_else(|| panic!("no {language} snippet"))
        + fence.len();
    let length = docs[start..].find("```").unwrap();
    docs[start..start + length].to_owned()
}

/// Runs the documented snippet of `language` (`python` or `js`) on a delivery: implementations
/// that share no code with ours, in Python's `hmac` and Node's `crypto`.
fn documented_snippet_verifies(language: &str, secret: &str, signature: &str, body: &str) -> bool {
    let (program, driver) = match language {
        "python" => (
            "python3",
            "import sys\nsys.exit(0 if verify(sys.argv[1], sys.argv[2], sys.stdin.buffer.read()) else 1)\n",
        ),
        "js" => (
            "node",
            "const [secret, header] = process.argv.slice(-2);\n\
             process.exit(verify(secret, header, require('fs').readFileSync(0)) ? 0 : 1);\n",
        ),
        other => panic!("no snippet runner for {other}"),
    };
    let script = format!("{}\n{driver}", documented_snippet(language));
    let flag = if program == "node" { "-e" } else { "-c" };
    use std::io::Write as _;
    let mut child = std::process::Command::new(program)
        .args([flag, &script, secret, signature])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

/// Both documented snippets accept the delivery and refuse a wrong secret or a changed body.
fn snippets_verify(secret: &str, signature: &str, body: &str) -> bool {
    let python = documented_snippet_verifies("python", secret, signature, body);
    let node = documented_snippet_verifies("js", secret, signature, body);
    assert_eq!(python, node, "the Python and Node.js snippets disagree");
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signatures_verify_independently_and_both_secrets_sign_after_a_rotation() {
    let database = TestDatabase::new().await;
    let (url, received) = receiver(always_ok, Duration::ZERO).await;
    let (endpoint_id, secret) = endpoint(&database, &url, &["payment.initiated"]).await;
    assert!(secret.starts_with("lwhsec_"));
    let _running = start(&database, fast_options()).await;
    let handler = CommandHandler::new(database.store());
    captured_payment(&handler, 1).await;
    wait_for("the first notification", || received.all().len() == 1).await;
    let (signature, body) = received.all()[0].clone();
    assert_eq!(signature.matches("v1=").count(), 1);
    assert!(snippets_verify(&secret, &signature, &body));
    assert!(!snippets_verify("lwhsec_wrong", &signature, &body));
    assert!(!snippets_verify(
        &secret,
        &signature,
        &body.replace("12.50", "99.50")
    ));

    let rotated = Endpoints::new(database.pool().clone(), UrlPolicy::default())
        .rotate_secret(Environment::Test, endpoint_id)
        .await
        .unwrap();
    assert_ne!(rotated.secret, secret);
    captured_payment(&handler, 2).await;
    wait_for("the second notification", || received.all().len() == 2).await;
    let (signature, body) = received.all()[1].clone();
    assert_eq!(signature.matches("v1=").count(), 2);
    assert!(snippets_verify(&rotated.secret, &signature, &body));
    assert!(snippets_verify(&secret, &signature, &body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_endpoint_gets_nothing_and_a_replay_sends_again_with_the_same_ids() {
    let database = TestDatabase::new().await;
    let (disabled_url, disabled_received) = receiver(always_ok, Duration::ZERO).await;
    let (url, received) = receiver(always_ok, Duration::ZERO).await;
    let endpoints = Endpoints::new(database.pool().clone(), UrlPolicy::default());
    let (disabled_id, _) = endpoint(&database, &disabled_url, &["*"]).await;
    let (endpoint_id, _) = endpoint(&database, &url, &["*"]).await;
    let disabled = endpoints
        .disable(Environment::Test, disabled_id)
        .await
        .unwrap();
    assert_eq!(disabled.status.as_str(), "disabled");
    let _running = start(&database, fast_options()).await;
    let handler = CommandHandler::new(database.store());
    captured_payment(&handler, 1).await;
    wait_for("three notifications", || received.all().len() == 3).await;
    let first_ids = received.distinct_ids();
    let positions: Vec<u64> = received
        .bodies()
        .iter()
        .map(|body| body["position"].as_u64().unwrap())
        .collect();

    let queued = deliveries::replay(
        database.pool(),
        Environment::Test,
        endpoint_id,
        *positions.iter().min().unwrap(),
        *positions.iter().max().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(queued, 3);
    wait_for("the replay", || received.all().len() == 6).await;
    assert_eq!(received.distinct_ids(), first_ids);
    assert_in_order_per_payment(&received.bodies()[3..]);
    // The other environment sees neither endpoint.
    assert!(
        deliveries::replay(database.pool(), Environment::Live, endpoint_id, 1, 10)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(disabled_received.all().is_empty());
}

fn always_fail(_: usize) -> StatusCode {
    StatusCode::SERVICE_UNAVAILABLE
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endpoint_failing_for_the_whole_retry_window_is_disabled() {
    let database = TestDatabase::new().await;
    let (url, _received) = receiver(always_fail, Duration::ZERO).await;
    let (endpoint_id, _) = endpoint(&database, &url, &["payment.initiated"]).await;
    let options = SenderOptions {
        retry_window: Duration::from_millis(500),
        ..fast_options()
    };
    let _running = start(&database, options).await;
    let handler = CommandHandler::new(database.store());
    captured_payment(&handler, 1).await;
    let endpoints = Endpoints::new(database.pool().clone(), UrlPolicy::default());
    let mut endpoint = endpoints.get(Environment::Test, endpoint_id).await.unwrap();
    for _ in 0..200 {
        if endpoint.status.as_str() == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        endpoint = endpoints.get(Environment::Test, endpoint_id).await.unwrap();
    }
    assert_eq!(endpoint.status.as_str(), "disabled");
    assert_eq!(endpoint.disabled_reason.as_deref(), Some("failing"));
    let listed = deliveries::list(database.pool(), Environment::Test, endpoint_id, 10, None)
        .await
        .unwrap();
    assert_eq!(listed[0].status, "failed");
    assert!(listed[0].attempts >= 2);
    assert_eq!(listed[0].last_status_code, Some(503));
}

#[tokio::test]
async fn endpoint_inputs_are_checked_and_creation_is_idempotent() {
    let database = TestDatabase::new().await;
    let endpoints = Endpoints::new(database.pool().clone(), UrlPolicy::default());
    let request = NewEndpoint {
        idempotency_key: "create-1".to_owned(),
        url: "https://hooks.example.com/ledger".to_owned(),
        event_types: vec!["payment.captured".to_owned(), "payout.paid".to_owned()],
        description: Some("payments team".to_owned()),
    };
    let created = endpoints
        .create(Environment::Live, request.clone())
        .await
        .unwrap();
    assert!(!created.replayed);
    let again = endpoints
        .create(Environment::Live, request.clone())
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.endpoint.id, created.endpoint.id);
    assert_eq!(again.secret, created.secret);
    let reused = endpoints
        .create(
            Environment::Live,
            NewEndpoint {
                url: "https://other.example.com/".to_owned(),
                ..request.clone()
            },
        )
        .await;
    assert!(matches!(
        reused,
        Err(ledger_notify::NotifyError::IdempotencyKeyReused)
    ));
    for (url, types) in [
        ("http://hooks.example.com/", vec!["*"]),
        ("https://10.0.0.5/", vec!["*"]),
        ("https://hooks.example.com/", vec!["payment.nope"]),
        ("https://hooks.example.com/", vec![]),
    ] {
        let refused = endpoints
            .create(
                Environment::Live,
                NewEndpoint {
                    idempotency_key: Uuid::new_v4().to_string(),
                    url: url.to_owned(),
                    event_types: types.into_iter().map(str::to_owned).collect(),
                    description: None,
                },
            )
            .await;
        assert!(
            matches!(refused, Err(ledger_notify::NotifyError::Invalid { .. })),
            "{url}"
        );
    }
    // Nothing was created by the refusals, and the test environment sees none of it.
    assert_eq!(endpoints.list(Environment::Live).await.unwrap().len(), 1);
    assert!(endpoints.list(Environment::Test).await.unwrap().is_empty());
    assert!(endpoints
        .disable(Environment::Test, created.endpoint.id)
        .await
        .is_err());
}

/// Finished deliveries older than the retention period are deleted, on the server's role;
/// newer ones and pending ones (whatever their age) are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finished_deliveries_past_the_retention_period_are_pruned_and_pending_ones_kept() {
    let database = TestDatabase::new().await;
    let (ok_url, ok_received) = receiver(always_ok, Duration::ZERO).await;
    let (failing_url, _) = receiver(always_fail, Duration::ZERO).await;
    let (ok_endpoint, _) = endpoint(&database, &ok_url, &["*"]).await;
    let (failing_endpoint, _) = endpoint(&database, &failing_url, &["*"]).await;
    let running = start(&database, fast_options()).await;
    let handler = CommandHandler::new(database.store());
    captured_payment(&handler, 1).await;
    wait_for("three notifications", || ok_received.all().len() == 3).await;
    let count = |endpoint_id: Uuid, status: &'static str| {
        let pool = database.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM notification_deliveries WHERE endpoint_id = $1 AND status = $2",
            )
            .bind(endpoint_id)
            .bind(status)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    // Recorded a moment after the answers.
    for _ in 0..200 {
        if count(ok_endpoint, "delivered").await == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(count(ok_endpoint, "delivered").await, 3);
    drop(running);
    // The first payment's deliveries are 40 days old; then one more payment, recent.
    let backdate = |endpoint_id: Uuid| {
        let pool = database.pool().clone();
        async move {
            sqlx::query(
                "UPDATE notification_deliveries SET created_at = created_at - interval '40 days'
                 WHERE endpoint_id = $1",
            )
            .bind(endpoint_id)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    backdate(ok_endpoint).await;
    let running = start(&database, fast_options()).await;
    captured_payment(&handler, 2).await;
    wait_for("six notifications", || ok_received.all().len() == 6).await;
    for _ in 0..200 {
        if count(ok_endpoint, "delivered").await == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    drop(running);
    let pending_before = count(failing_endpoint, "pending").await;
    assert_eq!(pending_before, 6, "the failing endpoint's deliveries wait");
    // With the sender stopped (it would give them up), the waiting ones are made old too.
    backdate(failing_endpoint).await;

    let server = database.server_pool().await;
    let thirty_days = Duration::from_secs(30 * 24 * 3_600);
    assert_eq!(retention::prune(&server, thirty_days, 2).await.unwrap(), 2);
    assert_eq!(
        retention::prune(&server, thirty_days, 100).await.unwrap(),
        1
    );
    assert_eq!(
        retention::prune(&server, thirty_days, 100).await.unwrap(),
        0
    );
    assert_eq!(
        count(ok_endpoint, "delivered").await,
        3,
        "the recent ones stay"
    );
    assert_eq!(count(failing_endpoint, "pending").await, pending_before);
    let listed = deliveries::list(database.pool(), Environment::Test, ok_endpoint, 10, None)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed
        .iter()
        .all(|delivery| delivery.created_at > Utc::now() - chrono::Duration::days(1)));

    // Bodies are stored once per notification, whatever the number of endpoints, and go with
    // the last delivery of them: the first payment's still wait at the failing endpoint.
    let bodies = || {
        let pool = database.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM notifications")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(bodies().await, 6, "two payments' notifications, once each");
    // Once the failing endpoint's are given up too, the first payment's bodies have no
    // delivery left and go; the second payment's stay with its recent deliveries.
    sqlx::query("UPDATE notification_deliveries SET status = 'failed' WHERE endpoint_id = $1")
        .bind(failing_endpoint)
        .execute(database.pool())
        .await
        .unwrap();
    assert_eq!(
        retention::prune(&server, thirty_days, 100).await.unwrap(),
        6
    );
    assert_eq!(bodies().await, 3);
    let kept: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT n.position FROM notifications n
         JOIN notification_deliveries d USING (notification_id) ORDER BY 1",
    )
    .fetch_all(database.pool())
    .await
    .unwrap();
    assert_eq!(
        kept.len(),
        3,
        "every kept body has its deliveries: {kept:?}"
    );
}
