//! An id of another kind of stream names nothing of the kind asked for: `null` to a query,
//! `NOT_FOUND` to a command, a conflict to a webhook — never `INTERNAL`, never 503 forever.

use ledger_api::auth::Role;
use ledger_core::ids::Environment;
use ledger_stripe::gateway::{sign, WebhookSecret};
use serde_json::{json, Value};

use crate::helpers::*;

/// A payment captured and settled in a batch: the ids of both.
async fn payment_and_batch(app: &TestApp) -> (String, String) {
    let payment_id = initiate(app, "kinds-1", "40.00", "AUTOMATIC").await;
    authorize(app, &payment_id).await;
    let batch_id = uuid::Uuid::new_v4().to_string();
    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&finance),
            "mutation($input: RecordSettlementBatchInput!) { recordSettlementBatch(input: $input) { position } }",
            json!({"input": {"idempotencyKey": "kinds-batch", "batchId": batch_id, "merchantId": "merchant-1",
                   "currency": "USD",
                   "items": [{"paymentId": payment_id, "kind": "CAPTURE", "itemId": "automatic", "gross": "40.00", "fee": "1.20"}]}}),
        )
        .await;
    answer.data();
    (payment_id, batch_id)
}

#[tokio::test]
async fn a_query_for_an_id_of_another_kind_is_null() {
    let app = spawn_app().await;
    let (payment_id, batch_id) = payment_and_batch(&app).await;
    let admin = app.key(Role::Admin, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&admin),
            "query($id: UUID!) { payment(id: $id) { id } }",
            json!({"id": batch_id}),
        )
        .await;
    assert_eq!(answer.error_code(), None, "{answer:?}");
    assert_eq!(answer.data()["payment"], Value::Null);
    let answer = app
        .graphql_as(
            Some(&admin),
            "query($id: UUID!) { settlementBatch(id: $id) { id } }",
            json!({"id": payment_id}),
        )
        .await;
    assert_eq!(answer.error_code(), None, "{answer:?}");
    assert_eq!(answer.data()["settlementBatch"], Value::Null);
}

#[tokio::test]
async fn a_command_on_an_id_of_another_kind_is_not_found_and_records_nothing() {
    let app = spawn_app().await;
    let (_, batch_id) = payment_and_batch(&app).await;
    let head = app.log_head().await;
    for (name, input) in [
        (
            "capturePayment",
            json!({"idempotencyKey": "k-cap", "paymentId": batch_id}),
        ),
        (
            "initiatePayment",
            json!({"idempotencyKey": "k-init", "paymentId": batch_id, "orderId": "o",
                   "merchantId": "m", "amount": "1.00", "currency": "USD"}),
        ),
    ] {
        let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
        let answer = app
            .graphql(&mutation(name, &input_type), json!({"input": input}))
            .await;
        assert_eq!(answer.error_code(), Some("NOT_FOUND"), "{name}: {answer:?}");
    }
    assert_eq!(app.log_head().await, head);
}

#[tokio::test]
async fn a_webhook_naming_a_stream_of_another_kind_is_a_conflict() {
    let app = spawn_app().await;
    let (_, batch_id) = payment_and_batch(&app).await;
    let head = app.log_head().await;
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ledger-stripe/tests/fixtures/stripe/payment_intent.created.json"
    ))
    .unwrap();
    let mut event: Value = serde_json::from_slice(&fixture).unwrap();
    event["data"]["object"]["metadata"]["ledger_payment_id"] = json!(batch_id);
    let body = serde_json::to_vec(&event).unwrap();
    let secret = WebhookSecret::new(Environment::Test, WEBHOOK_SECRET).unwrap();
    let response = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header(
            "Stripe-Signature",
            sign(&secret, chrono::Utc::now().timestamp(), &body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "Stripe must not retry forever: {}",
        response.status()
    );
    assert_eq!(app.log_head().await, head);
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&support),
            "{ webhookDeliveries { outcome detail } }",
            json!({}),
        )
        .await;
    assert_eq!(
        answer.data()["webhookDeliveries"][0]["outcome"],
        "conflict",
        "{answer:?}"
    );
}
