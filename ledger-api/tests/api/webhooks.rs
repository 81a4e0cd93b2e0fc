//! The server mounts the Stripe webhook route when secrets are configured, and support can
//! find each delivery through GraphQL.

use ledger_api::auth::Role;
use ledger_core::ids::Environment;
use ledger_stripe::gateway::{sign, WebhookSecret};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_signed_stripe_event_is_applied_and_visible_to_support() {
    let app = spawn_app().await;
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ledger-stripe/tests/fixtures/stripe/payment_intent.created.json"
    ))
    .unwrap();
    let secret = WebhookSecret::new(Environment::Test, WEBHOOK_SECRET).unwrap();
    let signature = sign(&secret, chrono::Utc::now().timestamp(), &body);
    let response = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header("Stripe-Signature", signature)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(app.log_head().await, 1);

    let forged = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header("Stripe-Signature", "t=1,v1=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 400);
    assert_eq!(app.log_head().await, 1);

    let support = app.key(Role::Support, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&support),
            "query($id: String) { webhookDeliveries(stripeEventId: $id) { stripeEventId eventType outcome deliveryCount } }",
            json!({"id": "evt_3MtwBwLkdIwHu7ix0sMPjSdz"}),
        )
        .await;
    let deliveries = &answer.data()["webhookDeliveries"];
    assert_eq!(deliveries[0]["outcome"], "applied");
    assert_eq!(deliveries[0]["eventType"], "payment_intent.created");
    let live_support = app.key(Role::Support, Environment::Live).to_owned();
    let answer = app
        .graphql_as(
            Some(&live_support),
            "{ webhookDeliveries { stripeEventId } }",
            json!({}),
        )
        .await;
    assert_eq!(answer.data()["webhookDeliveries"], json!([]));
}

#[tokio::test]
async fn webhook_outcomes_are_counted_in_metrics() {
    let app = spawn_app().await;
    let applied = "ledger_webhook_deliveries_total{outcome=\"applied\"}";
    let duplicate = "ledger_webhook_deliveries_total{outcome=\"duplicate\"}";
    let rejected = "ledger_webhook_deliveries_total{outcome=\"rejected\"}";
    let bad_signature = "ledger_webhook_rejections_total{code=\"no_secret_matched\"}";
    let answered = "ledger_webhook_processing_seconds_count";
    let before = metrics(&app).await;

    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ledger-stripe/tests/fixtures/stripe/payment_intent.created.json"
    ))
    .unwrap();
    let secret = WebhookSecret::new(Environment::Test, WEBHOOK_SECRET).unwrap();
    for signature in [
        sign(&secret, chrono::Utc::now().timestamp(), &body),
        sign(&secret, chrono::Utc::now().timestamp(), &body),
        format!("t={},v1={}", chrono::Utc::now().timestamp(), "0".repeat(64)),
    ] {
        app.client
            .post(format!("{}/webhooks/stripe", app.address))
            .header("Stripe-Signature", signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
    }

    let after = metrics(&app).await;
    // Other tests of this binary share the recorder, so counts can only be said to have grown
    // by at least this test's deliveries.
    for (series_name, at_least) in [
        (applied, 1.0),
        (duplicate, 1.0),
        (rejected, 1.0),
        (bad_signature, 1.0),
        (answered, 3.0),
    ] {
        let grown = series(&after, series_name) - series(&before, series_name);
        assert!(
            grown >= at_least,
            "{series_name} grew by {grown}, expected at least {at_least}\n{after}"
        );
    }
}

