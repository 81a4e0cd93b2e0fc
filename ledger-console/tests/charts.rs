//! The webhook health and launch metrics pages over real HTTP against the real server and a
//! fresh database: which roles see them, and that their numbers (tables, CSV downloads) are
//! those of webhooks sent to the real Stripe endpoint and payments made through GraphQL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ledger_api::auth::{create_key, Role};
use ledger_api::server::ServerConfig;
use ledger_core::ids::{Environment, MerchantId};
use ledger_stripe::gateway::{sign, WebhookSecret, WebhookSecrets};
use ledger_stripe::webhooks::WebhookConfig;
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WEBHOOK_SECRET: &str = "whsec_console_charts_0123456789";

mod support;
use support::{csrf_of, spawn_with, App};

async fn spawn() -> App {
    spawn_with(ServerConfig {
        webhooks: Some(WebhookConfig::new(
            WebhookSecrets::parse(&format!("test:{WEBHOOK_SECRET}")).unwrap(),
            MerchantId::parse("default").unwrap(),
        )),
        ..ServerConfig::default()
    })
    .await
}

fn cookie_of(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        .unwrap()
}

impl App {
    async fn key(&self, role: Role, environment: Environment) -> String {
        let (key, _) = create_key(self.database.pool(), role, environment, "charts")
            .await
            .unwrap();
        key.reveal().to_owned()
    }

