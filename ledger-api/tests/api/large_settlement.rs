//! A settlement batch of the largest size the contract allows (2,000 items) through
//! `recordSettlementBatch`: recorded in one atomic append, settled on every payment, shown by
//! the settlement read model, and exported in a log the independent checker accepts.

use std::io::Write as _;
use std::process::{Command, Stdio};

use chrono::Utc;
use ledger_core::ids::{Environment, MerchantId, OrderId, PaymentId};
use ledger_core::payment::{
    CaptureMode, InitiatePayment, PaymentCommand, PaymentState, RecordAuthorization,
};
use ledger_core::settlement::MAX_SETTLEMENT_ITEMS;
use ledger_core::{Currency, PositiveMoney};
use ledger_store::commands::{CommandContext, CommandHandler};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const MERCHANT: &str = "merchant-large";

fn context() -> CommandContext {
    CommandContext {
        environment: Environment::Test,
        actor_id: "test".to_owned(),
        actor_role: "service".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: None,
    }
}

/// `count` payments of 10.00 captured automatically on approval (capture id `automatic`),
/// recorded concurrently through the store's command handler as a service would send them.
async fn captured_payments(app: &TestApp, count: usize) -> Vec<PaymentId> {
    let handler = CommandHandler::new(app.database.store());
    let mut tasks = tokio::task::JoinSet::new();
    for number in 0..count {
        let handler = handler.clone();
        tasks.spawn(async move {
            let payment_id = PaymentId::from_uuid(Uuid::new_v4());
            let initiate = PaymentCommand::Initiate(InitiatePayment {
                merchant_id: MerchantId::parse(MERCHANT).unwrap(),
                order_id: OrderId::parse(format!("order-large-{number}")).unwrap(),
                environment: Environment::Test,
                amount: PositiveMoney::parse("10.00", Currency::USD).unwrap(),
                capture_mode: CaptureMode::Automatic,
                payment_method: None,
            });
            let approve = PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
                authorized_amount: None,
                authorization_code: None,
                gateway_reference: None,
                expires_at: None,
            });
            for command in [initiate, approve] {
                handler
                    .handle_payment(payment_id, &command, &context())
                    .await
                    .unwrap();
            }
            payment_id
        });
    }
    let mut payment_ids = Vec::with_capacity(count);
    while let Some(payment_id) = tasks.join_next().await {
        payment_ids.push(payment_id.unwrap());
    }
    payment_ids
}

/// `python3 audit/verify_export.py` on an export, and what it printed.
fn independent_check(export: &[u8]) -> (bool, String) {
    let checker =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/verify_export.py");
    let mut child = Command::new("python3")
        .arg(checker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(export).unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_2000_items_is_recorded_settled_projected_and_exported() {
    let app = spawn_app().await;
    let payment_ids = captured_payments(&app, MAX_SETTLEMENT_ITEMS).await;
    let batch_id = Uuid::new_v4();
    let items: Vec<Value> = payment_ids
        .iter()
        .map(|id| {
            json!({"paymentId": id.to_string(), "kind": "CAPTURE", "itemId": "automatic",
                   "gross": "10.00", "fee": "0.59"})
        })
        .collect();
    let record =
        "mutation($input: RecordSettlementBatchInput!) { recordSettlementBatch(input: $input) { \
        batch { id gross fees net items { paymentId } } events { type } position } }";
    let finance = app
        .key(ledger_api::auth::Role::Finance, Environment::Test)
        .to_owned();

    let answer = app
        .graphql_as(
            Some(&finance),
            record,
            json!({"input": {"idempotencyKey": "large-batch", "batchId": batch_id,
                   "merchantId": MERCHANT, "currency": "USD", "items": items}}),
        )
        .await;

    let result = &answer.data()["recordSettlementBatch"];
    assert_eq!(result["batch"]["gross"], "20000.00");
    assert_eq!(result["batch"]["fees"], "1180.00");
    assert_eq!(result["batch"]["net"], "18820.00");
    assert_eq!(result["batch"]["items"].as_array().unwrap().len(), 2_000);
    // One append: the batch's header and 20 events of 100 items, and a Settled event on each
    // payment.
    let types: Vec<&str> = result["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 1 + 20 + 2_000);
    assert_eq!(types[0], "SettlementBatchRecorded");
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "SettlementItemsAdded")
            .count(),
        20
    );
    assert_eq!(
        types.iter().filter(|t| **t == "CaptureSettled").count(),
        2_000
    );

    // Every payment holds its capture as settled in the batch.
    let handler = CommandHandler::new(app.database.store());
    for payment_id in &payment_ids {
        let state: PaymentState = handler.load(payment_id.as_uuid()).await.unwrap();
        let payment = state.payment.unwrap();
        assert_eq!(
            payment.captures[0].settled_in.map(|id| id.as_uuid()),
            Some(batch_id),
            "{payment_id}"
        );
    }
    // The settlement read model, once it reaches the append, shows the whole batch.
    let position = result["position"].clone();
    let summary = app
        .graphql_as(
            Some(&finance),
            "query($at: Position) { settlementBatches(first: 5, waitForPosition: $at) { edges { node { id itemCount net } } } }",
            json!({"at": position}),
        )
        .await;
    let node = &summary.data()["settlementBatches"]["edges"][0]["node"];
    assert_eq!(node["id"], batch_id.to_string());
    assert_eq!(node["itemCount"], 2_000);
    assert_eq!(node["net"], "18820.00");
    let projected: i64 =
        sqlx::query_scalar("SELECT count(*) FROM projection_settlement_items WHERE batch_id = $1")
            .bind(batch_id)
            .fetch_one(app.database.pool())
            .await
            .unwrap();
    assert_eq!(projected, 2_000);
    let settled_payments: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT payment_id) FROM projection_settlement_items WHERE batch_id = $1 AND kind = 'CAPTURE'",
    )
    .bind(batch_id)
    .fetch_one(app.database.pool())
    .await
    .unwrap();
    assert_eq!(settled_payments, 2_000);

    // The read models agree with a refold of the log, the books balance, and the export of the
    // log passes the auditor's independent check.
    let report = ledger_projections::verify(&app.database.store(), Default::default())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.discrepancies);
    let mut export = Vec::new();
    let exported = ledger_projections::export(&app.database.store(), 1, None, &mut export)
        .await
        .unwrap();
    assert_eq!(exported.last_position, Some(app.log_head().await));
    assert!(exported.events > 2 * 2_000 + 2_021);
    let (passed, printed) = independent_check(&export);
    assert!(passed, "{printed}");
}