/// A refund parked because its payment did not exist applies once the payment is created
/// through GraphQL: no later webhook would retry it, the sweep does.
#[tokio::test]
async fn the_sweep_applies_an_event_whose_prerequisite_came_through_the_api() {
    let app = spawn_app().await;
    let payment_intent = "pi_3SweepA1b2c3d4";
    let mut event: serde_json::Value = serde_json::from_str(include_str!(
        "../../../ledger-stripe/tests/fixtures/stripe/refund.updated.json"
    ))
    .unwrap();
    event["id"] = json!("evt_3SweepRefund");
    event["created"] = json!(chrono::Utc::now().timestamp());
    event["data"]["object"]["payment_intent"] = json!(payment_intent);
    let body = serde_json::to_vec(&event).unwrap();
    let secret = WebhookSecret::new(Environment::Test, WEBHOOK_SECRET).unwrap();
    let answer: serde_json::Value = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header(
            "Stripe-Signature",
            sign(&secret, chrono::Utc::now().timestamp(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "parked", "{answer}");

    let payment_id =
        ledger_stripe::gateway::mapping::payment_id_for_payment_intent(payment_intent).to_string();
    payment_mutation(
        &app,
        "initiatePayment",
        json!({"idempotencyKey": "sweep-init", "paymentId": payment_id, "orderId": "o-sweep",
               "merchantId": "default", "amount": "20.00", "currency": "USD"}),
    )
    .await;
    authorize(&app, &payment_id).await;
    payment_mutation(
        &app,
        "capturePayment",
        json!({"idempotencyKey": "sweep-capture", "paymentId": payment_id}),
    )
    .await;

    let webhooks = app.state.app.webhooks.clone().expect("webhooks configured");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sweep = tokio::spawn(ledger_stripe::webhooks::sweep_parked(
        webhooks,
        std::time::Duration::from_millis(50),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut refunds = json!([]);
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let answer = app
            .graphql(
                "query($id: UUID!) { payment(id: $id) { refunds { refundId amount status } } }",
                json!({"id": payment_id}),
            )
            .await;
        refunds = answer.data()["payment"]["refunds"].clone();
        if refunds != json!([]) {
            break;
        }
    }
    let _ = stop.send(());
    sweep.await.unwrap();
    assert_eq!(
        refunds[0]["refundId"], "re_3MtwBwLkdIwHu7ix2BG9Z5Dn",
        "{refunds}"
    );
    assert_eq!(refunds[0]["status"], "SUCCEEDED");
}

/// A refund parked more than 72 hours ago is given up on by the sweep: support sees its
/// delivery as `expired` through GraphQL, `/metrics` counts it, and it is never applied.
#[tokio::test]
async fn a_parked_event_past_its_age_limit_expires_visibly() {
    let app = spawn_app().await;
    let expired_series = "ledger_webhook_parked_expired_total";
    let before = series(&metrics(&app).await, expired_series);
    let mut event: serde_json::Value = serde_json::from_str(include_str!(
        "../../../ledger-stripe/tests/fixtures/stripe/refund.updated.json"
    ))
    .unwrap();
    event["id"] = json!("evt_3ExpiredRefund");
    event["data"]["object"]["payment_intent"] = json!("pi_3ExpiredA1b2c3");
    let body = serde_json::to_vec(&event).unwrap();
    let secret = WebhookSecret::new(Environment::Test, WEBHOOK_SECRET).unwrap();
    let answer: serde_json::Value = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header(
            "Stripe-Signature",
            sign(&secret, chrono::Utc::now().timestamp(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "parked", "{answer}");
    sqlx::query("UPDATE webhook_parked SET parked_at = now() - interval '73 hours'")
        .execute(app.database.pool())
        .await
        .unwrap();

    let webhooks = app.state.app.webhooks.clone().expect("webhooks configured");
    let resolved = ledger_stripe::webhooks::retry_all_parked(&webhooks, Environment::Test)
        .await
        .unwrap();
    assert_eq!(resolved, 0, "nothing was applied");
    assert_eq!(app.log_head().await, 0);

    let support = app.key(Role::Support, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&support),
            "query($id: String) { webhookDeliveries(stripeEventId: $id) { outcome detail } }",
            json!({"id": "evt_3ExpiredRefund"}),
        )
        .await;
    let delivery = &answer.data()["webhookDeliveries"][0];
    assert_eq!(delivery["outcome"], "expired", "{answer:?}");
    assert!(
        delivery["detail"].as_str().unwrap().contains("72 hours"),
        "{delivery}"
    );
    let grown = series(&metrics(&app).await, expired_series) - before;
    assert!(grown >= 1.0, "{expired_series} grew by {grown}");
}

/// A server started before its webhook secret is configured still answers Stripe: 503, so
/// Stripe retries the event, with a message an operator can act on; nothing is recorded.
#[tokio::test]
async fn without_secrets_the_webhook_route_asks_stripe_to_retry() {
    let app = spawn_app_with(ledger_api::server::ServerConfig::default()).await;
    let response = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header("Stripe-Signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("LEDGER_STRIPE_WEBHOOK_SECRETS"),
        "{message}"
    );
    assert_eq!(app.log_head().await, 0);
}
