//! `importStripePayoutReport` through HTTP: finance's import of a payout report, its
//! idempotency, roles and environments.

use ledger_api::auth::Role;
use ledger_core::ids::Environment;
use serde_json::{json, Value};

use crate::helpers::*;

const IMPORT: &str = "mutation($input: ImportStripePayoutReportInput!) { \
    importStripePayoutReport(input: $input) { runId alreadyImported lines matchedLines \
    exceptions payoutsProven payoutsUnproven batchesRecorded position } }";

/// A captured payment whose ledger id the report names in its metadata column.
async fn captured_payment(app: &TestApp) -> String {
    let payment_id = initiate(app, "recon-initiate", "120.00", "MANUAL").await;
    authorize(app, &payment_id).await;
    payment_mutation(
        app,
        "capturePayment",
        json!({"idempotencyKey": "recon-capture", "paymentId": payment_id,
               "captureId": "ch_3RcnA1"}),
    )
    .await;
    payment_id
}

fn report(payment_id: &str) -> String {
    format!(
        "balance_transaction_id,automatic_payout_id,available_on_utc,currency,gross,fee,net,reporting_category,source_id,payment_intent_id,charge_id,payment_metadata[ledger_payment_id]\n\
         txn_3RcnA1,po_1RcnP1,2026-11-20 00:00:00,usd,120.00,3.78,116.22,charge,ch_3RcnA1,pi_3RcnA1,ch_3RcnA1,{payment_id}\n"
    )
}

async fn import(app: &TestApp, role: Role, environment: Environment, input: Value) -> Answer {
    app.graphql_as(
        Some(app.key(role, environment)),
        IMPORT,
        json!({"input": input}),
    )
    .await
}

#[tokio::test]
async fn finance_imports_a_report_once_and_its_payout_is_recorded() {
    let app = spawn_app().await;
    let payment_id = captured_payment(&app).await;
    let input = json!({"idempotencyKey": "import-1", "csv": report(&payment_id),
                       "fileName": "november.csv"});

    let first = import(&app, Role::Finance, Environment::Test, input.clone()).await;
    let result = &first.data()["importStripePayoutReport"];
    assert_eq!(result["alreadyImported"], false);
    assert_eq!(result["lines"], 1);
    assert_eq!(result["matchedLines"], 1);
    assert_eq!(result["exceptions"], 0);
    assert_eq!(result["payoutsProven"], 1);
    assert_eq!(result["batchesRecorded"], 1);
    let head = app.log_head().await;

    let again = import(&app, Role::Finance, Environment::Test, input).await;
    let repeated = &again.data()["importStripePayoutReport"];
    assert_eq!(repeated["alreadyImported"], true);
    assert_eq!(repeated["runId"], result["runId"]);
    assert_eq!(app.log_head().await, head, "nothing new recorded");

    let payment = app
        .graphql(
            "query($id: UUID!) { payment(id: $id) { captures { captureId } } }",
            json!({"id": payment_id}),
        )
        .await;
    assert_eq!(
        payment.data()["payment"]["captures"][0]["captureId"],
        "ch_3RcnA1"
    );
    let batch = app
        .database
        .store()
        .read_all(1, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.event_type == "PayoutPaid")
        .count();
    assert_eq!(batch, 1, "the payout was recorded as paid");
}

#[tokio::test]
async fn only_finance_and_admin_import_and_a_reused_key_is_refused() {
    let app = spawn_app().await;
    let payment_id = captured_payment(&app).await;
    let head = app.log_head().await;
    for role in [Role::Service, Role::Support, Role::Auditor] {
        let answer = import(
            &app,
            role,
            Environment::Test,
            json!({"idempotencyKey": "import-role", "csv": report(&payment_id)}),
        )
        .await;
        assert_eq!(answer.error_code(), Some("FORBIDDEN"), "{role:?}");
    }
    assert_eq!(app.log_head().await, head);

    let first = import(
        &app,
        Role::Admin,
        Environment::Test,
        json!({"idempotencyKey": "import-key", "csv": report(&payment_id)}),
    )
    .await;
    first.data();
    let other_file = report(&payment_id).replace("txn_3RcnA1", "txn_3RcnB2");
    let reused = import(
        &app,
        Role::Admin,
        Environment::Test,
        json!({"idempotencyKey": "import-key", "csv": other_file}),
    )
    .await;
    assert_eq!(
        reused.error_code(),
        Some("IDEMPOTENCY_KEY_REUSED"),
        "{:?}",
        reused.body
    );
}

