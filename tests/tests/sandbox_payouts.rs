//! A day of card payments made with Stripe's official Python library against `ledger
//! sandbox`, followed by a real `ledger serve` through the sandbox's webhooks, then settled:
//! the sandbox clock moves past the payout delay, the sandbox pays out and sends
//! `payout.paid`, and its itemized payout reconciliation report, imported with `ledger
//! reconcile stripe-payouts`, reconciles with no exceptions and records the payout. Stripe's
//! library is the pinned version (`ledger_tests::python`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ledger_tests::python::python_with_stripe;
use ledger_tests::running::Running;
use ledger_tests::server::{create_key_with, free_port};
use ledger_tests::{fresh_directory, ledger_binary};
use serde_json::{json, Value};

const WEBHOOK_SECRET: &str = "whsec_ledger_sandbox_payouts";
const API_KEY: &str = "sk_test_ledger_payouts";

/// Phase `pay` makes the day's payments; phase `payout` advances the sandbox clock past the
/// payout delay and lists the payouts through the library. Both print JSON.
const CLIENT_SCRIPT: &str = r#"
import json, sys, urllib.request
import stripe

stripe.api_key = "sk_test_ledger_payouts"
stripe.api_base = sys.argv[1]
out = {}
if sys.argv[2] == "pay":
    paid = stripe.PaymentIntent.create(
        amount=10000, currency="usd", payment_method="pm_card_visa", confirm=True,
    )
    held = stripe.PaymentIntent.create(
        amount=2500, currency="usd", capture_method="manual",
        payment_method="pm_card_mastercard", confirm=True,
    )
    captured = stripe.PaymentIntent.capture(held.id, amount_to_capture=2000)
    assert captured.status == "succeeded", captured.status
    refunded = stripe.PaymentIntent.create(
        amount=4200, currency="usd", payment_method="pm_card_amex", confirm=True,
    )
    refund = stripe.Refund.create(payment_intent=refunded.id, amount=1000)
    assert refund.status == "succeeded", refund.status
    balance = stripe.Balance.retrieve()
    out = {
        "intents": [paid.id, captured.id, refunded.id],
        "pending": [entry.amount for entry in balance.pending if entry.currency == "usd"],
    }
else:
    request = urllib.request.Request(
        sys.argv[1] + "/sandbox/clock/advance", data=b"days=2", method="POST",
        headers={"Authorization": "Bearer " + stripe.api_key},
    )
    advanced = json.load(urllib.request.urlopen(request))
    payouts = stripe.Payout.list(status="paid")
    assert [payout.id for payout in payouts.data] == advanced["payouts"], advanced
    payout = payouts.data[0]
    transactions = stripe.BalanceTransaction.list(payout=payout.id, limit=100)
    out = {
        "payout": payout.id,
        "amount": payout.amount,
        "arrival_date": payout.arrival_date,
        "transactions": sorted(transaction.type for transaction in transactions.data),
    }
print(json.dumps(out))
"#;

fn ledger(directory: &Path) -> Command {
    let mut command = Command::new(ledger_binary());
    command
        .current_dir(directory)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .env(
            "LEDGER_STRIPE_WEBHOOK_SECRETS",
            format!("test:{WEBHOOK_SECRET}"),
        );
    command
}

fn client(directory: &Path, sandbox_url: &str, phase: &str) -> Value {
    let script = directory.join("client.py");
    std::fs::write(&script, CLIENT_SCRIPT).unwrap();
    let output = python_with_stripe()
        .arg(&script)
        .args([sandbox_url, phase])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(printed.trim()).unwrap()
}

