//! `POST /commands`: bulk commands as newline-delimited JSON, independent or atomic.

use ledger_api::auth::Role;
use ledger_core::ids::Environment;
use ledger_core::payment::PaymentState;
use ledger_store::state_cache::StreamSummary;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

/// The answer to a bulk request: its status and, for a 200, one JSON value per line.
struct Bulk {
    status: u16,
    lines: Vec<Value>,
    body: String,
}

async fn post(app: &TestApp, key: Option<&str>, query: &str, body: String) -> Bulk {
    post_as(app, key, query, "application/x-ndjson", body).await
}

async fn post_as(app: &TestApp, key: Option<&str>, query: &str, kind: &str, body: String) -> Bulk {
    let mut request = app
        .client
        .post(format!("{}/commands{query}", app.address))
        .header("content-type", kind)
        .body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let lines = if status == 200 {
        body.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    } else {
        Vec::new()
    };
    Bulk {
        status,
        lines,
        body,
    }
}

fn service(app: &TestApp) -> Option<&str> {
    Some(app.key(Role::Service, Environment::Test))
}

fn ndjson(lines: &[Value]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

fn initiate_line(key: &str, payment_id: Uuid, order: &str) -> Value {
    json!({"command": "initiatePayment", "input": {
        "idempotencyKey": key, "paymentId": payment_id, "orderId": order,
        "merchantId": "merchant-1", "amount": "10.00", "currency": "USD"}})
}

fn authorize_line(key: &str, payment_id: Uuid) -> Value {
    json!({"command": "recordAuthorization", "input": {
        "idempotencyKey": key, "paymentId": payment_id, "outcome": "APPROVED"}})
}

fn capture_line(key: &str, payment_id: Uuid) -> Value {
    json!({"command": "capturePayment", "input": {
        "idempotencyKey": key, "paymentId": payment_id, "amount": "10.00"}})
}

#[tokio::test]
async fn independent_lines_answer_in_order_and_a_refused_line_refuses_nothing_else() {
    let app = spawn_app().await;
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut lines: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| initiate_line(&format!("init-{n}"), *id, &format!("order-{n}")).to_string())
        .collect();
    lines.insert(
        1,
        capture_line("capture-missing", Uuid::new_v4()).to_string(),
    );
    lines.insert(3, "{not json".to_owned());
    lines.push(json!({"command": "dropTables", "input": {}}).to_string());
    let answer = post(&app, service(&app), "", lines.join("\n")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let got = &answer.lines;
    assert_eq!(got.len(), 6);
    for (line, n) in [(0, 0), (2, 1), (4, 2)] {
        assert_eq!(got[line]["payment"]["orderId"], format!("order-{n}"));
        assert_eq!(got[line]["payment"]["status"], "INITIATED");
        assert_eq!(got[line]["replayed"], false);
        assert_eq!(got[line]["events"][0]["type"], "PaymentInitiated");
    }
    assert_eq!(got[1]["error"]["code"], "NOT_FOUND");
    assert_eq!(got[1]["error"]["retryable"], false);
    assert_eq!(got[3]["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(got[5]["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(app.log_head().await, 3);

    // A line's answer is the mutation's: the same command through GraphQL is its replay.
    let replay = payment_mutation(
        &app,
        "initiatePayment",
        initiate_line("init-1", ids[1], "order-1")["input"].clone(),
    )
    .await;
    assert_eq!(replay["replayed"], true);
    assert_eq!(replay["position"], got[2]["position"]);
    assert_eq!(replay["events"][0]["hash"], got[2]["events"][0]["hash"]);
    assert_eq!(replay["payment"]["id"], got[2]["payment"]["id"]);
}

#[tokio::test]
async fn a_rule_violation_carries_its_rule_as_the_mutation_would() {
    let app = spawn_app().await;
    let id = Uuid::new_v4();
    let lines = [
        initiate_line("i", id, "order-r"),
        authorize_line("a", id),
        json!({"command": "capturePayment", "input": {
            "idempotencyKey": "c", "paymentId": id, "amount": "11.00"}}),
    ];
    let answer = post(&app, service(&app), "?atomic=false", ndjson(&lines[..2])).await;
    assert_eq!(
        answer.lines[1]["payment"]["status"], "AUTHORIZED",
        "{}",
        answer.body
    );
    let answer = post(&app, service(&app), "", ndjson(&lines[2..])).await;
    assert_eq!(
        answer.lines[0]["error"]["code"], "RULE_VIOLATION",
        "{}",
        answer.body
    );
    assert_eq!(
        answer.lines[0]["error"]["rule"],
        "capture_exceeds_authorized"
    );
}

#[tokio::test]
async fn an_atomic_request_appends_all_or_nothing_and_replays_as_a_whole() {
    let app = spawn_app().await;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let good = vec![
        initiate_line("a-init-1", first, "order-a1"),
        authorize_line("a-auth-1", first),
        capture_line("a-cap-1", first),
        initiate_line("a-init-2", second, "order-a2"),
    ];
    // One refused line (a payment that does not exist): nothing is appended.
    let mut bad = good.clone();
    bad.insert(3, capture_line("a-cap-missing", Uuid::new_v4()));
    let head = app.log_head().await;
    let answer = post(&app, service(&app), "?atomic=true", ndjson(&bad)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.lines.len(), 5);
    assert_eq!(
        answer.lines[3]["error"]["code"], "NOT_FOUND",
        "{}",
        answer.body
    );
    for line in [0, 1, 2, 4] {
        let error = &answer.lines[line]["error"];
        assert_eq!(error["code"], "VALIDATION_ERROR", "{}", answer.body);
        assert!(
            error["message"].as_str().unwrap().contains("command 4"),
            "{error}"
        );
    }
    assert_eq!(app.log_head().await, head);

    // Each line decided on what the lines before it leave, all in one append.
    let answer = post(&app, service(&app), "?atomic=true", ndjson(&good)).await;
    let got = &answer.lines;
    assert_eq!(got[0]["payment"]["status"], "INITIATED", "{}", answer.body);
    assert_eq!(got[1]["payment"]["status"], "AUTHORIZED");
    assert_eq!(got[2]["payment"]["status"], "CAPTURED");
    assert_eq!(got[2]["payment"]["version"], "3");
    assert_eq!(got[2]["events"].as_array().unwrap().len(), 1);
    assert_eq!(got[3]["payment"]["orderId"], "order-a2");
    assert_eq!(app.log_head().await, head + 4);
    let recorded_at: Vec<&Value> = got
        .iter()
        .map(|line| &line["events"][0]["recordedAt"])
        .collect();
    assert!(
        recorded_at.iter().all(|time| *time == recorded_at[0]),
        "one transaction"
    );
    // Each payment's row keeps the state the unit's last line on it left: the fold of its
    // events, as another process reads it.
    let handler = &app.state.app.handler;
    for payment in [first, second] {
        let row = handler
            .store()
            .stored_stream(payment)
            .await
            .unwrap()
            .unwrap();
        let kept = row
            .folded::<PaymentState>()
            .expect("the unit's append keeps the payment's state");
        let (folded, history) = handler
            .load_with_history::<PaymentState>(payment)
            .await
            .unwrap();
        assert_eq!(kept.state, folded);
        assert_eq!(kept.summary, StreamSummary::default().after(&history));
    }

    // The same request again appends nothing and answers as before.
    let again = post(&app, service(&app), "?atomic=true", ndjson(&good)).await;
    assert_eq!(app.log_head().await, head + 4);
    for (before, after) in got.iter().zip(&again.lines) {
        assert_eq!(after["replayed"], true, "{}", again.body);
        assert_eq!(after["events"], before["events"]);
        assert_eq!(after["position"], before["position"]);
    }
}

#[tokio::test]
async fn bulk_commands_need_the_mutations_key_and_role() {
    let app = spawn_app().await;
    let line = ndjson(&[initiate_line("k", Uuid::new_v4(), "order-k")]);
    let answer = post(&app, None, "", line.clone()).await;
    assert_eq!(answer.status, 401);
    let support = Some(app.key(Role::Support, Environment::Test));
    let answer = post(&app, support, "", line.clone()).await;
    assert_eq!(
        answer.lines[0]["error"]["code"], "FORBIDDEN",
        "{}",
        answer.body
    );
    let answer = post(&app, support, "?atomic=true", line).await;
    assert_eq!(
        answer.lines[0]["error"]["code"], "FORBIDDEN",
        "{}",
        answer.body
    );
    assert_eq!(app.log_head().await, 0);
}

#[tokio::test]
async fn a_request_over_the_limits_is_refused_whole() {
    let app = spawn_app().await;
    let lines: Vec<Value> = (0..1_001)
        .map(|n| initiate_line(&format!("l-{n}"), Uuid::new_v4(), "order-l"))
        .collect();
    let answer = post(&app, service(&app), "", ndjson(&lines)).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("at most 1000"), "{}", answer.body);

    let mut large = initiate_line("big", Uuid::new_v4(), "order-big");
    large["input"]["paymentMethod"] = Value::from("x".repeat(1024 * 1024));
    let answer = post(&app, service(&app), "", ndjson(&[large])).await;
    assert_eq!(answer.status, 413, "{}", answer.body);

    let line = ndjson(&[initiate_line("ct", Uuid::new_v4(), "order-ct")]);
    let answer = post_as(&app, service(&app), "", "application/json", line).await;
    assert_eq!(answer.status, 415, "{}", answer.body);
    let error: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(error["errors"][0]["extensions"]["code"], "VALIDATION_ERROR");
    assert_eq!(app.log_head().await, 0);
}
