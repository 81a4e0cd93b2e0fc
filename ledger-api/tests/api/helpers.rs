//! Spawns the real server on a free port against a fresh database, with a key for every role
//! and environment, and sends GraphQL over real HTTP.

use std::collections::HashMap;

use ledger_api::auth::{create_key, Role};
use ledger_api::http::ServerState;
use ledger_api::server::{application, ServerConfig};
use ledger_core::ids::{Environment, MerchantId};
use ledger_store::testing::TestDatabase;
use ledger_stripe::gateway::WebhookSecrets;
use ledger_stripe::webhooks::WebhookConfig;
use serde_json::{json, Value};

pub struct TestApp {
    pub address: String,
    pub state: ServerState,
    pub database: TestDatabase,
    pub client: reqwest::Client,
    keys: HashMap<(Role, Environment), String>,
}

/// The webhook secret every test server is configured with.
pub const WEBHOOK_SECRET: &str = "whsec_api_tests_0123456789abcdef";

/// The configuration of every test server: Stripe webhooks signed with [`WEBHOOK_SECRET`].
pub fn test_config() -> ServerConfig {
    let secrets = WebhookSecrets::parse(&format!("test:{WEBHOOK_SECRET}")).unwrap();
    ServerConfig {
        webhooks: Some(WebhookConfig::new(
            secrets,
            MerchantId::parse("default").unwrap(),
        )),
        ..ServerConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

pub async fn spawn_app_with(config: ServerConfig) -> TestApp {
    spawn(config, true).await
}

/// A server whose read models never move: what a query waiting for a position meets while
/// the projections are behind.
pub async fn spawn_app_without_projector() -> TestApp {
    spawn(test_config(), false).await
}

async fn spawn(config: ServerConfig, projector: bool) -> TestApp {
    spawn_on(TestDatabase::new().await, config, projector).await
}

/// A server on a database of the test's choosing (one on a cluster with a standby, say).
pub async fn spawn_on(database: TestDatabase, config: ServerConfig, projector: bool) -> TestApp {
    // As `ledger serve` does: the server works as its own database role, not as the owner.
    let serving = database.server_pool().await;
    let (state, routes) = application(serving.clone(), config).expect("application builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    // As `ledger serve` does: the read models follow the log in the background.
    if projector {
        tokio::spawn(
            ledger_projections::Projector::live(serving).follow(std::future::pending::<()>()),
        );
    }
    let mut keys = HashMap::new();
    for role in Role::ALL {
        for environment in [Environment::Test, Environment::Live] {
            let (key, _) = create_key(database.pool(), role, environment, "test")
                .await
                .unwrap();
            keys.insert((role, environment), key.reveal().to_owned());
        }
    }
    TestApp {
        address,
        state,
        database,
        client: reqwest::Client::new(),
        keys,
    }
}

/// A GraphQL answer: its data and the first error's extensions, if any.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    pub fn error_code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    pub fn error_rule(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["rule"].as_str()
    }
}

impl TestApp {
    pub fn key(&self, role: Role, environment: Environment) -> &str {
        &self.keys[&(role, environment)]
    }

    pub async fn graphql_as(&self, key: Option<&str>, query: &str, variables: Value) -> Answer {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer { status, body }
    }

    /// As the test environment's service.
    pub async fn graphql(&self, query: &str, variables: Value) -> Answer {
        self.graphql_as(
            Some(self.key(Role::Service, Environment::Test)),
            query,
            variables,
        )
        .await
    }

    pub async fn log_head(&self) -> u64 {
        self.database.store().head().await.unwrap().last_position
    }
}

pub const PAYMENT_FIELDS: &str = "id orderId merchantId environment status currency amount \
    authorizedAmount capturedAmount refundedAmount refundPendingAmount disputedAmount \
    refundableAmount captures { captureId amount } refunds { refundId amount status } \
    disputes { disputeId amount status } version";

pub fn mutation(name: &str, input_type: &str) -> String {
    format!(
        "mutation($input: {input_type}!) {{ {name}(input: $input) {{ \
            payment {{ {PAYMENT_FIELDS} }} events {{ position type version hash }} position replayed }} }}"
    )
}

/// Runs a payment mutation that must succeed and returns its result object.
pub async fn payment_mutation(app: &TestApp, name: &str, input: Value) -> Value {
    let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
    let answer = app
        .graphql(&mutation(name, &input_type), json!({"input": input}))
        .await;
    answer.data()[name].clone()
}

pub async fn initiate(app: &TestApp, key: &str, amount: &str, mode: &str) -> String {
    let result = payment_mutation(
        app,
        "initiatePayment",
        json!({"idempotencyKey": key, "orderId": "order-1", "merchantId": "merchant-1",
               "amount": amount, "currency": "USD", "captureMode": mode}),
    )
    .await;
    result["payment"]["id"].as_str().unwrap().to_owned()
}

pub async fn authorize(app: &TestApp, payment_id: &str) -> Value {
    payment_mutation(
        app,
        "recordAuthorization",
        json!({"idempotencyKey": format!("auth-{payment_id}"), "paymentId": payment_id,
               "outcome": "APPROVED", "authorizationCode": "A1B2C3"}),
    )
    .await
}

/// The value of one series in Prometheus text, zero when it was never recorded.
pub fn series(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

pub async fn metrics(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
