//! Limits on everything: query depth, page size, body size.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_too_deep_query_is_refused() {
    let app = spawn_app().await;
    let mut query = String::from("__typename");
    // Fifteen levels of introspection: valid GraphQL, deeper than the schema allows.
    for _ in 0..3 {
        query = format!("ofType {{ fields {{ type {{ ofType {{ {query} }} }} }} }}");
    }
    let query = format!("{{ __schema {{ types {{ fields {{ type {{ {query} }} }} }} }} }}");
    let answer = app.graphql(&query, json!({})).await;
    let message = answer.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("nested too deep"), "{:?}", answer.body);
    assert_eq!(answer.body["data"], serde_json::Value::Null);
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));
    assert_eq!(answer.body["errors"][0]["extensions"]["retryable"], false);
}

#[tokio::test]
async fn syntax_errors_and_unknown_fields_carry_a_code_too() {
    let app = spawn_app().await;
    for query in ["{ payment(id: ", "{ paymentz { id } }"] {
        let answer = app.graphql(query, json!({})).await;
        assert_eq!(
            answer.error_code(),
            Some("VALIDATION_ERROR"),
            "{:?}",
            answer.body
        );
    }
    let answer = app
        .graphql(
            "query($id: UUID!) { payment(id: $id) { id } }",
            json!({"id": "not-a-uuid"}),
        )
        .await;
    assert_eq!(
        answer.error_code(),
        Some("VALIDATION_ERROR"),
        "{:?}",
        answer.body
    );
}

#[tokio::test]
async fn a_huge_page_is_refused() {
    let app = spawn_app().await;
    let answer = app
        .graphql(
            "query($id: UUID!) { events(streamId: $id, first: 100000) { position } }",
            json!({"id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));
}

#[tokio::test]
async fn an_oversized_body_is_refused_and_records_nothing() {
    let app = spawn_app().await;
    let head = app.log_head().await;
    let padding = "x".repeat(ledger_api::http::MAX_BODY_BYTES + 1);
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.key(
            ledger_api::auth::Role::Service,
            ledger_core::ids::Environment::Test,
        ))
        .header("content-type", "application/json")
        .body(json!({"query": "{ __typename }", "variables": {"padding": padding}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(app.log_head().await, head);
}

#[tokio::test]
async fn malformed_json_is_a_client_error() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.key(
            ledger_api::auth::Role::Service,
            ledger_core::ids::Environment::Test,
        ))
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let id = initiate(&app, "metrics-1", "1.00", "MANUAL").await;
    assert!(!id.is_empty());
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("ledger_graphql_requests_total"), "{text}");
}
