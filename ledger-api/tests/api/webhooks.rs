//! The server mounts the Stripe webhook route when secrets are configured, and support can
//! find each delivery through GraphQL.

use ledger_api::auth::Role;
use ledger_api::stripe::{sign, WebhookSecret};
use ledger_core::ids::Environment;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_signed_stripe_event_is_applied_and_visible_to_support() {
    let app = spawn_app().await;
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stripe/payment_intent.created.json"
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

/// The value of one series in Prometheus text, zero when it was never recorded.
fn series(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
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
        "/tests/fixtures/stripe/payment_intent.created.json"
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
