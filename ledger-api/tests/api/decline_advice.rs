//! `Payment.declineAdvice`: the failure playbook's row for a declined payment, what support
//! reads to answer the customer.

use serde_json::{json, Value};

use crate::helpers::{authorize, initiate, payment_mutation, spawn_app, TestApp};

const ADVICE: &str = "query($id: UUID!) { payment(id: $id) { status declineCode declineAdvice { \
    code documented category customerMessage retry nextStep escalation meaning } } }";

async fn decline(app: &TestApp, key: &str, code: Option<&str>) -> String {
    let id = initiate(app, key, "10.00", "MANUAL").await;
    let mut input = json!({"idempotencyKey": format!("{key}-auth"), "paymentId": id,
                           "outcome": "DECLINED"});
    if let Some(code) = code {
        input["declineCode"] = json!(code);
    }
    payment_mutation(app, "recordAuthorization", input).await;
    id
}

async fn advice(app: &TestApp, id: &str) -> Value {
    let answer = app.graphql(ADVICE, json!({"id": id})).await;
    answer.data()["payment"]["declineAdvice"].clone()
}

#[tokio::test]
async fn a_soft_decline_tells_the_customer_what_to_do() {
    let app = spawn_app().await;
    let id = decline(&app, "advice-funds", Some("insufficient_funds")).await;
    let advice = advice(&app, &id).await;
    assert_eq!(advice["code"], "insufficient_funds");
    assert_eq!(advice["documented"], true);
    assert_eq!(advice["category"], "ISSUER_SOFT_DECLINE");
    assert_eq!(advice["retry"], "LATER");
    assert_eq!(advice["nextStep"], "ANOTHER_CARD");
    assert_eq!(advice["escalation"], "NOBODY");
    assert!(advice["customerMessage"]
        .as_str()
        .unwrap()
        .contains("insufficient funds"));
}

#[tokio::test]
async fn a_stolen_card_is_never_named_to_the_customer() {
    let app = spawn_app().await;
    let id = decline(&app, "advice-stolen", Some("stolen_card")).await;
    let advice = advice(&app, &id).await;
    assert_eq!(advice["category"], "FRAUD");
    assert_eq!(advice["retry"], "NO");
    assert_eq!(advice["escalation"], "SUPPORT");
    let message = advice["customerMessage"].as_str().unwrap();
    assert_eq!(message, ledger_core::playbook::GENERIC_DECLINE_MESSAGE);
    assert!(!message.to_lowercase().contains("stolen"));
    // Staff see what happened.
    assert!(advice["meaning"].as_str().unwrap().contains("stolen"));
}

#[tokio::test]
async fn a_decline_without_a_documented_code_gets_the_generic_advice() {
    let app = spawn_app().await;
    for (key, code) in [
        ("advice-none", None),
        ("advice-new", Some("brand_new_code")),
    ] {
        let id = decline(&app, key, code).await;
        let advice = advice(&app, &id).await;
        assert_eq!(advice["code"], code.map_or(Value::Null, |code| json!(code)));
        assert_eq!(advice["documented"], false);
        assert_eq!(advice["category"], "ISSUER_SOFT_DECLINE");
        assert_eq!(advice["nextStep"], "CONTACT_ISSUER");
    }
}

#[tokio::test]
async fn a_payment_that_was_not_declined_has_no_advice() {
    let app = spawn_app().await;
    let id = initiate(&app, "advice-ok", "10.00", "MANUAL").await;
    assert_eq!(advice(&app, &id).await, Value::Null);
    authorize(&app, &id).await;
    assert_eq!(advice(&app, &id).await, Value::Null);
}
