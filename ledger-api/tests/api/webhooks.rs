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
