//! Refusals: every rule violation and bad input gets its code and records nothing; idempotent
//! retries record nothing new, however concurrent.

use std::sync::Arc;

use ledger_api::auth::Role;
use ledger_core::ids::Environment;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_rule_violation_names_its_rule_and_records_nothing() {
    let app = spawn_app().await;
    let id = initiate(&app, "rv-1", "50.00", "MANUAL").await;
    authorize(&app, &id).await;
    let head = app.log_head().await;
    let answer = app
        .graphql(
            &mutation("capturePayment", "CapturePaymentInput"),
            json!({"input": {"idempotencyKey": "rv-1-cap", "paymentId": id, "amount": "50.01"}}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("RULE_VIOLATION"));
    assert_eq!(answer.error_rule(), Some("capture_exceeds_authorized"));
    assert_eq!(answer.body["errors"][0]["extensions"]["retryable"], false);
    let message = answer.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("at most 50.00 USD"), "{message}");
    assert_eq!(app.log_head().await, head);
}

#[tokio::test]
async fn bad_amounts_are_validation_errors_that_record_nothing() {
    let app = spawn_app().await;
    let head = app.log_head().await;
    for (amount, currency) in [
        (json!("10.505"), "USD"),
        (json!("-5.00"), "USD"),
        (json!("0"), "USD"),
        (json!("1e3"), "USD"),
        (json!("99999999999999999"), "USD"),
        (json!("1.5"), "JPY"),
        (json!("10.00"), "XYZ"),
    ] {
        let answer = app
            .graphql(
                &mutation("initiatePayment", "InitiatePaymentInput"),
                json!({"input": {"idempotencyKey": format!("bad-{amount}-{currency}"), "orderId": "o",
                       "merchantId": "m", "amount": amount, "currency": currency}}),
            )
            .await;
        assert_eq!(
            answer.error_code(),
            Some("VALIDATION_ERROR"),
            "{amount} {currency}: {:?}",
            answer.body
        );
    }
    // A JSON number is refused outright: it could already have lost precision.
    let answer = app
        .graphql(
            &mutation("initiatePayment", "InitiatePaymentInput"),
            json!({"input": {"idempotencyKey": "float", "orderId": "o", "merchantId": "m",
                   "amount": 10.5, "currency": "USD"}}),
        )
        .await;
    assert!(answer.body["errors"].is_array(), "{:?}", answer.body);
    assert_eq!(app.log_head().await, head);
}

#[tokio::test]
async fn unknown_payments_are_not_found() {
    let app = spawn_app().await;
    let answer = app
        .graphql(
            &mutation("capturePayment", "CapturePaymentInput"),
            json!({"input": {"idempotencyKey": "nf", "paymentId": uuid::Uuid::new_v4()}}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("NOT_FOUND"));
    let answer = app
        .graphql(
            "query($id: UUID!) { payment(id: $id) { id } }",
            json!({"id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(answer.data()["payment"], serde_json::Value::Null);
}

#[tokio::test]
async fn fifty_concurrent_identical_requests_record_one_set_of_events() {
    let app = Arc::new(spawn_app().await);
    let id = initiate(&app, "idem-1", "100.00", "MANUAL").await;
    authorize(&app, &id).await;
    let head = app.log_head().await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = Arc::clone(&app);
            let id = id.clone();
            tokio::spawn(async move {
                app.graphql(
                    &mutation("capturePayment", "CapturePaymentInput"),
                    json!({"input": {"idempotencyKey": "same-key", "paymentId": id, "amount": "25.00", "final": false}}),
                )
                .await
            })
        })
        .collect();
    let mut positions = Vec::new();
    let mut replays = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        let result = &answer.data()["capturePayment"];
        positions.push(result["position"].clone());
        if result["replayed"] == true {
            replays += 1;
        }
        assert_eq!(result["events"].as_array().unwrap().len(), 1);
    }
    assert_eq!(replays, 49);
    assert!(positions.iter().all(|position| *position == positions[0]));
    assert_eq!(app.log_head().await, head + 1);
}

#[tokio::test]
async fn a_key_reused_with_another_input_is_refused() {
    let app = spawn_app().await;
    let id = initiate(&app, "reuse-1", "100.00", "MANUAL").await;
    authorize(&app, &id).await;
    let capture = |amount: &str| json!({"input": {"idempotencyKey": "reused", "paymentId": id, "amount": amount, "final": false}});
    let first = app
        .graphql(
            &mutation("capturePayment", "CapturePaymentInput"),
            capture("10.00"),
        )
        .await;
    first.data();
    let head = app.log_head().await;
    let second = app
        .graphql(
            &mutation("capturePayment", "CapturePaymentInput"),
            capture("11.00"),
        )
        .await;
    assert_eq!(second.error_code(), Some("IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(app.log_head().await, head);
}

#[tokio::test]
async fn large_refunds_need_an_admin() {
    let app = spawn_app().await;
    let id = initiate(&app, "big-1", "20000.00", "AUTOMATIC").await;
    authorize(&app, &id).await;
    let refund =
        json!({"input": {"idempotencyKey": "big-refund", "paymentId": id, "amount": "15000.00"}});
    let answer = app
        .graphql(
            &mutation("refundPayment", "RefundPaymentInput"),
            refund.clone(),
        )
        .await;
    assert_eq!(answer.error_code(), Some("FORBIDDEN"));
    let admin = app.key(Role::Admin, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&admin),
            &mutation("refundPayment", "RefundPaymentInput"),
            refund,
        )
        .await;
    assert_eq!(
        answer.data()["refundPayment"]["payment"]["refundPendingAmount"],
        "15000.00"
    );
}

#[tokio::test]
async fn webhook_idempotency_keys_are_reserved() {
    let app = spawn_app().await;
    let answer = app
        .graphql(
            &mutation("initiatePayment", "InitiatePaymentInput"),
            json!({"input": {"idempotencyKey": "stripe:evt_1", "orderId": "o", "merchantId": "m",
                   "amount": "1.00", "currency": "USD"}}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));
    assert_eq!(app.log_head().await, 0);
}
