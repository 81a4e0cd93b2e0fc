//! Limits on everything: query depth, page size, body size.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_too_deep_query_is_refused() {
    let app = spawn_app().await;
    let mut query = String::from("__typename");
    // Twenty-five levels of introspection: valid GraphQL, deeper than the schema allows.
    for _ in 0..5 {
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

/// The query GraphiQL, Apollo, code generators and Python's gql send to load the schema.
#[tokio::test]
async fn the_standard_introspection_query_is_answered() {
    let app = spawn_app().await;
    let query = include_str!("../fixtures/introspection_query.graphql");
    let answer = app.graphql(query, json!({})).await;
    assert_eq!(answer.error_code(), None, "{:?}", answer.body);
    let schema = &answer.data()["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query");
    assert_eq!(schema["subscriptionType"]["name"], "Subscription");
    let types = schema["types"].as_array().unwrap();
    assert!(types.iter().any(|kind| kind["name"] == "Payment"));
}

/// Aliases cannot multiply a page: the complexity of a list counts its `first`.
#[tokio::test]
async fn aliases_of_large_pages_add_up_to_a_refusal() {
    let app = spawn_app().await;
    let auditor = app
        .key(
            ledger_api::auth::Role::Auditor,
            ledger_core::ids::Environment::Test,
        )
        .to_owned();
    let page = "events(first: 500) { position streamId version type schemaVersion recordedAt payload hash }";
    let one = app
        .graphql_as(Some(&auditor), &format!("{{ {page} }}"), json!({}))
        .await;
    assert_eq!(one.error_code(), None, "{:?}", one.body);
    let aliased = format!("{{ a: {page} b: {page} c: {page} }}");
    let answer = app.graphql_as(Some(&auditor), &aliased, json!({})).await;
    assert_eq!(
        answer.error_code(),
        Some("VALIDATION_ERROR"),
        "{:?}",
        answer.body
    );
    assert_eq!(answer.body["data"], serde_json::Value::Null);
}

/// Queries waiting for a position share one reading of the checkpoints: twenty of them
/// waiting the whole five seconds read the database about as often as one would, not twenty
/// times as often in a tight loop.
#[tokio::test]
async fn waiting_for_a_position_does_not_poll_in_a_tight_loop() {
    let app = spawn_app_without_projector().await;
    let id = initiate(&app, "wait-1", "1.00", "MANUAL").await;
    let head = app.log_head().await;
    let reads = "ledger_read_model_wait_checkpoint_reads_total";
    let before = series(&metrics(&app).await, reads);
    let started = std::time::Instant::now();
    let waits = (0..20).map(|_| {
        app.graphql(
            "query($at: Position) { payments(waitForPosition: $at) { edges { node { id } } } }",
            json!({"at": head.to_string()}),
        )
    });
    for answer in futures::future::join_all(waits).await {
        assert_eq!(
            answer.error_code(),
            Some("UNAVAILABLE"),
            "{:?}",
            answer.body
        );
    }
    let waited = started.elapsed();
    let read = series(&metrics(&app).await, reads) - before;
    // At most one reading per 20 ms for the whole process (plus other tests' waits, which
    // end at once): a tight loop of 20 waiters polling every 20 ms would read 5,000 times.
    let bound = waited.as_millis() as f64 / 20.0 + 50.0;
    assert!(
        read >= 1.0 && read <= bound,
        "{read} readings in {waited:?} (id {id})"
    );
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
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION_ERROR");
    assert_eq!(body["errors"][0]["extensions"]["retryable"], false);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("larger than"));
    assert_eq!(app.log_head().await, head);
}

/// A panic on a GraphQL path is caught (the server goes on) and answered as INTERNAL in
/// GraphQL's shape, with a message that does not invite the same request again; so is a
/// timeout's 408, as UNAVAILABLE. The routes here stand in for a resolver that panics and one
/// that runs out of time: none of the real ones does on purpose.
#[tokio::test]
async fn a_panic_and_a_timeout_are_answered_in_graphql_shape() {
    use axum::http::StatusCode;
    use axum::routing::post;
    let app = spawn_app().await;
    let failing = axum::Router::new().route(
        "/commands/failing",
        post(|body: String| async move {
            if body == "panic" {
                panic!("a resolver panicked");
            }
            (StatusCode::REQUEST_TIMEOUT, "timed out")
        }),
    );
    let routes = ledger_api::http::router(app.state.clone(), failing);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await });

    for (body, status, code, retryable) in [
        ("panic", 500, "INTERNAL", false),
        ("slow", 408, "UNAVAILABLE", true),
    ] {
        let response = app
            .client
            .post(format!("{address}/commands/failing"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        let answer: serde_json::Value = response.json().await.unwrap();
        let error = &answer["errors"][0];
        assert_eq!(error["extensions"]["code"], code, "{answer}");
        assert_eq!(error["extensions"]["retryable"], retryable, "{answer}");
        if code == "INTERNAL" {
            let message = error["message"].as_str().unwrap();
            assert!(!message.contains("retried"), "{message}");
            assert!(!message.contains("panicked"), "no detail leaks: {message}");
        }
    }
    let health = app
        .client
        .get(format!("{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status().as_u16(),
        200,
        "the server goes on after a panic"
    );
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

/// Operation names are the client's text: counted by name, many names would make `/metrics`
/// grow without bound. Only the schema's own operations are counted by name.
#[tokio::test]
async fn client_chosen_operation_names_do_not_become_metric_labels() {
    let app = spawn_app().await;
    let key = app.key(
        ledger_api::auth::Role::Admin,
        ledger_core::ids::Environment::Test,
    );
    let send = |operation_name: String, query: &'static str| {
        app.client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(key)
            .json(&json!({"query": query, "operationName": operation_name}))
            .send()
    };
    send(
        "payments".to_owned(),
        "query payments { payments(first: 1) { edges { cursor } } }",
    )
    .await
    .unwrap();
    let before = metrics(&app).await;
    let random: Vec<String> = (0..200)
        .map(|_| format!("op{}", uuid::Uuid::new_v4().simple()))
        .collect();
    for name in &random {
        let query = "query q { __typename }";
        // The name need not match the document for it to reach the label.
        send(name.clone(), query).await.unwrap();
    }
    let after = metrics(&app).await;
    for name in &random {
        assert!(!after.contains(name.as_str()), "{name} became a label");
    }
    assert!(
        after.contains("operation=\"payments\""),
        "the schema's own operation is counted by name:\n{after}"
    );
    assert!(after.contains("operation=\"other\""), "{after}");
    // Other tests share the recorder and add their own series, so the size is compared with
    // room for them, far below what 200 new series would add.
    assert!(
        after.len() < before.len() + 20_000,
        "{} bytes before, {} after",
        before.len(),
        after.len()
    );
}