async fn graphql(ledger_url: &str, key: &str, query: &str, variables: Value) -> Value {
    let answer: Value = reqwest::Client::new()
        .post(format!("{ledger_url}/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["errors"].is_null(), "{answer}");
    answer["data"].clone()
}

/// Polls `read` until `done` holds (webhooks are asynchronous), within a bound.
async fn until<F, Fut>(read: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = read().await;
        if done(&value) || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sandbox_get(sandbox_url: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{sandbox_url}{path}"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_day_of_sandbox_payments_is_paid_out_and_its_report_reconciles_with_no_exceptions() {
    let directory = fresh_directory("sandbox-payouts");
    let key = create_key_with(ledger(&directory), "admin");

    let ledger_port = free_port();
    let ledger_url = format!("http://127.0.0.1:{ledger_port}");
    let mut serve = ledger(&directory);
    serve.args(["serve", "--bind", &format!("127.0.0.1:{ledger_port}")]);
    let server = Running::start(serve, "ledger serving");

    let sandbox_port = free_port();
    let sandbox_url = format!("http://127.0.0.1:{sandbox_port}");
    let mut sandbox = ledger(&directory);
    sandbox.args([
        "sandbox",
        "--bind",
        &format!("127.0.0.1:{sandbox_port}"),
        "--webhook-url",
        &format!("{ledger_url}/webhooks/stripe"),
        "--webhook-secret",
        WEBHOOK_SECRET,
    ]);
    let gateway = Running::start(sandbox, "ledger sandbox:");

    let paid = client(&directory, &sandbox_url, "pay");
    // Captured less Stripe's fees (3.20, 0.88, 1.52), less the refund.
    assert_eq!(
        paid["pending"],
        json!([(10_000 - 320) + (2_000 - 88) + (4_200 - 152) - 1_000])
    );
    let settled = |value: &Value| value["webhooks"]["pending"] == 0;
    let deliveries = || async {
        let stats: Value = sandbox_get(&sandbox_url, "/sandbox/webhooks")
            .await
            .json()
            .await
            .unwrap();
        json!({ "webhooks": stats })
    };
    until(deliveries, settled).await;
    let payment_query =
        "query($id: UUID!) { payment(id: $id) { status capturedAmount refundedAmount } }";
    for intent in paid["intents"].as_array().unwrap() {
        let id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            intent.as_str().unwrap().as_bytes(),
        );
        let payment = until(
            || graphql(&ledger_url, &key, payment_query, json!({ "id": id })),
            |data| !data["payment"].is_null(),
        )
        .await;
        assert!(
            ["CAPTURED", "PARTIALLY_REFUNDED"]
                .contains(&payment["payment"]["status"].as_str().unwrap()),
            "{payment}"
        );
    }

    let payout = client(&directory, &sandbox_url, "payout");
    let payout_id = payout["payout"].as_str().unwrap().to_owned();
    assert_eq!(payout["amount"], json!(14_640));
    assert_eq!(
        payout["transactions"],
        json!(["charge", "charge", "charge", "payout", "refund"])
    );
    // `payout.paid` reaches the ledger before the report: it waits (parked) for the batch.
    until(deliveries, settled).await;

    let report = sandbox_get(
        &sandbox_url,
        &format!("/sandbox/reports/payout_reconciliation.csv?payout={payout_id}"),
    )
    .await;
    assert!(report.status().is_success());
    let report = report.text().await.unwrap();
    let file = directory.join("payout_reconciliation.csv");
    std::fs::write(&file, &report).unwrap();
    let reconcile = ledger(&directory)
        .args(["reconcile", "stripe-payouts"])
        .arg(&file)
        .args(["--environment", "test"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&reconcile.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&reconcile.stderr).into_owned();

    let batches = until(
        || {
            graphql(
                &ledger_url,
                &key,
                "{ settlementBatches(first: 10) { edges { node { currency net itemCount payoutStatus payouts { payoutId amount status } } } } }",
                json!({}),
            )
        },
        |data| data["settlementBatches"]["edges"][0]["node"]["payoutStatus"] == "PAID",
    )
    .await;
    drop(gateway);
    drop(server);
    let _ = std::fs::remove_dir_all(&directory);

    assert!(reconcile.status.success(), "{printed}{stderr}");
    assert!(
        printed.contains("lines 4  matched 4  exceptions 0"),
        "{printed}{stderr}\n{report}"
    );
    assert!(
        printed.contains("payouts proven 1  unproven 0  settlement batches recorded 1"),
        "{printed}"
    );
    let batch = &batches["settlementBatches"]["edges"][0]["node"];
    assert_eq!(batch["currency"], "USD", "{batches}");
    assert_eq!(batch["itemCount"], 4, "{batches}");
    assert_eq!(batch["payoutStatus"], "PAID", "{batches}");
    assert_eq!(batch["payouts"][0]["payoutId"], payout_id.as_str());
    assert_eq!(batch["payouts"][0]["status"], "PAID");
    assert_eq!(
        batch["payouts"][0]["amount"]
            .as_str()
            .unwrap()
            .trim_end_matches('0'),
        "146.4"
    );
}
