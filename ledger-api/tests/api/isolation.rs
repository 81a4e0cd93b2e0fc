//! Authentication on every request, roles on every resolver, and environments that never see
//! each other.

use ledger_api::auth::{list_keys, revoke_key, Role};
use ledger_core::ids::Environment;
use serde_json::json;

use crate::helpers::*;

const PAYMENT_QUERY: &str = "query($id: UUID!) { payment(id: $id) { id status } }";

#[tokio::test]
async fn requests_without_a_valid_key_are_unauthenticated() {
    let app = spawn_app().await;
    for key in [
        None,
        Some("lk_test_nothex"),
        Some("lk_test_0123456789abcdef0123456789abcdef0123456789abcdef"),
    ] {
        let answer = app
            .graphql_as(key, PAYMENT_QUERY, json!({"id": uuid::Uuid::new_v4()}))
            .await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.error_code(), Some("UNAUTHENTICATED"));
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused() {
    let app = spawn_app().await;
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let keys = list_keys(app.database.pool()).await.unwrap();
    let record = keys
        .iter()
        .find(|key| {
            support.starts_with(&key.key_prefix)
                && key.role == Role::Support
                && key.environment == Environment::Test
        })
        .unwrap();
    revoke_key(app.database.pool(), record.id).await.unwrap();
    let answer = app
        .graphql_as(
            Some(&support),
            PAYMENT_QUERY,
            json!({"id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn a_key_revoked_while_in_use_is_refused_within_the_cache_bound() {
    let app = spawn_app().await;
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let query = |key: String| {
        let app = &app;
        async move {
            app.graphql_as(
                Some(&key),
                PAYMENT_QUERY,
                json!({"id": uuid::Uuid::new_v4()}),
            )
            .await
        }
    };
    assert_eq!(query(support.clone()).await.error_code(), None);
    let keys = list_keys(app.database.pool()).await.unwrap();
    let record = keys
        .iter()
        .find(|key| {
            support.starts_with(&key.key_prefix)
                && key.role == Role::Support
                && key.environment == Environment::Test
        })
        .unwrap();
    // Revoked by another process: this server learns of it when its cached verification ends.
    revoke_key(app.database.pool(), record.id).await.unwrap();
    tokio::time::sleep(ledger_api::auth::KEY_CACHE_TTL + std::time::Duration::from_millis(200))
        .await;
    assert_eq!(query(support).await.error_code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn roles_limit_what_a_key_may_do() {
    let app = spawn_app().await;
    let head = app.log_head().await;
    for role in [Role::Support, Role::Finance, Role::Auditor] {
        let key = app.key(role, Environment::Test).to_owned();
        let answer = app
            .graphql_as(
                Some(&key),
                &mutation("initiatePayment", "InitiatePaymentInput"),
                json!({"input": {"idempotencyKey": format!("{role}"), "orderId": "o", "merchantId": "m",
                       "amount": "1.00", "currency": "USD"}}),
            )
            .await;
        assert_eq!(answer.error_code(), Some("FORBIDDEN"), "{role}");
    }
    assert_eq!(app.log_head().await, head);
    let service = app.key(Role::Service, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&service),
            "{ events(first: 10) { position } }",
            json!({}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("FORBIDDEN"));
    let auditor = app.key(Role::Auditor, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&auditor),
            "{ events(first: 10) { position } }",
            json!({}),
        )
        .await;
    answer.data();
}

#[tokio::test]
async fn a_test_key_cannot_see_or_touch_live_payments() {
    let app = spawn_app().await;
    let live_service = app.key(Role::Service, Environment::Live).to_owned();
    let answer = app
        .graphql_as(
            Some(&live_service),
            &mutation("initiatePayment", "InitiatePaymentInput"),
            json!({"input": {"idempotencyKey": "live-1", "orderId": "o", "merchantId": "m",
                   "amount": "5.00", "currency": "EUR", "captureMode": "AUTOMATIC"}}),
        )
        .await;
    let live_id = answer.data()["initiatePayment"]["payment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let head = app.log_head().await;
    for role in Role::ALL {
        let key = app.key(role, Environment::Test).to_owned();
        let answer = app
            .graphql_as(Some(&key), PAYMENT_QUERY, json!({"id": live_id}))
            .await;
        if answer.error_code().is_none() {
            assert_eq!(answer.data()["payment"], serde_json::Value::Null, "{role}");
        }
        let history = app
            .graphql_as(
                Some(&key),
                "query($id: UUID!) { events(streamId: $id) { position } }",
                json!({"id": live_id}),
            )
            .await;
        if history.error_code().is_none() {
            assert_eq!(history.data()["events"], json!([]), "{role}");
        }
    }
    let test_admin = app.key(Role::Admin, Environment::Test).to_owned();
    for (name, input) in [
        (
            "recordAuthorization",
            json!({"idempotencyKey": "x1", "paymentId": live_id, "outcome": "APPROVED"}),
        ),
        (
            "capturePayment",
            json!({"idempotencyKey": "x2", "paymentId": live_id}),
        ),
        (
            "voidPayment",
            json!({"idempotencyKey": "x3", "paymentId": live_id}),
        ),
        (
            "refundPayment",
            json!({"idempotencyKey": "x4", "paymentId": live_id}),
        ),
        (
            "openDispute",
            json!({"idempotencyKey": "x5", "paymentId": live_id, "disputeId": "d", "amount": "1.00", "reason": "fraud"}),
        ),
        (
            "recordRefundOutcome",
            json!({"idempotencyKey": "x6", "paymentId": live_id, "refundId": "r", "outcome": "SUCCEEDED"}),
        ),
        (
            "submitDisputeEvidence",
            json!({"idempotencyKey": "x7", "paymentId": live_id, "disputeId": "d"}),
        ),
        (
            "resolveDispute",
            json!({"idempotencyKey": "x8", "paymentId": live_id, "disputeId": "d", "outcome": "WON"}),
        ),
        (
            "initiatePayment",
            json!({"idempotencyKey": "x9", "paymentId": live_id, "orderId": "o", "merchantId": "m", "amount": "1.00", "currency": "USD"}),
        ),
    ] {
        let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
        let answer = app
            .graphql_as(
                Some(&test_admin),
                &mutation(name, &input_type),
                json!({"input": input}),
            )
            .await;
        assert!(
            matches!(
                answer.error_code(),
                Some("NOT_FOUND") | Some("RULE_VIOLATION")
            ),
            "{name}: {:?}",
            answer.body
        );
    }
    assert_eq!(app.log_head().await, head);
}
