//! Who a Stripe event is about, through real signed HTTP against a real database: on Connect
//! events the connected account decides the merchant, and a ledger payment is linked to one
//! PaymentIntent. Whatever disagrees is kept as a conflict for a person, never applied.

mod webhooks_support;

use std::sync::Arc;

use chrono::Utc;
use ledger_core::ids::{Environment, MerchantId, OrderId, PaymentId};
use ledger_core::payment::{
    CaptureMode, InitiatePayment, PaymentCommand, PaymentState, PaymentStatus, RecordAuthorization,
};
use ledger_core::text::ShortText;
use ledger_core::{Currency, PositiveMoney};
use ledger_store::commands::CommandContext;
use ledger_stripe::gateway::{payment_id_for_payment_intent, ConnectedAccounts, WebhookSecrets};
use ledger_stripe::webhooks::{DeliveryOutcome, WebhookConfig};
use serde_json::json;
use uuid::Uuid;
use webhooks_support::*;

const PAYMENT_INTENT: &str = "pi_3MtwBwLkdIwHu7ix28a3tqPa";
/// The Connect account of the `payment_intent.succeeded.jpy` fixture, and its PaymentIntent.
const JPY_ACCOUNT: &str = "acct_1OzqJyJAJfZb9HEB";
const JPY_PAYMENT_INTENT: &str = "pi_3OzqKZJAJfZb9HEB1TQfyJ5e";

async fn payment(app: &TestApp, payment_id: PaymentId) -> PaymentState {
    app.commands
        .load_payment(Environment::Test, payment_id)
        .await
        .unwrap()
}

/// A fixture with one metadata entry set (refunds and disputes have an empty `metadata`).
fn with_metadata(body: &[u8], key: &str, value: &str) -> Vec<u8> {
    let mut event: serde_json::Value = serde_json::from_slice(body).unwrap();
    event["data"]["object"]["metadata"][key] = json!(value);
    serde_json::to_vec(&event).unwrap()
}

fn merchant(id: &str) -> MerchantId {
    MerchantId::parse(id).unwrap()
}

async fn assert_conflict_kept(app: &TestApp, body: &[u8], mentions: &[&str]) {
    let head = log_head(app).await;
    let answer = deliver(app, body).await;
    assert_eq!(
        (answer.status, answer.outcome()),
        (200, "conflict"),
        "{:?}",
        answer.body
    );
    assert_eq!(log_head(app).await, head, "a conflict records nothing");
    let row = delivery(app, &event_id(body)).await;
    assert_eq!(row.outcome, DeliveryOutcome::Conflict);
    let detail = row.detail.unwrap_or_default();
    for text in mentions {
        assert!(detail.contains(text), "{text} in {detail}");
    }
}

/// A Connect event's metadata naming another merchant than its account is kept as a conflict,
/// not applied to either; metadata naming the account's own merchant applies.
#[tokio::test]
async fn connect_metadata_naming_another_merchant_is_a_conflict() {
    let app = spawn_app().await;
    let body = fixture("payment_intent.succeeded.jpy");
    let other = with_metadata(&body, "merchant_id", "merchant_other");
    assert_conflict_kept(&app, &other, &[JPY_ACCOUNT, "merchant_other"]).await;
    let payment_id = payment_id_for_payment_intent(JPY_PAYMENT_INTENT);
    assert_eq!(payment(&app, payment_id).await.version, 0);

    let agreeing = with_replaced(
        &with_metadata(&body, "merchant_id", JPY_ACCOUNT),
        &[("evt_3OzqKZJAJfZb9HEB1d2kLp0A", "evt_3OzqKZAgreeingMerchant")],
    );
    assert_eq!(deliver(&app, &agreeing).await.outcome(), "applied");
    let state = payment(&app, payment_id).await;
    assert_eq!(state.payment.unwrap().merchant_id, merchant(JPY_ACCOUNT));
}

/// With `LEDGER_STRIPE_CONNECTED_ACCOUNTS` naming the account's merchant, that merchant owns
/// the account's payments, and metadata naming it agrees.
#[tokio::test]
async fn a_configured_account_is_its_configured_merchant() {
    let mut config = WebhookConfig::new(
        WebhookSecrets::parse(&format!("test:{TEST_SECRET}")).unwrap(),
        merchant("merchant_default"),
    );
    config.connected_accounts =
        Arc::new(ConnectedAccounts::parse(&format!("{JPY_ACCOUNT}:merchant_tokyo")).unwrap());
    let app = spawn_app_with_config(config).await;
    let body = fixture("payment_intent.succeeded.jpy");
    assert_eq!(deliver(&app, &body).await.outcome(), "applied");
    let state = payment(&app, payment_id_for_payment_intent(JPY_PAYMENT_INTENT)).await;
    assert_eq!(
        state.payment.unwrap().merchant_id,
        merchant("merchant_tokyo")
    );

    // Metadata naming the account id itself names another merchant than the configured one.
    let conflicting = with_replaced(
        &with_metadata(&body, "merchant_id", JPY_ACCOUNT),
        &[(
            "evt_3OzqKZJAJfZb9HEB1d2kLp0A",
            "evt_3OzqKZConfiguredConflict",
        )],
    );
    assert_conflict_kept(&app, &conflicting, &["merchant_tokyo"]).await;
}

