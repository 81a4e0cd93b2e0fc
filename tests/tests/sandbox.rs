//! Stripe's official Python library drives `ledger sandbox`, and the sandbox's signed
//! webhooks drive a real `ledger serve`, delivered under the `hostile` chaos profile (held,
//! overtaken, repeated, first attempts lost): once deliveries settle, the ledger holds what
//! the gateway did, read back through GraphQL. Stripe's library is the pinned version
//! (`ledger_tests::python`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ledger_tests::python::python_with_stripe;
use ledger_tests::running::Running;
use ledger_tests::server::{create_key_with, free_port};
use ledger_tests::{fresh_directory, ledger_binary};
use serde_json::{json, Value};

const WEBHOOK_SECRET: &str = "whsec_ledger_sandbox_end_to_end";

/// What Stripe's library does against the sandbox, printing the ids it made as JSON.
const CLIENT_SCRIPT: &str = r#"
import json, sys
import stripe

stripe.api_key = "sk_test_ledger_end_to_end"
stripe.api_base = sys.argv[1]
out = {"library": stripe.VERSION}

# A manual capture, captured in part, then refunded in part.
intent = stripe.PaymentIntent.create(
    amount=2500, currency="usd", capture_method="manual",
    payment_method="pm_card_visa", confirm=True,
    metadata={"order_id": "order-e2e-1"},
)
assert intent.status == "requires_capture", intent.status
captured = stripe.PaymentIntent.capture(intent.id, amount_to_capture=2000)
assert captured.status == "succeeded" and captured.amount_received == 2000
refund = stripe.Refund.create(payment_intent=captured.id, amount=500)
assert refund.status == "succeeded", refund.status
out["captured"] = captured.id

# A decline: the library raises its CardError with Stripe's codes.
try:
    stripe.PaymentIntent.create(
        amount=1000, currency="usd", confirm=True,
        payment_method="pm_card_chargeDeclinedInsufficientFunds",
    )
    sys.exit("the decline did not raise")
except stripe.CardError as error:
    assert error.code == "card_declined", error.code
    assert error.error.decline_code == "insufficient_funds"
    assert error.http_status == 402
    out["declined"] = error.error.payment_intent.id

# A chargeback (the dispute test card), answered with Stripe's winning test evidence.
disputed = stripe.PaymentIntent.create(
    amount=3000, currency="usd", payment_method="pm_card_createDispute", confirm=True,
)
created = stripe.Event.list(type="charge.dispute.created", limit=10)
dispute = next(
    event.data.object for event in created.data
    if event.data.object.payment_intent == disputed.id
)
won = stripe.Dispute.modify(dispute.id, evidence={"uncategorized_text": "winning_evidence"})
assert won.status == "won", won.status
out["disputed"] = disputed.id

# An intent given its card by an update, then found through the library's lists. (Its
# amount and order stay: the ledger records an intent from `payment_intent.created`, and
# Stripe sends no event for an update.)
draft = stripe.PaymentIntent.create(
    amount=1200, currency="usd", metadata={"order_id": "order-e2e-2"},
)
draft = stripe.PaymentIntent.modify(
    draft.id, description="cart e2e", payment_method="pm_card_visa",
)
assert draft.description == "cart e2e" and draft.status == "requires_confirmation", draft
confirmed = stripe.PaymentIntent.confirm(draft.id)
assert confirmed.status == "succeeded" and confirmed.amount_received == 1200, confirmed
first = stripe.PaymentIntent.list(limit=2)
assert first.data[0].id == draft.id and first.has_more, first
rest = stripe.PaymentIntent.list(limit=100, starting_after=first.data[-1].id)
listed = [intent.id for intent in first.data + rest.data]
assert captured.id in listed and len(listed) == len(set(listed)), listed
succeeded = stripe.Event.list(
    type="payment_intent.succeeded", created={"gte": confirmed.created}, limit=100,
)
assert any(event.data.object.id == draft.id for event in succeeded.data), succeeded
assert stripe.Event.list(created={"gt": 253402300000}).data == []
newest = stripe.Event.list(limit=1).data[0]
assert stripe.Event.list(ending_before=newest.id).data == []
out["updated"] = draft.id

# An authorization voided: the hold is released with payment_intent.canceled and no refund.
held = stripe.PaymentIntent.create(
    amount=900, currency="usd", capture_method="manual",
    payment_method="pm_card_visa", confirm=True,
)
canceled = stripe.PaymentIntent.cancel(held.id)
assert canceled.status == "canceled" and canceled.amount_capturable == 0, canceled
refunded = stripe.Event.list(type="charge.refunded", limit=100)
assert all(event.data.object.payment_intent != held.id for event in refunded.data)
out["canceled"] = held.id

# A live key is refused before anything happens.
try:
    stripe.PaymentIntent.retrieve(captured.id, api_key="sk_live_not_for_the_sandbox")
    sys.exit("a live key was accepted")
except stripe.AuthenticationError as error:
    assert "test keys only" in error.user_message, error.user_message

print(json.dumps(out))
"#;

fn ledger(directory: &Path) -> Command {
    let mut command = Command::new(ledger_binary());
    command
        .current_dir(directory)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn");
    command
}

/// Stripe's scheme for a PaymentIntent's ledger payment (`ledger-stripe`'s identity rule).
fn payment_id(payment_intent: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, payment_intent.as_bytes()).to_string()
}