#[tokio::test]
async fn a_file_that_is_not_the_report_is_refused_and_a_live_import_sees_no_test_payment() {
    let app = spawn_app().await;
    let payment_id = captured_payment(&app).await;
    let head = app.log_head().await;

    let wrong = import(
        &app,
        Role::Finance,
        Environment::Test,
        json!({"idempotencyKey": "import-wrong", "csv": "id,amount\n1,2\n"}),
    )
    .await;
    assert_eq!(wrong.error_code(), Some("VALIDATION_ERROR"));
    assert_eq!(app.log_head().await, head, "a refused file records nothing");

    let live = import(
        &app,
        Role::Finance,
        Environment::Live,
        json!({"idempotencyKey": "import-live", "csv": report(&payment_id)}),
    )
    .await;
    let result = &live.data()["importStripePayoutReport"];
    assert_eq!(
        result["matchedLines"], 0,
        "the test payment does not exist for a live import"
    );
    assert_eq!(result["exceptions"], 1);
    assert_eq!(result["batchesRecorded"], 0);
}

#[tokio::test]
async fn an_imported_exception_is_read_side_by_side_and_resolved_by_finance() {
    let app = spawn_app().await;
    let payment_id = captured_payment(&app).await;
    // The report says 125.00 where the ledger captured 120.00.
    let csv = report(&payment_id).replace("120.00,3.78,116.22", "125.00,3.78,121.22");
    let imported = import(
        &app,
        Role::Finance,
        Environment::Test,
        json!({"idempotencyKey": "import-mismatch", "csv": csv}),
    )
    .await;
    let result = &imported.data()["importStripePayoutReport"];
    assert_eq!(result["exceptions"], 1);

    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    let listed = app
        .graphql_as(
            Some(&finance),
            "query($run: UUID!, $at: Position) { reconciliationExceptions(filter: {runId: $run, resolved: false}, waitForPosition: $at) { \
               edges { node { id class lineNumber payoutId paymentId \
               ledger { amount currency } report { gross fee net balanceTransactionId } } } } }",
            json!({"run": result["runId"], "at": result["position"]}),
        )
        .await;
    let edges = listed.data()["reconciliationExceptions"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 1, "{}", listed.body);
    let exception = &edges[0]["node"];
    assert_eq!(exception["class"], "AMOUNT_MISMATCH");
    assert_eq!(exception["lineNumber"], 2);
    assert_eq!(exception["payoutId"], "po_1RcnP1");
    assert_eq!(exception["paymentId"], payment_id.as_str());
    assert_eq!(exception["ledger"]["amount"], "120.00");
    assert_eq!(exception["report"]["gross"], "125.00");
    assert_eq!(exception["report"]["balanceTransactionId"], "txn_3RcnA1");

    let resolved = app
        .graphql_as(
            Some(&finance),
            "mutation($input: ResolveReconciliationExceptionInput!) { resolveReconciliationException(input: $input) { position } }",
            json!({"input": {"idempotencyKey": "resolve-1", "exceptionId": exception["id"],
                             "reason": "Stripe corrected the charge; adjustment booked in December"}}),
        )
        .await;
    let position = resolved.data()["resolveReconciliationException"]["position"].clone();
    let open = app
        .graphql_as(
            Some(&finance),
            "query($run: UUID!, $at: Position) { reconciliationExceptions(filter: {runId: $run, resolved: false}, waitForPosition: $at) { edges { node { id } } } }",
            json!({"run": result["runId"], "at": position}),
        )
        .await;
    assert_eq!(
        open.data()["reconciliationExceptions"]["edges"],
        json!([]),
        "nothing left open"
    );
}

#[tokio::test]
async fn a_payout_event_parked_until_its_batch_exists_applies_after_the_import() {
    let app = spawn_app().await;
    let payment_id = captured_payment(&app).await;
    let mut event: Value = serde_json::from_str(include_str!(
        "../../../ledger-stripe/tests/fixtures/stripe/payout.paid.json"
    ))
    .unwrap();
    event["id"] = json!("evt_1RcnPayoutPaid");
    event["created"] = json!(chrono::Utc::now().timestamp());
    event["data"]["object"]["id"] = json!("po_1RcnP1");
    event["data"]["object"]["amount"] = json!(11622);
    event["data"]["object"]["currency"] = json!("usd");
    let body = serde_json::to_vec(&event).unwrap();
    let secret =
        ledger_stripe::gateway::WebhookSecret::new(Environment::Test, WEBHOOK_SECRET).unwrap();
    let delivered = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header(
            "Stripe-Signature",
            ledger_stripe::gateway::sign(&secret, chrono::Utc::now().timestamp(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let answer: Value = delivered.json().await.unwrap();
    assert_eq!(answer["outcome"], "parked", "{answer}");

    let imported = import(
        &app,
        Role::Finance,
        Environment::Test,
        json!({"idempotencyKey": "import-parked", "csv": report(&payment_id)}),
    )
    .await;
    assert_eq!(
        imported.data()["importStripePayoutReport"]["payoutsProven"],
        1
    );

    let support = app.key(Role::Support, Environment::Test).to_owned();
    let deliveries = app
        .graphql_as(
            Some(&support),
            "{ webhookDeliveries(stripeEventId: \"evt_1RcnPayoutPaid\") { outcome } }",
            json!({}),
        )
        .await;
    let outcome = &deliveries.data()["webhookDeliveries"][0]["outcome"];
    assert_ne!(
        outcome, "parked",
        "the import let the parked payout event apply"
    );
}