/// A Connect event about a payment of another merchant (here a refund, which names no
/// merchant of its own) is a conflict: the account decides, whatever the PaymentIntent.
#[tokio::test]
async fn a_connect_event_about_another_merchants_payment_is_a_conflict() {
    let app = spawn_app().await;
    for name in [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
    ] {
        assert_eq!(deliver(&app, &fixture(name)).await.outcome(), "applied");
    }
    let mut refund: serde_json::Value = serde_json::from_slice(&fixture("refund.updated")).unwrap();
    refund["account"] = json!("acct_1SomeoneElse");
    let refund = serde_json::to_vec(&refund).unwrap();
    assert_conflict_kept(&app, &refund, &["merchant_acme", "acct_1SomeoneElse"]).await;
    assert_eq!(
        payment(&app, payment_id_for_payment_intent(PAYMENT_INTENT))
            .await
            .status(),
        Some(PaymentStatus::Captured)
    );
}

/// A second PaymentIntent naming a payment that a first one is linked to is a conflict: its
/// authorization does not land on the payment, and the link stays with the first.
#[tokio::test]
async fn a_second_payment_intent_of_a_linked_payment_is_a_conflict() {
    let app = spawn_app().await;
    let ledger_payment = Uuid::new_v4().to_string();
    let created = with_metadata(
        &fixture("payment_intent.created"),
        "ledger_payment_id",
        &ledger_payment,
    );
    assert_eq!(deliver(&app, &created).await.outcome(), "applied");

    let other_intent = "pi_3OtherIntentSamePayment";
    let authorized = with_replaced(
        &with_metadata(
            &fixture("payment_intent.amount_capturable_updated"),
            "ledger_payment_id",
            &ledger_payment,
        ),
        &[
            (PAYMENT_INTENT, other_intent),
            ("evt_3MtwBwLkdIwHu7ix0bzNcXqA", "evt_3OtherIntentAuthorized"),
        ],
    );
    assert_conflict_kept(&app, &authorized, &[PAYMENT_INTENT, other_intent]).await;
    let payment_id = PaymentId::parse(&ledger_payment).unwrap();
    assert_eq!(
        payment(&app, payment_id).await.status(),
        Some(PaymentStatus::Initiated)
    );
    assert_eq!(
        delivery(&app, &event_id(&authorized)).await.payment_id,
        Some(payment_id),
        "support finds the conflict by payment"
    );

    // The first PaymentIntent still authorizes its payment.
    let first = with_metadata(
        &fixture("payment_intent.amount_capturable_updated"),
        "ledger_payment_id",
        &ledger_payment,
    );
    assert_eq!(deliver(&app, &first).await.outcome(), "applied");
    assert_eq!(
        payment(&app, payment_id).await.status(),
        Some(PaymentStatus::Authorized)
    );
}

/// A payment authorized through the API with a PaymentIntent as its gateway reference is
/// linked to it: a capture Stripe reports for another PaymentIntent is a conflict.
#[tokio::test]
async fn a_payment_authorized_with_another_payment_intent_is_a_conflict() {
    let app = spawn_app().await;
    let payment_id = PaymentId::new_random();
    let amount = PositiveMoney::parse("15.00", Currency::USD).unwrap();
    let context = CommandContext {
        environment: Environment::Test,
        actor_id: "test".to_owned(),
        actor_role: "service".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: None,
    };
    for command in [
        PaymentCommand::Initiate(InitiatePayment {
            merchant_id: merchant("merchant_acme"),
            order_id: OrderId::parse("order_8472").unwrap(),
            environment: Environment::Test,
            amount,
            capture_mode: CaptureMode::Manual,
            payment_method: None,
        }),
        PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
            authorized_amount: Some(amount),
            authorization_code: None,
            gateway_reference: Some(ShortText::parse("pi_3TheFirstIntent").unwrap()),
            expires_at: None,
        }),
    ] {
        app.commands
            .handle_payment(payment_id, &command, &context)
            .await
            .unwrap();
    }
    let captured = with_metadata(
        &fixture("charge.captured"),
        "ledger_payment_id",
        &payment_id.to_string(),
    );
    assert_conflict_kept(&app, &captured, &["pi_3TheFirstIntent", PAYMENT_INTENT]).await;
    assert_eq!(
        payment(&app, payment_id).await.status(),
        Some(PaymentStatus::Authorized)
    );
}

/// Once a PaymentIntent is linked to the payment its metadata named, a later event of it that
/// carries no `ledger_payment_id` lands on that payment, not on the PaymentIntent's derived one; the
/// delivery finds the link in the same read that checks for an earlier delivery.
#[tokio::test]
async fn a_later_event_without_metadata_lands_on_the_linked_payment() {
    let app = spawn_app().await;
    let ledger_payment = Uuid::new_v4().to_string();
    let created = with_metadata(
        &fixture("payment_intent.created"),
        "ledger_payment_id",
        &ledger_payment,
    );
    assert_eq!(deliver(&app, &created).await.outcome(), "applied");

    let mut authorized: serde_json::Value =
        serde_json::from_slice(&fixture("payment_intent.amount_capturable_updated")).unwrap();
    if let Some(metadata) = authorized["data"]["object"]["metadata"].as_object_mut() {
        metadata.remove("ledger_payment_id");
    }
    let authorized = serde_json::to_vec(&authorized).unwrap();
    assert_eq!(deliver(&app, &authorized).await.outcome(), "applied");

    let payment_id = PaymentId::parse(&ledger_payment).unwrap();
    assert_eq!(
        payment(&app, payment_id).await.status(),
        Some(PaymentStatus::Authorized)
    );
    assert_eq!(
        delivery(&app, &event_id(&authorized)).await.payment_id,
        Some(payment_id)
    );
    assert_eq!(
        payment(&app, payment_id_for_payment_intent(PAYMENT_INTENT))
            .await
            .status(),
        None,
        "nothing lands on the derived payment"
    );
}
