//! Refusals: every rule violation and bad input gets its code and records nothing; idempotent
//! retries record nothing new, however concurrent.

use std::sync::Arc;

use ledger_api::auth::Role;
use ledger_api::server::ServerConfig;
use ledger_core::ids::Environment;
use ledger_core::payment::RefundApprovalThresholds;
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

/// A refund of `amount` asked for with the service key, which may not approve large refunds.
async fn refund_as_service(app: &TestApp, id: &str, key: &str, amount: &str) -> Answer {
    app.graphql(
        &mutation("refundPayment", "RefundPaymentInput"),
        json!({"input": {"idempotencyKey": key, "paymentId": id, "amount": amount}}),
    )
    .await
}

#[tokio::test]
async fn small_refunds_that_add_up_past_the_threshold_need_an_admin() {
    let app = spawn_app().await;
    let id = initiate(&app, "split-1", "20000.00", "AUTOMATIC").await;
    authorize(&app, &id).await;
    let first = refund_as_service(&app, &id, "split-a", "6000.00").await;
    assert_eq!(
        first.data()["refundPayment"]["payment"]["refundPendingAmount"],
        "6000.00"
    );
    // 6,000 + 4,000 is exactly the default threshold of 10,000: still allowed.
    let second = refund_as_service(&app, &id, "split-b", "4000.00").await;
    assert_eq!(
        second.data()["refundPayment"]["payment"]["refundPendingAmount"],
        "10000.00"
    );
    let head = app.log_head().await;
    let third = refund_as_service(&app, &id, "split-c", "0.01").await;
    assert_eq!(third.error_code(), Some("FORBIDDEN"), "{third:?}");
    assert_eq!(
        app.log_head().await,
        head,
        "a refused refund records nothing"
    );
    // A refund that failed returned nothing, so it does not count.
    payment_mutation(
        &app,
        "recordRefundOutcome",
        json!({"idempotencyKey": "split-a-failed", "paymentId": id,
               "refundId": first.data()["refundPayment"]["payment"]["refunds"][0]["refundId"],
               "outcome": "FAILED", "failureReason": "card closed"}),
    )
    .await;
    let fourth = refund_as_service(&app, &id, "split-d", "5000.00").await;
    assert_eq!(
        fourth.data()["refundPayment"]["payment"]["refundPendingAmount"],
        "9000.00",
        "{fourth:?}"
    );
}

#[tokio::test]
async fn refund_thresholds_are_set_per_currency() {
    let app = spawn_app_with(ServerConfig {
        refund_approval: RefundApprovalThresholds::parse("USD:100,JPY:1500000").unwrap(),
        ..test_config()
    })
    .await;
    let yen = payment_mutation(
        &app,
        "initiatePayment",
        json!({"idempotencyKey": "yen", "orderId": "order-jpy", "merchantId": "merchant-1",
               "amount": "2000000", "currency": "JPY", "captureMode": "AUTOMATIC"}),
    )
    .await["payment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    authorize(&app, &yen).await;
    let allowed = refund_as_service(&app, &yen, "yen-1", "1500000").await;
    assert_eq!(
        allowed.data()["refundPayment"]["payment"]["refundPendingAmount"],
        "1500000"
    );
    assert_eq!(
        refund_as_service(&app, &yen, "yen-2", "1")
            .await
            .error_code(),
        Some("FORBIDDEN")
    );
    let dollars = initiate(&app, "usd", "500.00", "AUTOMATIC").await;
    authorize(&app, &dollars).await;
    assert_eq!(
        refund_as_service(&app, &dollars, "usd-1", "100.01")
            .await
            .error_code(),
        Some("FORBIDDEN")
    );
    // A currency the setting does not name has the documented default.
    let euros = payment_mutation(
        &app,
        "initiatePayment",
        json!({"idempotencyKey": "eur", "orderId": "order-eur", "merchantId": "merchant-1",
               "amount": "20000.00", "currency": "EUR", "captureMode": "AUTOMATIC"}),
    )
    .await["payment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    authorize(&app, &euros).await;
    let euro_refund = refund_as_service(&app, &euros, "eur-1", "10000.00").await;
    assert_eq!(
        euro_refund.data()["refundPayment"]["payment"]["refundPendingAmount"],
        "10000.00"
    );
    assert_eq!(
        refund_as_service(&app, &euros, "eur-2", "0.01")
            .await
            .error_code(),
        Some("FORBIDDEN")
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
