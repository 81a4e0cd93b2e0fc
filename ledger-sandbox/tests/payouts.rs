//! Balance, payouts and the sandbox clock through real HTTP: captured funds wait for the
//! payout delay, advancing the clock pays out each currency's available balance as Stripe's
//! automatic daily payouts do, and the itemized payout reconciliation report lists what each
//! payout paid, with Stripe's fees.

use ledger_sandbox::{RunningSandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::Value;

const KEY: &str = "sk_test_sandboxpayouts";

struct Client {
    base: String,
    http: reqwest::Client,
    _sandbox: RunningSandbox,
}

impl Client {
    async fn start() -> Client {
        let config = SandboxConfig::new("whsec_sandbox_payouts_test").unwrap();
        let sandbox = ledger_sandbox::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Client {
            base: sandbox.base_url(),
            http: reqwest::Client::new(),
            _sandbox: sandbox,
        }
    }

    async fn post(&self, path: &str, form: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, text) = self.get_text(path).await;
        (status, serde_json::from_str(&text).unwrap())
    }

    async fn ok(&self, path: &str, form: &str) -> Value {
        let (status, body) = self.post(path, form).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn pay(&self, amount: i64, currency: &str, card: &str) -> Value {
        self.ok(
            "/v1/payment_intents",
            &format!("amount={amount}&currency={currency}&payment_method={card}&confirm=true"),
        )
        .await
    }

    async fn events(&self, event_type: &str) -> Vec<Value> {
        let (_, list) = self
            .get(&format!("/v1/events?limit=100&type={event_type}"))
            .await;
        list["data"].as_array().unwrap().clone()
    }
}

fn amount_of(side: &Value, currency: &str) -> i64 {
    side.as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["currency"] == currency)
        .map_or(0, |entry| entry["amount"].as_i64().unwrap())
}

