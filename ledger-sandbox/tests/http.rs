//! The sandbox through real HTTP, as a Stripe integration meets it: authentication, the
//! PaymentIntent lifecycle, declines, idempotency, 3D Secure, refunds, disputes, Stripe's
//! errors, and webhooks signed and retried, received by a real HTTP server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use ledger_sandbox::{EnabledEvents, RetryPolicy, RunningSandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;

const KEY: &str = "sk_test_sandboxhttp";
const SECRET: &str = "whsec_sandbox_http_test";

async fn sandbox(config: SandboxConfig) -> RunningSandbox {
    ledger_sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

struct Client {
    base: String,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// The delivery counters once nothing is pending (within 5 s).
async fn settled(client: &Client) -> Value {
    let mut stats = Value::Null;
    for _ in 0..200 {
        stats = client.get("/sandbox/webhooks").await.body;
        if stats["pending"] == 0 {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deliveries never settled: {stats}");
}

impl Client {
    fn new(sandbox: &RunningSandbox) -> Client {
        Client {
            base: sandbox.base_url(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, form: &str) -> Answer {
        self.post_with_key(path, form, None).await
    }

    async fn post_with_key(&self, path: &str, form: &str, idempotency_key: Option<&str>) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(KEY),
        )
        .await
    }

    async fn events_of_type(&self, event_type: &str) -> Vec<Value> {
        let list = self
            .get(&format!("/v1/events?limit=100&type={event_type}"))
            .await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        list.body["data"].as_array().unwrap().clone()
    }
}

fn default_config() -> SandboxConfig {
    SandboxConfig::new(SECRET).unwrap()
}

#[tokio::test]
async fn test_keys_are_required_and_live_keys_refused() {
    let sandbox = sandbox(default_config()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/events", sandbox.base_url());

    let missing = http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("You did not provide an API key"));

    let live = http
        .get(&url)
        .bearer_auth("sk_live_51Hx0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::UNAUTHORIZED);
    let body: Value = live.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("test keys only"), "{message}");
    assert!(
        !message.contains("0123456789abcdef"),
        "the key is echoed: {message}"
    );

    let basic = http
        .get(&url)
        .basic_auth(KEY, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
    let list: Value = basic.json().await.unwrap();
    assert_eq!(list["object"], "list");
}

#[tokio::test]
async fn a_manual_capture_is_authorized_then_partially_captured() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    let created = client
        .post(
            "/v1/payment_intents",
            "amount=2000&currency=usd&capture_method=manual&payment_method=pm_card_visa&confirm=true&metadata%5Border_id%5D=order-1&description=Two+mugs",
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let intent = &created.body;
    assert_eq!(intent["object"], "payment_intent");
    assert_eq!(intent["status"], "requires_capture");
    assert_eq!(intent["amount_capturable"], 2000);
    assert_eq!(intent["metadata"]["order_id"], "order-1");
    assert_eq!(intent["description"], "Two mugs");
    assert!(intent["id"].as_str().unwrap().starts_with("pi_"));
    assert!(intent["payment_method"]
        .as_str()
        .unwrap()
        .starts_with("pm_"));
    let charge_id = intent["latest_charge"].as_str().unwrap().to_owned();
    assert!(charge_id.starts_with("ch_"));
    assert!(created.headers["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));

    let id = intent["id"].as_str().unwrap();
    let captured = client
        .post(
            &format!("/v1/payment_intents/{id}/capture"),
            "amount_to_capture=1500",
        )
        .await;
    assert_eq!(captured.status, StatusCode::OK, "{}", captured.body);
    assert_eq!(captured.body["status"], "succeeded");
    assert_eq!(captured.body["amount_received"], 1500);
    assert_eq!(captured.body["amount_capturable"], 0);

    let charge = client.get(&format!("/v1/charges/{charge_id}")).await;
    assert_eq!(charge.body["amount_captured"], 1500);
    assert_eq!(charge.body["captured"], true);
    assert_eq!(charge.body["metadata"]["order_id"], "order-1");

    let again = client
        .post(&format!("/v1/payment_intents/{id}/capture"), "")
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        again.body["error"]["code"],
        "payment_intent_unexpected_state"
    );

    let retrieved = client.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(retrieved.body, captured.body);
    let expanded = client
        .get(&format!("/v1/payment_intents/{id}?expand[]=latest_charge"))
        .await;
    assert_eq!(expanded.body["latest_charge"]["id"], charge_id.as_str());
    assert_eq!(expanded.body["latest_charge"]["object"], "charge");

    let all = client.get("/v1/events?limit=100").await.body;
    let mut types: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    types.reverse();
    assert_eq!(
        types,
        [
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.amount_capturable_updated",
            "charge.captured",
            "payment_intent.succeeded",
        ]
    );
}

#[tokio::test]
async fn declines_answer_402_in_stripes_error_shape_and_bad_input_names_its_param() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    let declined = client
        .post(
            "/v1/payment_intents",
            "amount=1000&currency=eur&payment_method=pm_card_chargeDeclinedInsufficientFunds&confirm=true",
        )
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    let error = &declined.body["error"];
    assert_eq!(error["type"], "card_error");
    assert_eq!(error["code"], "card_declined");
    assert_eq!(error["decline_code"], "insufficient_funds");
    assert_eq!(error["message"], "Your card has insufficient funds.");
    assert!(error["charge"].as_str().unwrap().starts_with("ch_"));
    let intent = &error["payment_intent"];
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"]["decline_code"],
        "insufficient_funds"
    );

    let expired = client
        .post(
            "/v1/payment_intents",
            "amount=1000&currency=usd&confirm=true&payment_method_data[type]=card&payment_method_data[card][number]=4000000000000069&payment_method_data[card][exp_month]=12&payment_method_data[card][exp_year]=2030",
        )
        .await;
    assert_eq!(expired.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(expired.body["error"]["code"], "expired_card");

    let incorrect = client
        .post(
            "/v1/payment_intents",
            "amount=1000&currency=usd&confirm=true&payment_method_data[type]=card&payment_method_data[card][number]=4242424242424241",
        )
        .await;
    assert_eq!(incorrect.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(incorrect.body["error"]["code"], "incorrect_number");
    assert_eq!(
        incorrect.body["error"]["param"],
        "payment_method_data[card][number]"
    );

    let bad_amount = client
        .post("/v1/payment_intents", "amount=ten&currency=usd")
        .await;
    assert_eq!(bad_amount.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_amount.body["error"]["type"], "invalid_request_error");
    assert_eq!(bad_amount.body["error"]["param"], "amount");

    let missing = client.post("/v1/payment_intents", "amount=100").await;
    assert_eq!(missing.body["error"]["param"], "currency");
    let unknown = client
        .post("/v1/payment_intents", "amount=100&currency=usd&colour=red")
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["error"]["param"], "colour");
    // Bad input changed nothing: only the two declined attempts made intents (an incorrect
    // number is refused before any intent exists, as Stripe refuses the payment method).
    assert_eq!(
        client.events_of_type("payment_intent.created").await.len(),
        2
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_other_params() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    let form = "amount=4200&currency=usd&payment_method=pm_card_mastercard&confirm=true";
    let first = client
        .post_with_key("/v1/payment_intents", form, Some("checkout-77"))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let second = client
        .post_with_key("/v1/payment_intents", form, Some("checkout-77"))
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(second.body, first.body);
    assert_eq!(
        client.events_of_type("payment_intent.created").await.len(),
        1
    );

    let other = client
        .post_with_key(
            "/v1/payment_intents",
            "amount=4300&currency=usd",
            Some("checkout-77"),
        )
        .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
    assert_eq!(other.body["error"]["type"], "idempotency_error");

    // A declined attempt is kept too: its retry with the key replays the 402.
    let decline = "amount=100&currency=usd&payment_method=pm_card_visa_chargeDeclined&confirm=true";
    let declined = client
        .post_with_key("/v1/payment_intents", decline, Some("decline-1"))
        .await;
    let replayed = client
        .post_with_key("/v1/payment_intents", decline, Some("decline-1"))
        .await;
    assert_eq!(replayed.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(replayed.body, declined.body);
}

#[tokio::test]
async fn three_d_secure_waits_for_the_sandbox_authentication_step() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    for (outcome, status) in [
        ("success", "succeeded"),
        ("failure", "requires_payment_method"),
    ] {
        let created = client
            .post(
                "/v1/payment_intents",
                "amount=3000&currency=gbp&payment_method=pm_card_authenticationRequired&confirm=true",
            )
            .await;
        assert_eq!(
            created.body["status"], "requires_action",
            "{}",
            created.body
        );
        assert_eq!(created.body["next_action"]["type"], "use_stripe_sdk");
        let id = created.body["id"].as_str().unwrap();
        let done = client
            .post(
                &format!("/sandbox/payment_intents/{id}/authenticate"),
                &format!("outcome={outcome}"),
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        assert_eq!(done.body["status"], status);
        if outcome == "failure" {
            assert_eq!(
                done.body["last_payment_error"]["code"],
                "payment_intent_authentication_failure"
            );
        }
    }
    assert_eq!(
        client
            .events_of_type("payment_intent.requires_action")
            .await
            .len(),
        2
    );
}

async fn paid_intent(client: &Client, payment_method: &str, amount: i64) -> Value {
    let created = client
        .post(
            "/v1/payment_intents",
            &format!("amount={amount}&currency=usd&payment_method={payment_method}&confirm=true"),
        )
        .await;
    assert_eq!(created.body["status"], "succeeded", "{}", created.body);
    created.body
}

async fn eventually(client: &Client, path: &str, field: &str, expected: &str) -> Value {
    for _ in 0..50 {
        let answer = client.get(path).await;
        if answer.body[field] == expected {
            return answer.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path}: {field} never became {expected}");
}

#[tokio::test]
async fn refunds_are_partial_bounded_and_the_refund_cards_change_them_later() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    let intent = paid_intent(&client, "pm_card_visa", 2000).await;
    let id = intent["id"].as_str().unwrap();
    let partial = client
        .post("/v1/refunds", &format!("payment_intent={id}&amount=500"))
        .await;
    assert_eq!(partial.status, StatusCode::OK, "{}", partial.body);
    assert_eq!(partial.body["object"], "refund");
    assert_eq!(partial.body["status"], "succeeded");
    assert_eq!(partial.body["payment_intent"], id);
    let too_much = client
        .post("/v1/refunds", &format!("payment_intent={id}&amount=1600"))
        .await;
    assert_eq!(too_much.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_much.body["error"]["param"], "amount");
    let charge = intent["latest_charge"].as_str().unwrap();
    let rest = client
        .post("/v1/refunds", &format!("charge={charge}"))
        .await;
    assert_eq!(rest.body["amount"], 1500);
    let none_left = client
        .post("/v1/refunds", &format!("charge={charge}"))
        .await;
    assert_eq!(none_left.body["error"]["code"], "charge_already_refunded");

    let pending_intent = paid_intent(&client, "pm_card_pendingRefund", 1000).await;
    let pending = client
        .post(
            "/v1/refunds",
            &format!("payment_intent={}", pending_intent["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(pending.body["status"], "pending");
    let refund = pending.body["id"].as_str().unwrap();
    eventually(
        &client,
        &format!("/v1/refunds/{refund}"),
        "status",
        "succeeded",
    )
    .await;

    let failing_intent = paid_intent(&client, "pm_card_refundFail", 1000).await;
    let failing = client
        .post(
            "/v1/refunds",
            &format!("payment_intent={}", failing_intent["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(failing.body["status"], "succeeded");
    let refund = failing.body["id"].as_str().unwrap();
    let failed = eventually(
        &client,
        &format!("/v1/refunds/{refund}"),
        "status",
        "failed",
    )
    .await;
    assert!(failed["failure_reason"].is_string());
    assert_eq!(client.events_of_type("refund.failed").await.len(), 1);
}

#[tokio::test]
async fn disputes_close_won_or_lost_on_the_test_evidence() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    for (card, evidence, outcome) in [
        ("pm_card_createDispute", "winning_evidence", "won"),
        (
            "pm_card_createDisputeProductNotReceived",
            "losing_evidence",
            "lost",
        ),
    ] {
        let intent = paid_intent(&client, card, 2500).await;
        let created = client.events_of_type("charge.dispute.created").await;
        let dispute = created
            .iter()
            .map(|event| &event["data"]["object"])
            .find(|dispute| dispute["payment_intent"] == intent["id"])
            .unwrap()
            .clone();
        assert_eq!(dispute["status"], "needs_response");
        assert_eq!(dispute["amount"], 2500);
        let id = dispute["id"].as_str().unwrap();
        assert!(id.starts_with("dp_"));
        let retrieved = client.get(&format!("/v1/disputes/{id}")).await;
        assert_eq!(retrieved.body["reason"], dispute["reason"]);
        let closed = client
            .post(
                &format!("/v1/disputes/{id}"),
                &format!("evidence[uncategorized_text]={evidence}"),
            )
            .await;
        assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
        assert_eq!(closed.body["status"], outcome);
        assert_eq!(closed.body["evidence"]["uncategorized_text"], evidence);
        let late = client
            .post(
                &format!("/v1/disputes/{id}"),
                "evidence[uncategorized_text]=more",
            )
            .await;
        assert_eq!(late.status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        client.events_of_type("charge.dispute.closed").await.len(),
        2
    );
}

#[tokio::test]
async fn unknown_routes_and_objects_are_404_in_stripes_shape() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    let route = client.get("/v1/customers_of_mars").await;
    assert_eq!(route.status, StatusCode::NOT_FOUND);
    assert_eq!(route.body["error"]["type"], "invalid_request_error");
    assert!(route.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unrecognized request URL (GET: /v1/customers_of_mars)"));
    let object = client.get("/v1/payment_intents/pi_nothere").await;
    assert_eq!(object.status, StatusCode::NOT_FOUND);
    assert_eq!(object.body["error"]["code"], "resource_missing");
    assert_eq!(object.body["error"]["param"], "id");
}

/// What the receiver saw: each request's signature header and body.
type Received = Arc<Mutex<Vec<(String, String)>>>;

async fn receiver(received: Received) -> String {
    endpoint(received, true).await
}

/// A webhook endpoint recording what it receives; `fail_first` answers 500 to the first
/// request.
async fn endpoint(received: Received, fail_first: bool) -> String {
    use axum::http::{HeaderMap, StatusCode as Status};
    let app = axum::Router::new().route(
        "/webhooks",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let received = received.clone();
            async move {
                let signature = headers["stripe-signature"].to_str().unwrap().to_owned();
                let mut seen = received.lock().unwrap();
                seen.push((signature, body));
                // The first delivery fails, as an endpoint that is restarting.
                if fail_first && seen.len() == 1 {
                    Status::INTERNAL_SERVER_ERROR
                } else {
                    Status::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/webhooks")
}

/// Stripe's scheme, computed here independently of the sandbox.
fn signature_is_valid(header: &str, body: &str) -> bool {
    let timestamp = header
        .split(',')
        .find_map(|part| part.strip_prefix("t="))
        .unwrap();
    let v1 = header
        .split(',')
        .find_map(|part| part.strip_prefix("v1="))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes()) == v1
}

#[tokio::test]
async fn webhooks_are_signed_as_stripe_signs_and_retried_after_a_500() {
    let received: Received = Arc::default();
    let url = receiver(received.clone()).await;
    let mut config = default_config().with_webhook_url(&url).unwrap();
    config.retry = RetryPolicy {
        first_retry: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    let sandbox = sandbox(config).await;
    let client = Client::new(&sandbox);
    let intent = client
        .post("/v1/payment_intents", "amount=900&currency=usd")
        .await;
    let id = intent.body["id"].as_str().unwrap();

    let mut deliveries = Vec::new();
    for _ in 0..50 {
        deliveries = received.lock().unwrap().clone();
        if deliveries.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries.len(), 2, "one failed attempt and its retry");
    let events: Vec<Value> = deliveries
        .iter()
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect();
    assert_eq!(
        events[0]["id"], events[1]["id"],
        "the retry is the same event"
    );
    assert_eq!(events[0]["type"], "payment_intent.created");
    assert_eq!(events[0]["data"]["object"]["id"], id);
    assert_eq!(events[0]["livemode"], false);
    for (signature, body) in &deliveries {
        assert!(signature_is_valid(signature, body), "{signature}");
    }
    assert!(!signature_is_valid(&deliveries[0].0, "{}"));
    let stats = client.get("/sandbox/webhooks").await.body;
    assert_eq!(stats["delivered"], 1);
    assert_eq!(stats["failed_attempts"], 1);
}

/// A slow receiver sees at most `in_flight_per_endpoint` requests at once, and a burst of
/// events still arrives whole, each once, with no attempt failed.
#[tokio::test]
async fn a_burst_of_events_keeps_to_the_deliveries_in_flight_per_endpoint() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (open, most, arrived) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let app = {
        let (open, most, arrived) = (open.clone(), most.clone(), arrived.clone());
        axum::Router::new().route(
            "/webhooks",
            axum::routing::post(move || {
                let (open, most, arrived) = (open.clone(), most.clone(), arrived.clone());
                async move {
                    let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now_open, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    arrived.fetch_add(1, Ordering::SeqCst);
                    open.fetch_sub(1, Ordering::SeqCst);
                    axum::http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = default_config().with_webhook_url(&url).unwrap();
    config.retry = RetryPolicy {
        in_flight_per_endpoint: 3,
        ..RetryPolicy::default()
    };
    let sandbox = sandbox(config).await;
    let client = Client::new(&sandbox);
    let intents = 24;
    for _ in 0..intents {
        client
            .post("/v1/payment_intents", "amount=100&currency=usd")
            .await;
    }
    let stats = settled(&client).await;
    assert_eq!(stats["delivered"], intents);
    assert_eq!(stats["failed_attempts"], 0);
    assert_eq!(arrived.load(Ordering::SeqCst), intents);
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 3, "{most} requests were open at once");
    assert!(most >= 2, "deliveries did not overlap at all ({most})");
}

/// Ids of the events received so far, in arrival order.
fn arrived(received: &Received) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Starts a sandbox under `chaos`, creates `intents` PaymentIntents (one event each), and
/// waits for deliveries to settle; returns the emitted event ids, oldest first, what arrived,
/// and the delivery counters.
async fn deliver_under(chaos: &str, intents: usize) -> (Vec<String>, Vec<String>, Value) {
    let received: Received = Arc::default();
    let url = endpoint(received.clone(), false).await;
    let mut config = default_config().with_webhook_url(&url).unwrap();
    config.chaos = chaos.parse().unwrap();
    config.seed = 42;
    config.retry = RetryPolicy {
        first_retry: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    let sandbox = sandbox(config).await;
    let client = Client::new(&sandbox);
    for _ in 0..intents {
        client
            .post("/v1/payment_intents", "amount=100&currency=usd")
            .await;
    }
    let stats = settled(&client).await;
    let mut emitted: Vec<String> = client
        .events_of_type("payment_intent.created")
        .await
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect();
    emitted.reverse();
    (emitted, arrived(&received), stats)
}

#[tokio::test]
async fn chaos_profiles_duplicate_drop_hold_and_reorder_deliveries() {
    let (emitted, arrived, stats) = deliver_under("duplicates", 4).await;
    assert!(arrived.len() >= 2 * emitted.len(), "{arrived:?}");
    for id in &emitted {
        assert!(arrived.iter().filter(|seen| *seen == id).count() >= 2);
    }
    assert_eq!(stats["failed_attempts"], 0);

    let (emitted, arrived, stats) = deliver_under("drop-first", 3).await;
    let mut sorted = arrived.clone();
    sorted.sort();
    let mut expected = emitted.clone();
    expected.sort();
    assert_eq!(
        sorted, expected,
        "each delivered once, after its lost attempt"
    );
    assert_eq!(stats["failed_attempts"], 3);
    assert_eq!(stats["delivered"], 3);

    let (emitted, arrived, _) = deliver_under("delays", 5).await;
    assert_eq!(arrived, emitted, "delays keep the order");

    let (emitted, arrived, _) = deliver_under("reorder", 10).await;
    let mut sorted = arrived.clone();
    sorted.sort();
    let mut expected = emitted.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    assert_ne!(arrived, emitted, "seed 42 reorders ten events");
}

#[tokio::test]
async fn intents_confirm_later_and_cancel_only_while_cancelable() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    let bare = client
        .post("/v1/payment_intents", "amount=1200&currency=USD")
        .await;
    assert_eq!(bare.body["status"], "requires_payment_method");
    assert_eq!(bare.body["currency"], "usd");
    let id = bare.body["id"].as_str().unwrap();
    let without_method = client
        .post(&format!("/v1/payment_intents/{id}/confirm"), "")
        .await;
    assert_eq!(without_method.status, StatusCode::BAD_REQUEST);
    assert_eq!(without_method.body["error"]["param"], "payment_method");
    let confirmed = client
        .post(
            &format!("/v1/payment_intents/{id}/confirm"),
            "payment_method_data[type]=card&payment_method_data[card][number]=5555555555554444",
        )
        .await;
    assert_eq!(confirmed.body["status"], "succeeded", "{}", confirmed.body);
    assert_eq!(confirmed.body["amount_received"], 1200);
    let charge = client
        .get(&format!(
            "/v1/charges/{}",
            confirmed.body["latest_charge"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        charge.body["payment_method_details"]["card"]["brand"],
        "mastercard"
    );
    let too_late = client
        .post(&format!("/v1/payment_intents/{id}/cancel"), "")
        .await;
    assert_eq!(too_late.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        too_late.body["error"]["code"],
        "payment_intent_unexpected_state"
    );

    let held = client
        .post(
            "/v1/payment_intents",
            "amount=800&currency=usd&capture_method=manual&payment_method=pm_card_amex&confirm=true",
        )
        .await;
    let held_id = held.body["id"].as_str().unwrap();
    let canceled = client
        .post(
            &format!("/v1/payment_intents/{held_id}/cancel"),
            "cancellation_reason=requested_by_customer",
        )
        .await;
    assert_eq!(canceled.body["status"], "canceled");
    assert_eq!(
        canceled.body["cancellation_reason"],
        "requested_by_customer"
    );
    assert_eq!(canceled.body["amount_capturable"], 0);
    let bad_reason = client
        .post(
            "/v1/payment_intents",
            "amount=800&currency=usd&capture_method=sometimes",
        )
        .await;
    assert_eq!(bad_reason.body["error"]["param"], "capture_method");
    assert_eq!(
        client.events_of_type("payment_intent.canceled").await.len(),
        1
    );
}

#[tokio::test]
async fn intents_update_until_charged_and_list_newest_first() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    let mut ids = Vec::new();
    for amount in [100, 200, 300] {
        let created = client
            .post(
                "/v1/payment_intents",
                &format!("amount={amount}&currency=usd"),
            )
            .await;
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let first = &ids[0];
    let updated = client
        .post(
            &format!("/v1/payment_intents/{first}"),
            "amount=150&currency=eur&description=cart%2042&metadata[order_id]=42&payment_method=pm_card_visa",
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["amount"], 150);
    assert_eq!(updated.body["currency"], "eur");
    assert_eq!(updated.body["description"], "cart 42");
    assert_eq!(updated.body["metadata"]["order_id"], "42");
    assert_eq!(updated.body["status"], "requires_confirmation");
    let confirmed = client
        .post(&format!("/v1/payment_intents/{first}/confirm"), "")
        .await;
    assert_eq!(confirmed.body["amount_received"], 150, "{}", confirmed.body);

    // Once charged, only what does not touch the payment changes.
    let too_late = client
        .post(&format!("/v1/payment_intents/{first}"), "amount=999")
        .await;
    assert_eq!(too_late.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        too_late.body["error"]["code"],
        "payment_intent_unexpected_state"
    );
    let noted = client
        .post(
            &format!("/v1/payment_intents/{first}"),
            "metadata[order_id]=&metadata[note]=gift",
        )
        .await;
    assert_eq!(noted.status, StatusCode::OK, "{}", noted.body);
    assert_eq!(
        noted.body["metadata"],
        serde_json::json!({ "note": "gift" })
    );
    assert_eq!(noted.body["amount"], 150);
    let unknown = client
        .post(&format!("/v1/payment_intents/{first}"), "colour=red")
        .await;
    assert_eq!(unknown.body["error"]["param"], "colour");

    let page = client.get("/v1/payment_intents?limit=2").await;
    let listed: Vec<&str> = page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|intent| intent["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(page.body["has_more"], true);
    let rest = client
        .get(&format!(
            "/v1/payment_intents?limit=2&starting_after={}",
            ids[1]
        ))
        .await;
    assert_eq!(rest.body["data"][0]["id"], ids[0].as_str());
    assert_eq!(rest.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["has_more"], false);
    let bad_limit = client.get("/v1/payment_intents?limit=101").await;
    assert_eq!(bad_limit.body["error"]["param"], "limit");
    let missing = client
        .get("/v1/payment_intents?starting_after=pi_missing")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"]["param"], "starting_after");
}

#[tokio::test]
async fn events_filter_by_type_and_creation_time_and_page_both_ways() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    for _ in 0..3 {
        paid_intent(&client, "pm_card_visa", 500).await;
    }
    let all = client.get("/v1/events?limit=100").await;
    let events = all.body["data"].as_array().unwrap().clone();
    let count = events.len();
    assert!(count >= 6, "{}", all.body);
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let times: Vec<i64> = events
        .iter()
        .map(|e| e["created"].as_i64().unwrap())
        .collect();
    let (oldest, newest) = (times[count - 1], times[0]);
    let within = client
        .get(&format!(
            "/v1/events?limit=100&created[gte]={oldest}&created[lte]={newest}"
        ))
        .await;
    assert_eq!(within.body["data"].as_array().unwrap().len(), count);
    let later = client
        .get(&format!("/v1/events?created[gt]={newest}"))
        .await;
    assert_eq!(later.body["data"], serde_json::json!([]));
    let earlier = client
        .get(&format!("/v1/events?created[lt]={oldest}"))
        .await;
    assert_eq!(earlier.body["data"], serde_json::json!([]));
    let exact = client
        .get(&format!("/v1/events?limit=100&created={newest}"))
        .await;
    assert_eq!(
        exact.body["data"].as_array().unwrap().len(),
        times.iter().filter(|time| **time == newest).count()
    );
    let bad = client.get("/v1/events?created[gte]=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["param"], "created[gte]");
    let unknown_bound = client.get("/v1/events?created[after]=1").await;
    assert_eq!(unknown_bound.body["error"]["param"], "created[after]");

    let succeeded = client
        .get("/v1/events?type=payment_intent.succeeded&limit=2")
        .await;
    let types: Vec<&Value> = succeeded.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| &event["type"])
        .collect();
    assert_eq!(
        types,
        ["payment_intent.succeeded", "payment_intent.succeeded"]
    );
    assert_eq!(succeeded.body["has_more"], true);

    // ending_before: the page just newer than the cursor, newest first.
    let before = client
        .get(&format!("/v1/events?limit=3&ending_before={}", ids[5]))
        .await;
    let page: Vec<&str> = before.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, &ids[2..5]);
    assert_eq!(before.body["has_more"], true);
    let newest = client
        .get(&format!("/v1/events?limit=3&ending_before={}", ids[2]))
        .await;
    assert_eq!(newest.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(newest.body["has_more"], false);
    let both = client
        .get(&format!(
            "/v1/events?ending_before={}&starting_after={}",
            ids[2], ids[5]
        ))
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    let missing = client.get("/v1/events?ending_before=evt_missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Since API version 2025-03-31.basil (the sandbox answers as a later one), cancelling an
/// authorized PaymentIntent releases the hold without a Refund: Stripe sends
/// `payment_intent.canceled` and no `charge.refunded`, and the charge stays uncaptured and
/// unrefunded.
#[tokio::test]
async fn cancelling_an_authorized_intent_releases_the_hold_without_a_refund() {
    let sandbox = sandbox(default_config()).await;
    let client = Client::new(&sandbox);
    let held = client
        .post(
            "/v1/payment_intents",
            "amount=2500&currency=usd&capture_method=manual&payment_method=pm_card_visa&confirm=true",
        )
        .await;
    assert_eq!(held.body["status"], "requires_capture");
    let id = held.body["id"].as_str().unwrap();
    let canceled = client
        .post(&format!("/v1/payment_intents/{id}/cancel"), "")
        .await;
    assert_eq!(canceled.body["status"], "canceled");
    assert_eq!(canceled.body["amount_capturable"], 0);
    assert_eq!(canceled.body["amount_received"], 0);
    let charge = client
        .get(&format!(
            "/v1/charges/{}",
            canceled.body["latest_charge"].as_str().unwrap()
        ))
        .await;
    assert_eq!(charge.body["captured"], false, "{}", charge.body);
    assert_eq!(charge.body["amount_captured"], 0);
    assert_eq!(charge.body["amount_refunded"], 0);
    assert_eq!(charge.body["refunded"], false);
    assert_eq!(
        client.events_of_type("payment_intent.canceled").await.len(),
        1
    );
    for absent in ["charge.refunded", "refund.created", "charge.refund.updated"] {
        assert!(client.events_of_type(absent).await.is_empty(), "{absent}");
    }
    // Nothing was captured, so nothing moves in the balance.
    let transactions = client.get("/v1/balance_transactions").await;
    assert_eq!(transactions.body["data"], serde_json::json!([]));
}

/// Types of the events received so far, in arrival order, and each one's `pending_webhooks`.
fn arrived_types(received: &Received) -> Vec<(String, Value)> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| {
            let event: Value = serde_json::from_str(body).unwrap();
            (
                event["type"].as_str().unwrap().to_owned(),
                event["pending_webhooks"].clone(),
            )
        })
        .collect()
}

/// An endpoint receives only its `enabled_events`, as a Stripe endpoint does; every event is
/// still listed, and `pending_webhooks` counts the endpoints each one goes to.
#[tokio::test]
async fn an_endpoint_receives_only_its_enabled_events() {
    let (everything, chosen): (Received, Received) = (Arc::default(), Arc::default());
    let enabled = EnabledEvents::parse(["payment_intent.succeeded", "payout.failed"]).unwrap();
    let config = default_config()
        .with_webhook_url(&endpoint(everything.clone(), false).await)
        .unwrap()
        .with_webhook_endpoint(&endpoint(chosen.clone(), false).await, enabled)
        .unwrap();
    let sandbox = sandbox(config).await;
    let client = Client::new(&sandbox);
    let intent = client
        .post(
            "/v1/payment_intents",
            "amount=2500&currency=usd&payment_method=pm_card_visa&confirm=true",
        )
        .await;
    assert_eq!(intent.body["status"], "succeeded", "{}", intent.body);
    let stats = settled(&client).await;
    assert_eq!(stats["delivered"], 4, "{stats}");

    let mut all = arrived_types(&everything);
    all.sort_by(|left, right| left.0.cmp(&right.0));
    assert_eq!(
        all,
        [
            ("charge.succeeded".to_owned(), Value::from(1)),
            ("payment_intent.created".to_owned(), Value::from(1)),
            ("payment_intent.succeeded".to_owned(), Value::from(2)),
        ]
    );
    assert_eq!(
        arrived_types(&chosen),
        [("payment_intent.succeeded".to_owned(), Value::from(2))]
    );
    assert_eq!(client.events_of_type("charge.succeeded").await.len(), 1);
}

#[test]
fn enabled_events_are_stripe_event_types_or_the_wildcard_alone() {
    assert_eq!(EnabledEvents::parse(["*"]).unwrap(), EnabledEvents::All);
    let listed = EnabledEvents::parse(["charge.dispute.created", " refund.updated"]).unwrap();
    assert!(listed.includes("refund.updated"));
    assert!(!listed.includes("refund.created"));
    for refused in [
        vec!["*", "charge.succeeded"],
        vec![],
        vec![""],
        vec!["charge"],
        vec!["Charge.Succeeded"],
        vec!["charge..succeeded"],
    ] {
        let error = EnabledEvents::parse(refused.iter().copied()).unwrap_err();
        assert!(!error.to_string().is_empty(), "{refused:?}");
    }
    let letter = |n: usize| char::from(b'a' + u8::try_from(n % 26).unwrap());
    let many: Vec<String> = (0..=ledger_sandbox::MAX_ENABLED_EVENTS)
        .map(|n| format!("custom.{}{}", letter(n / 26), letter(n)))
        .collect();
    let error = EnabledEvents::parse(many.iter().map(String::as_str)).unwrap_err();
    assert!(error.to_string().starts_with("at most"), "{error}");
    let enough = &many[..ledger_sandbox::MAX_ENABLED_EVENTS];
    assert!(EnabledEvents::parse(enough.iter().map(String::as_str)).is_ok());
}
