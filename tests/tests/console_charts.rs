//! The console's charts in a real browser: `ledger serve` with Stripe webhooks configured
//! receives signed deliveries and payments through GraphQL; signed in with an admin key, the
//! webhook health and launch metrics pages show charts whose SVG holds drawn data (dots on
//! lines, bars), beside tables with the same figures.
//!
//! `UPDATE_SCREENSHOTS=1` saves the pages to `docs/console-webhook-health.png` and
//! `docs/console-launch-metrics.png`.

use std::path::Path;
use std::time::{Duration, Instant};

use ledger_core::ids::Environment;
use ledger_store::testing::TestDatabase;
use ledger_stripe::gateway::{sign, WebhookSecret};
use ledger_tests::browser::{fantoccini::Locator, with_browser, Browser};
use ledger_tests::server::{create_key, Server};
use serde_json::{json, Value};

const SECRET: &str = "whsec_browser_charts_0123456789";
/// The colour of a chart's first series (`ledger-console`'s `charts::COLOURS[0]`).
const FIRST_SERIES: &str = "#1F5FA8";

async fn webhook(server: &Server, event: &Value) {
    let body = serde_json::to_vec(event).unwrap();
    let secret = WebhookSecret::new(Environment::Test, SECRET).unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", server.address))
        .header(
            "Stripe-Signature",
            sign(&secret, chrono::Utc::now().timestamp(), &body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../ledger-stripe/tests/fixtures/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["created"] = json!(chrono::Utc::now().timestamp());
    event
}

async fn mutation(server: &Server, key: &str, name: &str, input: Value) {
    let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/graphql", server.address))
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
}

/// Two payments of `m-charts`: one approved (and captured), one declined.
async fn payments(server: &Server, key: &str) {
    for (name, decline) in [("charts-1", None), ("charts-2", Some("insufficient_funds"))] {
        let id = uuid::Uuid::new_v4().to_string();
        mutation(server, key, "initiatePayment",
            json!({"idempotencyKey": name, "paymentId": id, "orderId": name, "merchantId": "m-charts",
                   "amount": "25.00", "currency": "EUR", "captureMode": "AUTOMATIC"})).await;
        let outcome = match decline {
            None => {
                json!({"idempotencyKey": format!("{name}-auth"), "paymentId": id, "outcome": "APPROVED"})
            }
            Some(code) => json!({"idempotencyKey": format!("{name}-auth"), "paymentId": id,
                                  "outcome": "DECLINED", "declineCode": code}),
        };
        mutation(server, key, "recordAuthorization", outcome).await;
    }
}

async fn metrics_caught_up(database: &TestDatabase) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let declined: Option<i64> = sqlx::query_scalar(
            "SELECT sum(authorizations_declined)::bigint FROM projection_merchant_daily_metrics
             WHERE merchant_id = 'm-charts'",
        )
        .fetch_one(database.pool())
        .await
        .unwrap();
        if declined == Some(1) {
            return;
        }
        assert!(Instant::now() < deadline, "the metrics did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the chart in figure `id` has drawn: dots, polylines' point counts, and the bars (and
/// legend swatches) of the first series' colour with a height.
async fn drawn(browser: &Browser, id: &str) -> (u64, Vec<u64>, u64) {
    let value = browser
        .run(
            "const svg = document.querySelector('#' + arguments[0] + ' svg');
             const bars = [...svg.querySelectorAll('rect')].filter(rect =>
                 (rect.getAttribute('fill') || '').toUpperCase() === arguments[1]
                 && parseFloat(rect.getAttribute('height')) > 0);
             return [svg.querySelectorAll('circle').length,
                     [...svg.querySelectorAll('polyline')].map(line =>
                         line.getAttribute('points').trim().split(/\\s+/).length),
                     bars.length];",
            vec![json!(id), json!(FIRST_SERIES)],
        )
        .await;
    serde_json::from_value(value).unwrap()
}

async fn screenshot(browser: &Browser, name: &str) {
    if std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|value| value == "1") {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../docs/console-{name}.png"));
        browser.screenshot(path).await;
    }
}

#[tokio::test]
async fn webhook_health_and_launch_metrics_draw_their_data() {
    let database = TestDatabase::new().await;
    let admin = create_key(database.url(), "admin");
    let server = Server::start_with(
        database.url(),
        &[("LEDGER_STRIPE_WEBHOOK_SECRETS", &format!("test:{SECRET}"))],
    );
    let created = fixture("payment_intent.created");
    webhook(&server, &created).await;
    webhook(&server, &created).await;
    webhook(&server, &fixture("customer.created")).await;
    let mut refund = fixture("refund.updated");
    refund["id"] = json!("evt_browser_charts_parked");
    refund["data"]["object"]["payment_intent"] = json!("pi_browser_charts_unknown");
    webhook(&server, &refund).await;
    payments(&server, &admin).await;
    metrics_caught_up(&database).await;
    let console = format!("{}/console", server.address);

    with_browser(|browser| async move {
        browser.client.goto(&console).await.unwrap();
        browser
            .wait_for("input[name=key]")
            .await
            .send_keys(&admin)
            .await
            .unwrap();
        browser
            .client
            .find(Locator::Css("#sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser.wait_for_text("#role", "admin").await;

        browser
            .client
            .find(Locator::Css("a[href='/console/webhook-health']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        browser
            .wait_for_text("#parked-backlog", "1 event(s) parked now")
            .await;
        browser.wait_for_text("#health", "66.7").await;
        // The current hour's success rate is a dot on the line, under the threshold line.
        let (dots, lines, _) = drawn(&browser, "chart-success").await;
        assert_eq!(dots, 1);
        assert!(lines.contains(&2), "the threshold line: {lines:?}");
        // The events bar of the current hour, beside its legend swatch.
        let (_, _, bars) = drawn(&browser, "chart-volume").await;
        assert!(bars >= 2, "{bars} bars");
        let (dots, _, _) = drawn(&browser, "chart-processing").await;
        assert_eq!(dots, 2, "the mean and the max");
        screenshot(&browser, "webhook-health").await;

        browser
            .client
            .goto(&format!(
                "{console}/launch-metrics?merchant=m-charts&days=14"
            ))
            .await
            .unwrap();
        browser.wait_for_text("#daily", "50.0").await;
        browser
            .wait_for_text("#decline-totals", "ISSUER_SOFT_DECLINE: 1")
            .await;
        // Today's authorization, capture, refund and dispute rates.
        let (dots, _, _) = drawn(&browser, "chart-rates").await;
        assert_eq!(dots, 4);
        let (_, _, bars) = drawn(&browser, "chart-declines").await;
        assert!(bars >= 2, "{bars} bars");
        screenshot(&browser, "launch-metrics").await;

        // The charts are drawn by the server: nothing was loaded for them, nothing refused.
        let problems: Vec<_> = browser
            .console()
            .await
            .into_iter()
            .filter(|entry| entry.level == "SEVERE")
            .collect();
        assert!(problems.is_empty(), "{problems:#?}");
    })
    .await;
}