async fn payment(ledger_url: &str, key: &str, id: &str) -> Value {
    let query = json!({
        "query": "query($id: UUID!) { payment(id: $id) { status amount capturedAmount refundedAmount declineCode orderId environment disputes { status reason fee } } }",
        "variables": { "id": id },
    });
    let answer: Value = reqwest::Client::new()
        .post(format!("{ledger_url}/graphql"))
        .bearer_auth(key)
        .json(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["data"]["payment"].clone()
}

/// Polls until the payment is as `done` says (webhooks are asynchronous), within a bound.
async fn payment_until(
    ledger_url: &str,
    key: &str,
    payment_intent: &Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let id = payment_id(payment_intent.as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let payment = payment(ledger_url, key, &id).await;
        if done(&payment) || Instant::now() > deadline {
            return payment;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn stripes_python_library_pays_through_the_sandbox_and_the_ledger_agrees_despite_hostile_webhooks(
) {
    let directory = fresh_directory("sandbox");
    let key = create_key_with(ledger(&directory), "admin");

    let ledger_port = free_port();
    let ledger_url = format!("http://127.0.0.1:{ledger_port}");
    let mut serve = ledger(&directory);
    serve
        .args(["serve", "--bind", &format!("127.0.0.1:{ledger_port}")])
        .env(
            "LEDGER_STRIPE_WEBHOOK_SECRETS",
            format!("test:{WEBHOOK_SECRET}"),
        );
    let server = Running::start(serve, "ledger serving");

    // The sandbox runs in a directory of its own, which must stay empty: no database, no
    // files.
    let sandbox_directory = fresh_directory("sandbox-gateway");
    let sandbox_port = free_port();
    let mut sandbox = ledger(&sandbox_directory);
    sandbox.args([
        "sandbox",
        "--bind",
        &format!("127.0.0.1:{sandbox_port}"),
        "--webhook-url",
        &format!("{ledger_url}/webhooks/stripe"),
        // As the README says to subscribe a Stripe endpoint: what the ledger maps is enough
        // for it to agree.
        "--webhook-events",
        "ledger",
        "--webhook-secret",
        WEBHOOK_SECRET,
        "--chaos",
        "hostile",
        "--seed",
        "16",
    ]);
    let gateway = Running::start(sandbox, "ledger sandbox:");

    let script = directory.join("client.py");
    std::fs::write(&script, CLIENT_SCRIPT).unwrap();
    let client = python_with_stripe()
        .arg(&script)
        .arg(format!("http://127.0.0.1:{sandbox_port}"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&client.stdout).into_owned();
    assert!(
        client.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&client.stderr)
    );
    let ids: Value = serde_json::from_str(printed.trim()).unwrap();

    let captured = payment_until(&ledger_url, &key, &ids["captured"], |payment| {
        payment["status"] == "PARTIALLY_REFUNDED"
    })
    .await;
    let declined = payment_until(&ledger_url, &key, &ids["declined"], |payment| {
        payment["status"] == "DECLINED"
    })
    .await;
    let disputed = payment_until(&ledger_url, &key, &ids["disputed"], |payment| {
        payment["disputes"][0]["status"] == "WON"
    })
    .await;
    let updated = payment_until(&ledger_url, &key, &ids["updated"], |payment| {
        payment["status"] == "CAPTURED"
    })
    .await;
    let canceled = payment_until(&ledger_url, &key, &ids["canceled"], |payment| {
        payment["status"] == "VOIDED"
    })
    .await;
    // The chaos was real: some first attempts were lost and retried.
    let deliveries: Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{sandbox_port}/sandbox/webhooks"))
        .bearer_auth("sk_test_ledger_end_to_end")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(gateway);
    drop(server);
    let _ = std::fs::remove_dir_all(&directory);
    let sandbox_files = std::fs::read_dir(&sandbox_directory).unwrap().count();
    let _ = std::fs::remove_dir_all(&sandbox_directory);
    assert_eq!(sandbox_files, 0, "the sandbox wrote files (a database?)");

    assert_eq!(captured["status"], "PARTIALLY_REFUNDED", "{captured}");
    assert_eq!(captured["orderId"], "order-e2e-1");
    assert_eq!(captured["environment"], "TEST");
    assert_eq!(decimal(&captured["amount"]), "25");
    assert_eq!(decimal(&captured["capturedAmount"]), "20");
    assert_eq!(decimal(&captured["refundedAmount"]), "5");
    assert_eq!(updated["status"], "CAPTURED", "{updated}");
    assert_eq!(updated["orderId"], "order-e2e-2");
    assert_eq!(decimal(&updated["capturedAmount"]), "12");
    assert_eq!(canceled["status"], "VOIDED", "{canceled}");
    assert_eq!(decimal(&canceled["capturedAmount"]), "0");
    assert_eq!(decimal(&canceled["refundedAmount"]), "0");
    assert_eq!(declined["status"], "DECLINED", "{declined}");
    assert_eq!(declined["declineCode"], "insufficient_funds");
    let dispute = &disputed["disputes"][0];
    assert_eq!(dispute["status"], "WON", "{disputed}");
    assert_eq!(dispute["reason"], "fraudulent");
    assert_eq!(decimal(&dispute["fee"]), "15");
    assert!(
        deliveries["failed_attempts"].as_u64().unwrap() > 0,
        "{deliveries}"
    );
    assert_eq!(deliveries["given_up"], 0, "{deliveries}");
}

/// A Decimal as GraphQL prints it, without trailing zeros.
fn decimal(value: &Value) -> String {
    let text = value.as_str().unwrap_or_default();
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text.to_owned()
    }
}