#[tokio::test]
async fn captured_funds_are_paid_out_after_the_delay_and_the_report_itemizes_each_payout() {
    let client = Client::start().await;
    let automatic = client.pay(10_000, "usd", "pm_card_visa").await;
    let manual = client
        .ok(
            "/v1/payment_intents",
            "amount=2500&currency=usd&payment_method=pm_card_mastercard&confirm=true&capture_method=manual",
        )
        .await;
    // An authorization moves no money.
    let (_, balance) = client.get("/v1/balance").await;
    assert_eq!(amount_of(&balance["pending"], "usd"), 10_000 - 320);
    client
        .ok(
            &format!(
                "/v1/payment_intents/{}/capture",
                manual["id"].as_str().unwrap()
            ),
            "amount_to_capture=2000",
        )
        .await;
    let refund = client
        .ok(
            "/v1/refunds",
            &format!(
                "payment_intent={}&amount=500",
                automatic["id"].as_str().unwrap()
            ),
        )
        .await;
    client.pay(1_000, "eur", "pm_card_visa").await;

    // 2.9% + 30 cents, halves rounded up; Stripe keeps its fee on a refund.
    let (_, charge) = client
        .get(&format!(
            "/v1/balance_transactions/txn_{}",
            &automatic["latest_charge"].as_str().unwrap()[3..]
        ))
        .await;
    assert_eq!(charge["fee"], 320, "{charge}");
    assert_eq!(charge["net"], 9_680);
    assert_eq!(charge["status"], "pending");
    let usd_net = 9_680 + (2_000 - 88) - 500;
    let (_, balance) = client.get("/v1/balance").await;
    assert_eq!(amount_of(&balance["pending"], "usd"), usd_net, "{balance}");
    assert_eq!(amount_of(&balance["available"], "usd"), 0);
    assert_eq!(amount_of(&balance["pending"], "eur"), 1_000 - 59);

    // One day is not enough: funds are held two days.
    let first = client.ok("/sandbox/clock/advance", "days=1").await;
    assert_eq!(first["payouts"], serde_json::json!([]), "{first}");
    let (_, none) = client.get("/v1/payouts").await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);

    let second = client.ok("/sandbox/clock/advance", "days=1").await;
    assert_eq!(second["payouts"].as_array().unwrap().len(), 2, "{second}");
    let (_, usd) = client.get("/v1/payouts?status=paid&limit=100").await;
    let payouts = usd["data"].as_array().unwrap();
    let usd_payout = payouts
        .iter()
        .find(|payout| payout["currency"] == "usd")
        .unwrap();
    let eur_payout = payouts
        .iter()
        .find(|payout| payout["currency"] == "eur")
        .unwrap();
    assert_eq!(usd_payout["amount"], usd_net);
    assert_eq!(usd_payout["status"], "paid");
    assert_eq!(usd_payout["automatic"], true);
    assert_eq!(eur_payout["amount"], 1_000 - 59);
    let payout_id = usd_payout["id"].as_str().unwrap();
    assert!(payout_id.starts_with("po_"));
    let (_, retrieved) = client.get(&format!("/v1/payouts/{payout_id}")).await;
    assert_eq!(retrieved["arrival_date"], usd_payout["arrival_date"]);

    // Everything available was paid out.
    let (_, balance) = client.get("/v1/balance").await;
    assert_eq!(amount_of(&balance["available"], "usd"), 0, "{balance}");
    assert_eq!(amount_of(&balance["pending"], "usd"), 0);

    // The payout's transactions: two captures, the refund, and the payout itself.
    let (_, paid) = client
        .get(&format!(
            "/v1/balance_transactions?payout={payout_id}&limit=100"
        ))
        .await;
    let mut types: Vec<&str> = paid["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|transaction| transaction["type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["charge", "charge", "payout", "refund"]);

    // Stripe's events, in order: funds available, the payout made, the payout paid.
    assert_eq!(client.events("balance.available").await.len(), 1);
    let created = client.events("payout.created").await;
    let paid_events = client.events("payout.paid").await;
    assert_eq!(created.len(), 2);
    assert_eq!(paid_events.len(), 2);
    let paid_usd = paid_events
        .iter()
        .find(|event| event["data"]["object"]["id"] == payout_id)
        .unwrap();
    assert_eq!(paid_usd["data"]["object"]["status"], "paid");
    assert_eq!(paid_usd["data"]["object"]["amount"], usd_net);
    assert_eq!(paid_usd["request"]["id"], Value::Null);

    // The report: Stripe's columns, one line per transaction paid, the nets summing to it.
    let (status, csv) = client
        .get_text(&format!(
            "/sandbox/reports/payout_reconciliation.csv?payout={payout_id}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    for column in [
        "automatic_payout_id",
        "balance_transaction_id",
        "reporting_category",
        "currency",
        "gross",
        "fee",
        "net",
        "source_id",
        "payment_intent_id",
        "charge_id",
        "available_on_utc",
    ] {
        assert!(
            header.iter().any(|name| name == column),
            "{column}: {header:?}"
        );
    }
    let column = |name: &str| header.iter().position(|column| column == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    let charge_row = rows
        .iter()
        .find(|row| {
            &row[column("payment_intent_id")] == automatic["id"].as_str().unwrap()
                && &row[column("reporting_category")] == "charge"
        })
        .unwrap();
    assert_eq!(&charge_row[column("gross")], "100.00");
    assert_eq!(&charge_row[column("fee")], "3.20");
    assert_eq!(&charge_row[column("net")], "96.80");
    assert_eq!(&charge_row[column("currency")], "usd");
    assert_eq!(&charge_row[column("automatic_payout_id")], payout_id);
    assert_eq!(
        &charge_row[column("source_id")],
        automatic["latest_charge"].as_str().unwrap()
    );
    let refund_row = rows
        .iter()
        .find(|row| &row[column("reporting_category")] == "refund")
        .unwrap();
    assert_eq!(
        &refund_row[column("source_id")],
        refund["id"].as_str().unwrap()
    );
    assert_eq!(&refund_row[column("gross")], "-5.00");
    assert_eq!(&refund_row[column("net")], "-5.00");
    let cents: i64 = rows
        .iter()
        .map(|row| row[column("net")].replace('.', "").parse::<i64>().unwrap())
        .sum();
    assert_eq!(cents, usd_net);

    // By interval: both payouts of the day.
    let arrival = usd_payout["arrival_date"].as_i64().unwrap();
    let (_, both) = client
        .get_text(&format!(
            "/sandbox/reports/payout_reconciliation.csv?interval_start={arrival}&interval_end={}",
            arrival + 86_400
        ))
        .await;
    assert_eq!(
        csv::Reader::from_reader(both.as_bytes()).records().count(),
        4,
        "{both}"
    );
}

#[tokio::test]
async fn a_balance_taken_negative_by_a_dispute_is_not_paid_out() {
    let client = Client::start().await;
    client.pay(3_000, "usd", "pm_card_createDispute").await;
    client.ok("/sandbox/clock/advance", "days=3").await;
    let (_, payouts) = client.get("/v1/payouts").await;
    assert_eq!(payouts["data"].as_array().unwrap().len(), 0, "{payouts}");
    // The charge less its fee, less the disputed amount and the dispute fee.
    let (_, balance) = client.get("/v1/balance").await;
    assert_eq!(
        amount_of(&balance["available"], "usd"),
        (3_000 - 117) - (3_000 + 1_500),
        "{balance}"
    );
    // A later payment brings it back above zero: the next payout takes all of it.
    client.pay(10_000, "usd", "pm_card_visa").await;
    let advanced = client.ok("/sandbox/clock/advance", "seconds=259200").await;
    assert_eq!(
        advanced["payouts"].as_array().unwrap().len(),
        1,
        "{advanced}"
    );
    let (_, payouts) = client.get("/v1/payouts").await;
    assert_eq!(payouts["data"][0]["amount"], (3_000 - 117) - 4_500 + 9_680);
    let (_, csv) = client
        .get_text(&format!(
            "/sandbox/reports/payout_reconciliation.csv?payout={}",
            payouts["data"][0]["id"].as_str().unwrap()
        ))
        .await;
    assert!(csv.contains(",dispute,dp_"), "{csv}");
}

#[tokio::test]
async fn bad_clock_and_report_requests_are_refused_in_stripe_s_shape_and_change_nothing() {
    let client = Client::start().await;
    let (_, before) = client.get("/sandbox/clock").await;
    for form in [
        "",
        "days=1&seconds=5",
        "days=0",
        "days=400",
        "days=two",
        "weeks=1",
    ] {
        let (status, body) = client.post("/sandbox/clock/advance", form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["param"].is_string(), "{form}: {body}");
    }
    let (_, after) = client.get("/sandbox/clock").await;
    assert_eq!(before["offset"], after["offset"]);

    for query in [
        "",
        "?interval_start=10",
        "?interval_start=20&interval_end=10",
        "?payout=po_1&interval_start=1&interval_end=2",
    ] {
        let (status, body) = client
            .get(&format!(
                "/sandbox/reports/payout_reconciliation.csv{query}"
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    let (status, body) = client
        .get("/sandbox/reports/payout_reconciliation.csv?payout=po_missing")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["param"], "payout");
    let (status, _) = client.get("/v1/payouts/po_missing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = client.get("/v1/balance_transactions?type=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
