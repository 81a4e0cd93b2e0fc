//! What each role may read, per interfaces.md: a payment's history needs the history
//! permission (a command's own events excepted), a stream's history the permission of its
//! kind, finance reads the global log, and every role is an allow-list.

use ledger_api::auth::{Permission, Role};
use ledger_core::ids::Environment;
use serde_json::json;

use crate::helpers::*;

/// The roles table of interfaces.md, as allow-lists. A permission added to the code later is
/// in no row here, so this test fails until someone decides who gets it.
#[test]
fn every_role_has_exactly_the_permissions_of_the_contract() {
    use Permission::*;
    let reads = [
        ReadPayments,
        ReadOrdersAndDisputes,
        ReadPaymentHistory,
        ReadSettlements,
        ReadBalances,
        ReadGlobalLog,
        ReadReconciliations,
    ];
    let table: [(Role, Vec<Permission>); 5] = [
        (
            Role::Service,
            vec![ReadPayments, SubmitPaymentCommands, RecordSettlements],
        ),
        (
            Role::Support,
            vec![ReadPayments, ReadOrdersAndDisputes, ReadPaymentHistory],
        ),
        (
            Role::Finance,
            [reads.as_slice(), &[RecordSettlements, RunReconciliation]].concat(),
        ),
        (Role::Auditor, reads.to_vec()),
        (Role::Admin, Permission::ALL.to_vec()),
    ];
    for (role, allowed) in table {
        for permission in Permission::ALL {
            assert_eq!(
                role.may(permission),
                allowed.contains(&permission),
                "{role} {permission:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_payments_history_needs_the_history_permission_but_a_commands_own_events_do_not() {
    let app = spawn_app().await;
    // The service key records the payment and sees the events its command recorded.
    let initiated = payment_mutation(
        &app,
        "initiatePayment",
        json!({"idempotencyKey": "hist-1", "orderId": "o", "merchantId": "m",
               "amount": "3.00", "currency": "USD"}),
    )
    .await;
    assert_eq!(initiated["events"].as_array().unwrap().len(), 1);
    let id = initiated["payment"]["id"].as_str().unwrap().to_owned();
    let history = "query($id: UUID!) { payment(id: $id) { id events { position } } }";
    let service = app.key(Role::Service, Environment::Test).to_owned();
    let answer = app
        .graphql_as(Some(&service), history, json!({"id": id}))
        .await;
    assert_eq!(answer.error_code(), Some("FORBIDDEN"), "{answer:?}");
    let answer = app
        .graphql_as(
            Some(&service),
            "query($id: UUID!) { events(streamId: $id) { position } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("FORBIDDEN"), "{answer:?}");
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let answer = app
        .graphql_as(Some(&support), history, json!({"id": id}))
        .await;
    assert_eq!(
        answer.data()["payment"]["events"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_streams_history_needs_the_read_permission_of_its_kind() {
    let app = spawn_app().await;
    let payment_id = initiate(&app, "kind-hist", "10.00", "AUTOMATIC").await;
    authorize(&app, &payment_id).await;
    let batch_id = uuid::Uuid::new_v4().to_string();
    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    app.graphql_as(
        Some(&finance),
        "mutation($input: RecordSettlementBatchInput!) { recordSettlementBatch(input: $input) { position } }",
        json!({"input": {"idempotencyKey": "kind-batch", "batchId": batch_id, "merchantId": "merchant-1",
               "currency": "USD",
               "items": [{"paymentId": payment_id, "kind": "CAPTURE", "itemId": "automatic", "gross": "10.00", "fee": "0.30"}]}}),
    )
    .await
    .data();
    let history = "query($id: UUID!) { events(streamId: $id) { type } }";
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let refused = app
        .graphql_as(Some(&support), history, json!({"id": batch_id}))
        .await;
    assert_eq!(refused.error_code(), Some("FORBIDDEN"), "{refused:?}");
    let allowed = app
        .graphql_as(Some(&support), history, json!({"id": payment_id}))
        .await;
    assert!(!allowed.data()["events"].as_array().unwrap().is_empty());
    let read = app
        .graphql_as(Some(&finance), history, json!({"id": batch_id}))
        .await;
    assert!(!read.data()["events"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn finance_reads_the_global_log() {
    let app = spawn_app().await;
    initiate(&app, "global-1", "1.00", "MANUAL").await;
    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&finance),
            "{ events(first: 10) { position } }",
            json!({}),
        )
        .await;
    assert_eq!(answer.data()["events"].as_array().unwrap().len(), 1);
}
