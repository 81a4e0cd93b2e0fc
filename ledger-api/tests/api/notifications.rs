//! Notification endpoints through GraphQL: admins only, per environment, the secret shown at
//! creation and rotation only, inputs checked with VALIDATION_ERROR and nothing created.

use ledger_api::auth::Role;
use ledger_core::ids::Environment;
use serde_json::json;

use crate::helpers::*;

const CREATE: &str = r#"mutation($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) {
        endpoint { id url eventTypes status description } secret replayed
    }
}"#;

#[tokio::test]
async fn admins_manage_endpoints_in_their_environment() {
    let app = spawn_app().await;
    let admin = app.key(Role::Admin, Environment::Test).to_owned();
    let input = json!({"input": {
        "idempotencyKey": "endpoint-1",
        "url": "http://127.0.0.1:9/hooks",
        "eventTypes": ["payment.captured", "payout.paid"],
        "description": "payments team"
    }});
    let created = app.graphql_as(Some(&admin), CREATE, input.clone()).await;
    let created = created.data()["createWebhookEndpoint"].clone();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("lwhsec_"));
    assert_eq!(created["endpoint"]["status"], "ENABLED");
    assert_eq!(
        created["endpoint"]["eventTypes"],
        json!(["payment.captured", "payout.paid"])
    );
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();

    // A retry answers the same endpoint; the same key for another request is refused.
    let again = app.graphql_as(Some(&admin), CREATE, input).await;
    assert_eq!(again.data()["createWebhookEndpoint"]["endpoint"]["id"], id);
    assert_eq!(again.data()["createWebhookEndpoint"]["replayed"], true);
    let reused = app
        .graphql_as(
            Some(&admin),
            CREATE,
            json!({"input": {"idempotencyKey": "endpoint-1", "url": "http://127.0.0.1:9/other",
                             "eventTypes": ["*"]}}),
        )
        .await;
    assert_eq!(reused.error_code(), Some("IDEMPOTENCY_KEY_REUSED"));

    // Other roles may not, even to list.
    for role in [Role::Service, Role::Finance, Role::Support, Role::Auditor] {
        let refused = app
            .graphql_as(
                Some(app.key(role, Environment::Test)),
                "{ webhookEndpoints { id } }",
                json!({}),
            )
            .await;
        assert_eq!(refused.error_code(), Some("FORBIDDEN"), "{role:?}");
    }

    let listed = app
        .graphql_as(
            Some(&admin),
            "{ webhookEndpoints { id url status } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed.data()["webhookEndpoints"].as_array().unwrap().len(),
        1
    );
    assert!(
        !listed.body.to_string().contains(&secret),
        "the secret is shown once"
    );

    // The live environment sees none of it.
    let live_admin = app.key(Role::Admin, Environment::Live).to_owned();
    let live = app
        .graphql_as(Some(&live_admin), "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_eq!(live.data()["webhookEndpoints"], json!([]));
    let hidden = app
        .graphql_as(
            Some(&live_admin),
            "mutation($id: UUID!) { disableWebhookEndpoint(endpointId: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(hidden.error_code(), Some("NOT_FOUND"));

    let rotated = app
        .graphql_as(
            Some(&admin),
            "mutation($id: UUID!) { rotateWebhookEndpointSecret(endpointId: $id) {
                secret previousSecretExpiresAt endpoint { id } } }",
            json!({"id": id}),
        )
        .await;
    let rotated = &rotated.data()["rotateWebhookEndpointSecret"];
    assert_ne!(rotated["secret"], secret);
    assert!(rotated["previousSecretExpiresAt"].is_string());

    let disabled = app
        .graphql_as(
            Some(&admin),
            "mutation($id: UUID!) { disableWebhookEndpoint(endpointId: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        disabled.data()["disableWebhookEndpoint"]["status"],
        "DISABLED"
    );
    let deliveries = app
        .graphql_as(
            Some(&admin),
            "query($id: UUID!) { webhookEndpointDeliveries(endpointId: $id, first: 10) {
                id status attempts lastStatusCode lastLatencyMs nextAttemptAt } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deliveries.data()["webhookEndpointDeliveries"], json!([]));
}

#[tokio::test]
async fn bad_endpoint_inputs_are_validation_errors_and_create_nothing() {
    let app = spawn_app().await;
    let live_admin = app.key(Role::Admin, Environment::Live).to_owned();
    let cases = [
        ("http://hooks.example.com/", json!(["*"])),
        ("https://192.168.1.10/hook", json!(["*"])),
        ("https://169.254.169.254/latest", json!(["*"])),
        ("https://hooks.example.com/", json!(["payment.unknown"])),
        ("https://hooks.example.com/", json!([])),
        ("not a url", json!(["*"])),
    ];
    for (number, (url, types)) in cases.iter().enumerate() {
        let refused = app
            .graphql_as(
                Some(&live_admin),
                CREATE,
                json!({"input": {"idempotencyKey": format!("bad-{number}"), "url": url,
                                 "eventTypes": types}}),
            )
            .await;
        assert_eq!(
            refused.error_code(),
            Some("VALIDATION_ERROR"),
            "{url} {types}"
        );
    }
    let too_long = app
        .graphql_as(
            Some(&live_admin),
            CREATE,
            json!({"input": {"idempotencyKey": "long", "url": "https://hooks.example.com/",
                             "eventTypes": ["*"], "description": "x".repeat(600)}}),
        )
        .await;
    assert_eq!(too_long.error_code(), Some("VALIDATION_ERROR"));
    let listed = app
        .graphql_as(Some(&live_admin), "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_eq!(listed.data()["webhookEndpoints"], json!([]));
}