    /// A console session of a new key of this role and environment.
    async fn session(&self, role: Role, environment: Environment) -> String {
        let key = self.key(role, environment).await;
        let form = self
            .client
            .get(format!("{}/console/sign-in", self.address))
            .send()
            .await
            .unwrap();
        let sign_in_cookie = cookie_of(&form, "ledger_console_sign_in");
        let token = csrf_of(&form.text().await.unwrap());
        let response = self
            .client
            .post(format!("{}/console/sign-in", self.address))
            .header(COOKIE, format!("ledger_console_sign_in={sign_in_cookie}"))
            .form(&[("key", key.as_str()), ("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        cookie_of(&response, "ledger_console_session")
    }

    async fn get(&self, path: &str, session: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .header(COOKIE, format!("ledger_console_session={session}"))
            .send()
            .await
            .unwrap()
    }

    async fn page(&self, path: &str, session: &str) -> String {
        let response = self.get(path, session).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.text().await.unwrap()
    }

    /// The CSV download: its rows as maps from the header's names.
    async fn csv(&self, path: &str, session: &str) -> Vec<BTreeMap<String, String>> {
        let response = self.get(path, session).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
        let text = response.text().await.unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        lines
            .map(|line| {
                header
                    .iter()
                    .zip(line.split(','))
                    .map(|(name, value)| ((*name).to_owned(), value.to_owned()))
                    .collect()
            })
            .collect()
    }

    /// Sends a Stripe event to the webhook endpoint, signed as Stripe would.
    async fn webhook(&self, event: &Value) -> Value {
        let body = serde_json::to_vec(event).unwrap();
        let secret = WebhookSecret::new(Environment::Test, WEBHOOK_SECRET).unwrap();
        let response = self
            .client
            .post(format!("{}/webhooks/stripe", self.address))
            .header(
                "Stripe-Signature",
                sign(&secret, chrono::Utc::now().timestamp(), &body),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn graphql(&self, key: &str, name: &str, input: Value) -> Value {
        let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
        let answer: Value = self
            .client
            .post(format!("{}/graphql", self.address))
            .bearer_auth(key)
            .json(&json!({
                "query": format!("mutation($input: {input_type}!) {{ {name}(input: $input) {{ position }} }}"),
                "variables": {"input": input},
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(answer.get("errors").is_none(), "{name}: {answer}");
        answer
    }

    /// Waits until every projection has applied the whole log.
    async fn caught_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (head, behind): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT last_position FROM log_head),
                        (SELECT count(*) FROM projection_checkpoints
                         WHERE position < (SELECT last_position FROM log_head))",
            )
            .fetch_one(self.database.pool())
            .await
            .unwrap();
            if head > 0 && behind == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the projections did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../ledger-stripe/tests/fixtures/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sum of a column over every row of a CSV download.
fn total(rows: &[BTreeMap<String, String>], column: &str) -> i64 {
    rows.iter()
        .map(|row| row[column].parse::<i64>().unwrap())
        .sum()
}

#[tokio::test]
async fn webhook_health_counts_what_the_stripe_endpoint_received() {
    let app = spawn().await;
    let now = chrono::Utc::now().timestamp();
    // Applied, then delivered again by Stripe.
    let mut created = fixture("payment_intent.created");
    created["created"] = json!(now);
    assert_eq!(app.webhook(&created).await["outcome"], "applied");
    app.webhook(&created).await;
    // Ignored: nothing for the ledger to record.
    let mut customer = fixture("customer.created");
    customer["created"] = json!(now);
    assert_eq!(app.webhook(&customer).await["outcome"], "ignored");
    // Parked: a refund of a payment the ledger does not hold.
    let mut refund = fixture("refund.updated");
    refund["id"] = json!("evt_charts_parked_refund");
    refund["created"] = json!(now);
    refund["data"]["object"]["payment_intent"] = json!("pi_charts_unknown");
    assert_eq!(app.webhook(&refund).await["outcome"], "parked");

    let support = app.session(Role::Support, Environment::Test).await;
    for by in ["hour", "day"] {
        let rows = app
            .csv(
                &format!("/console/webhook-health?by={by}&format=csv"),
                &support,
            )
            .await;
        assert_eq!(rows.len(), if by == "hour" { 48 } else { 14 });
        assert_eq!(total(&rows, "events"), 3, "{by}");
        assert_eq!(total(&rows, "succeeded"), 2, "{by}");
        assert_eq!(total(&rows, "redeliveries"), 1, "{by}");
        assert_eq!(total(&rows, "still_parked"), 1, "{by}");
        assert_eq!(total(&rows, "failed"), 0, "{by}");
        assert_eq!(total(&rows, "duplicates"), 0, "{by}");
        let busy = rows.iter().find(|row| row["events"] == "3").unwrap();
        assert_eq!(busy["success_percent"], "66.7");
        assert!(busy["mean_processing_ms"].parse::<i64>().unwrap() >= 0);
    }

    let page = app.page("/console/webhook-health", &support).await;
    assert!(page.contains(r#"href="/console/webhook-health" aria-current="page""#));
    // Two of three events reached a final outcome and one in three came twice: both past
    // their thresholds, so they stand out.
    assert!(page.contains("⚠ 66.7"), "{page}");
    assert!(page.contains("⚠ 1</td>"), "the redelivery stands out");
    assert!(page.contains("<strong>1</strong> event(s) parked now"));
    assert!(page.contains("fewer than 99%"));
    assert_eq!(page.matches(r#"<svg class="chart" role="img""#).count(), 3);
    assert!(page.contains("<polyline"), "the success rate is drawn");

    // A live key sees none of the test environment's deliveries.
    let live = app.session(Role::Admin, Environment::Live).await;
    let rows = app.csv("/console/webhook-health?format=csv", &live).await;
    assert_eq!(total(&rows, "events"), 0);

    // Roles: everyone who may read webhook deliveries in the API, and nobody else.
    for (role, allowed) in [
        (Role::Service, false),
        (Role::Support, true),
        (Role::Finance, true),
        (Role::Auditor, true),
        (Role::Admin, true),
    ] {
        let session = app.session(role, Environment::Test).await;
        let response = app.get("/console/webhook-health", &session).await;
        let expected = if allowed {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(response.status(), expected, "{role}");
        let payments = app.page("/console/payments", &session).await;
        assert_eq!(
            payments.contains(r#"href="/console/webhook-health""#),
            allowed,
            "{role}"
        );
    }
    let response = app.get("/console/webhook-health?by=week", &support).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// A payment of 10.00 USD of merchant `m-launch`, initiated through GraphQL; its id.
async fn initiate(app: &App, key: &str, name: &str, mode: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    app.graphql(
        key,
        "initiatePayment",
        json!({"idempotencyKey": format!("{name}-init"), "paymentId": id, "orderId": name,
               "merchantId": "m-launch", "amount": "10.00", "currency": "USD", "captureMode": mode}),
    )
    .await;
    id
}

async fn authorize(app: &App, key: &str, id: &str, decline_code: Option<&str>) {
    let input = match decline_code {
        None => {
            json!({"idempotencyKey": format!("{id}-auth"), "paymentId": id, "outcome": "APPROVED"})
        }
        Some(code) => json!({"idempotencyKey": format!("{id}-auth"), "paymentId": id,
                              "outcome": "DECLINED", "declineCode": code}),
    };
    app.graphql(key, "recordAuthorization", input).await;
}

#[tokio::test]
async fn launch_metrics_show_the_merchants_payments_settlements_and_payouts() {
    let app = spawn().await;
    let admin = app.key(Role::Admin, Environment::Test).await;
    // Four approved (three captured automatically), two declined.
    let refunded = initiate(&app, &admin, "launch-1", "AUTOMATIC").await;
    authorize(&app, &admin, &refunded, None).await;
    let disputed = initiate(&app, &admin, "launch-2", "AUTOMATIC").await;
    authorize(&app, &admin, &disputed, None).await;
    let settled = initiate(&app, &admin, "launch-3", "AUTOMATIC").await;
    authorize(&app, &admin, &settled, None).await;
    let uncaptured = initiate(&app, &admin, "launch-4", "MANUAL").await;
    authorize(&app, &admin, &uncaptured, None).await;
    let soft = initiate(&app, &admin, "launch-5", "AUTOMATIC").await;
    authorize(&app, &admin, &soft, Some("insufficient_funds")).await;
    let fraud = initiate(&app, &admin, "launch-6", "AUTOMATIC").await;
    authorize(&app, &admin, &fraud, Some("stolen_card")).await;
    app.graphql(
        &admin,
        "refundPayment",
        json!({"idempotencyKey": "launch-refund", "paymentId": refunded, "refundId": "re_launch"}),
    )
    .await;
    app.graphql(
        &admin,
        "recordRefundOutcome",
        json!({"idempotencyKey": "launch-refund-ok", "paymentId": refunded, "refundId": "re_launch",
               "outcome": "SUCCEEDED"}),
    )
    .await;
    app.graphql(
        &admin,
        "openDispute",
        json!({"idempotencyKey": "launch-dispute", "paymentId": disputed, "disputeId": "dp_launch",
               "amount": "10.00", "reason": "fraudulent"}),
    )
    .await;
    let batch_id = uuid::Uuid::new_v4().to_string();
    app.graphql(
        &admin,
        "recordSettlementBatch",
        json!({"idempotencyKey": "launch-batch", "batchId": batch_id, "merchantId": "m-launch",
               "currency": "USD", "reserve": "0.00",
               "items": [{"paymentId": settled, "kind": "CAPTURE", "itemId": "automatic",
                          "gross": "10.00", "fee": "0.30"}]}),
    )
    .await;
    app.graphql(
        &admin,
        "recordPayout",
        json!({"idempotencyKey": "launch-payout", "batchId": batch_id, "payoutId": "po_launch",
               "amount": "9.70", "status": "PAID"}),
    )
    .await;
    app.caught_up().await;

    let finance = app.session(Role::Finance, Environment::Test).await;
    let base = "/console/launch-metrics?merchant=m-launch&days=7";
    let today = chrono::Utc::now().date_naive().to_string();
    let daily = app
        .csv(&format!("{base}&format=csv&table=daily"), &finance)
        .await;
    assert_eq!(daily.len(), 1, "{daily:?}");
    let day = &daily[0];
    for (column, value) in [
        ("day", today.as_str()),
        ("currency", "USD"),
        ("payments_initiated", "6"),
        ("authorizations_approved", "4"),
        ("authorizations_declined", "2"),
        ("authorization_percent", "66.7"),
        ("captures", "3"),
        ("capture_percent", "75.0"),
        ("refunds_succeeded", "1"),
        ("refund_percent", "33.3"),
        ("disputes_opened", "1"),
        ("dispute_percent", "33.3"),
        ("settled_captures", "1"),
        ("mean_hours_capture_to_settlement", "0.0"),
    ] {
        assert_eq!(day[column], value, "{column}");
    }
    let declines = app
        .csv(&format!("{base}&format=csv&table=declines"), &finance)
        .await;
    let by_code: BTreeMap<&str, (&str, &str, &str)> = declines
        .iter()
        .map(|row| {
            (
                row["decline_code"].as_str(),
                (
                    row["failure_category"].as_str(),
                    row["decline_category"].as_str(),
                    row["declines"].as_str(),
                ),
            )
        })
        .collect();
    assert_eq!(
        by_code,
        BTreeMap::from([
            (
                "insufficient_funds",
                ("ISSUER_SOFT_DECLINE", "SOFT_DECLINE", "1")
            ),
            ("stolen_card", ("FRAUD", "HARD_DECLINE", "1")),
        ])
    );
    let payouts = app
        .csv(&format!("{base}&format=csv&table=payouts"), &finance)
        .await;
    assert_eq!(payouts.len(), 1, "{payouts:?}");
    for (column, value) in [
        ("day", today.as_str()),
        ("currency", "USD"),
        ("payout_status", "PAID"),
        ("batches", "1"),
        ("paid", "1"),
        ("mean_hours_settlement_to_payout", "0.0"),
    ] {
        assert_eq!(payouts[0][column], value, "{column}");
    }

    // The page shows the same figures beside four drawn charts.
    let page = app.page(base, &finance).await;
    for text in [
        "<td class=\"money\">66.7</td>",
        "<td class=\"money\">75.0</td>",
        "ISSUER_SOFT_DECLINE: <strong>1</strong>",
        "FRAUD: <strong>1</strong>",
        "<td>PAID</td>",
    ] {
        assert!(page.contains(text), "{text} in {page}");
    }
    assert_eq!(page.matches(r#"<svg class="chart" role="img""#).count(), 4);
    assert!(page.contains("<polyline"));
    assert!(page.contains("format=csv&amp;table=daily\""), "a CSV link");

    // Bad input is refused, and changes nothing.
    for query in [
        "?merchant=m-launch&days=0",
        "?merchant=m-launch&days=93",
        "?merchant=m-launch&currency=EUR",
        "?merchant=m-launch&format=pdf",
        "?merchant=m-launch&to=yesterday",
        "?merchant=m-launch&format=csv&table=everything",
    ] {
        let response = app
            .get(&format!("/console/launch-metrics{query}"), &finance)
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    // Another merchant, or the live environment, has no figures.
    let live = app.session(Role::Finance, Environment::Live).await;
    assert!(app
        .page(base, &live)
        .await
        .contains("No figures for this merchant"));

    // Roles: those that may read merchant metrics in the API.
    for (role, allowed) in [
        (Role::Service, false),
        (Role::Support, false),
        (Role::Finance, true),
        (Role::Auditor, true),
        (Role::Admin, true),
    ] {
        let session = app.session(role, Environment::Test).await;
        let response = app.get(base, &session).await;
        let expected = if allowed {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(response.status(), expected, "{role}");
        let payments = app.page("/console/payments", &session).await;
        assert_eq!(
            payments.contains(r#"href="/console/launch-metrics""#),
            allowed,
            "{role}"
        );
    }
}
