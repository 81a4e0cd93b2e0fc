//! The payment flows of domain.md, each through GraphQL from start to end.

use ledger_api::auth::Role;
use ledger_core::ids::Environment;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn manual_capture_refund_and_a_won_dispute() {
    let app = spawn_app().await;
    let id = initiate(&app, "flow-1", "100.00", "MANUAL").await;
    let authorized = authorize(&app, &id).await;
    assert_eq!(authorized["payment"]["status"], "AUTHORIZED");
    assert_eq!(authorized["payment"]["authorizedAmount"], "100.00");

    let captured = payment_mutation(
        &app,
        "capturePayment",
        json!({"idempotencyKey": "cap-1", "paymentId": id, "amount": "60", "final": false}),
    )
    .await;
    assert_eq!(captured["payment"]["status"], "PARTIALLY_CAPTURED");
    assert_eq!(captured["payment"]["capturedAmount"], "60.00");
    assert_eq!(captured["events"][0]["type"], "PaymentCaptured");
    assert!(
        captured["position"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 3
    );

    let captured = payment_mutation(
        &app,
        "capturePayment",
        json!({"idempotencyKey": "cap-2", "paymentId": id}),
    )
    .await;
    assert_eq!(captured["payment"]["status"], "CAPTURED");
    assert_eq!(captured["payment"]["capturedAmount"], "100.00");

    let refunded = payment_mutation(
        &app,
        "refundPayment",
        json!({"idempotencyKey": "ref-1", "paymentId": id, "amount": "30.00", "refundId": "re_1"}),
    )
    .await;
    assert_eq!(refunded["payment"]["refundPendingAmount"], "30.00");
    assert_eq!(refunded["payment"]["refundableAmount"], "70.00");
    let outcome = payment_mutation(
        &app,
        "recordRefundOutcome",
        json!({"idempotencyKey": "ref-1-ok", "paymentId": id, "refundId": "re_1", "outcome": "SUCCEEDED"}),
    )
    .await;
    assert_eq!(outcome["payment"]["status"], "PARTIALLY_REFUNDED");
    assert_eq!(outcome["payment"]["refundedAmount"], "30.00");

    let disputed = payment_mutation(
        &app,
        "openDispute",
        json!({"idempotencyKey": "dp-1", "paymentId": id, "disputeId": "dp_1",
               "amount": "50.00", "reason": "fraudulent", "fee": "15.00"}),
    )
    .await;
    assert_eq!(disputed["payment"]["disputedAmount"], "50.00");
    assert_eq!(disputed["payment"]["refundableAmount"], "20.00");
    payment_mutation(
        &app,
        "submitDisputeEvidence",
        json!({"idempotencyKey": "dp-1-ev", "paymentId": id, "disputeId": "dp_1",
               "evidence": {"receipt": "https://shop.example/r/1"}}),
    )
    .await;
    let won = payment_mutation(
        &app,
        "resolveDispute",
        json!({"idempotencyKey": "dp-1-won", "paymentId": id, "disputeId": "dp_1", "outcome": "WON"}),
    )
    .await;
    assert_eq!(won["payment"]["disputes"][0]["status"], "WON");
    assert_eq!(won["payment"]["disputedAmount"], "0.00");
    assert_eq!(won["payment"]["refundableAmount"], "70.00");

    let query = format!("query($id: UUID!) {{ payment(id: $id) {{ {PAYMENT_FIELDS} events {{ position type hash }} }} }}");
    // The history is support's to read (the service key sees its commands' own events).
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let answer = app
        .graphql_as(Some(&support), &query, json!({"id": id}))
        .await;
    let payment = &answer.data()["payment"];
    assert_eq!(payment["version"], "9");
    assert_eq!(payment["events"].as_array().unwrap().len(), 9);
    assert_eq!(payment["events"][0]["type"], "PaymentInitiated");
}

#[tokio::test]
async fn automatic_capture_is_captured_on_authorization() {
    let app = spawn_app().await;
    let id = initiate(&app, "auto-1", "42.10", "AUTOMATIC").await;
    let authorized = authorize(&app, &id).await;
    assert_eq!(authorized["payment"]["status"], "CAPTURED");
    assert_eq!(authorized["payment"]["capturedAmount"], "42.10");
    assert_eq!(authorized["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_declined_payment_accepts_nothing_more() {
    let app = spawn_app().await;
    let id = initiate(&app, "decl-1", "10.00", "MANUAL").await;
    let declined = payment_mutation(
        &app,
        "recordAuthorization",
        json!({"idempotencyKey": "decl-1-auth", "paymentId": id, "outcome": "DECLINED",
               "declineCode": "insufficient_funds"}),
    )
    .await;
    assert_eq!(declined["payment"]["status"], "DECLINED");
    let answer = app
        .graphql(
            &mutation("capturePayment", "CapturePaymentInput"),
            json!({"input": {"idempotencyKey": "decl-1-cap", "paymentId": id}}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("RULE_VIOLATION"));
    assert_eq!(answer.error_rule(), Some("payment_is_final"));
}

#[tokio::test]
async fn a_void_releases_the_authorization() {
    let app = spawn_app().await;
    let id = initiate(&app, "void-1", "10.00", "MANUAL").await;
    authorize(&app, &id).await;
    let voided = payment_mutation(
        &app,
        "voidPayment",
        json!({"idempotencyKey": "void-1-void", "paymentId": id, "reason": "customer cancelled"}),
    )
    .await;
    assert_eq!(voided["payment"]["status"], "VOIDED");
}

#[tokio::test]
async fn a_settlement_batch_and_its_payout() {
    let app = spawn_app().await;
    let id = initiate(&app, "settle-1", "100.00", "AUTOMATIC").await;
    authorize(&app, &id).await;
    let batch_id = uuid::Uuid::new_v4().to_string();
    let settlement_fields = "batch { id gross fees reserve net items { paymentId kind itemId } payouts { payoutId status amount } } events { type } position";
    let record = format!(
        "mutation($input: RecordSettlementBatchInput!) {{ recordSettlementBatch(input: $input) {{ {settlement_fields} }} }}"
    );
    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&finance),
            &record,
            json!({"input": {"idempotencyKey": "batch-1", "batchId": batch_id, "merchantId": "merchant-1",
                   "currency": "USD", "reserve": "5.00",
                   "items": [{"paymentId": id, "kind": "CAPTURE", "itemId": "automatic", "gross": "100.00", "fee": "3.20"}]}}),
        )
        .await;
    let batch = &answer.data()["recordSettlementBatch"];
    assert_eq!(batch["batch"]["net"], "91.80");
    // The batch's header, its items, and the payment's CaptureSettled.
    assert_eq!(batch["events"].as_array().unwrap().len(), 3);
    let payout = format!(
        "mutation($input: RecordPayoutInput!) {{ recordPayout(input: $input) {{ {settlement_fields} }} }}"
    );
    let answer = app
        .graphql_as(
            Some(&finance),
            &payout,
            json!({"input": {"idempotencyKey": "payout-1", "batchId": batch_id, "payoutId": "po_1",
                   "amount": "91.80", "status": "PAID"}}),
        )
        .await;
    let payouts = &answer.data()["recordPayout"]["batch"]["payouts"];
    assert_eq!(payouts[0]["status"], "PAID");
    let query = "query($id: UUID!) { payment(id: $id) { captures { captureId settledInBatch } } }";
    let answer = app.graphql(query, json!({"id": id})).await;
    assert_eq!(
        answer.data()["payment"]["captures"][0]["settledInBatch"],
        batch_id.as_str()
    );
}

/// `/metrics` shows how the server's writer batches: every command answered is a request of
/// some committed batch.
#[tokio::test]
async fn commands_are_counted_in_the_writer_metrics() {
    let app = spawn_app().await;
    let requests = "ledger_writer_requests_total ";
    let batches = "ledger_writer_batches_total ";
    let before = metrics(&app).await;
    for number in 0..3 {
        initiate(&app, &format!("metrics-{number}"), "10.00", "MANUAL").await;
    }
    let after = metrics(&app).await;
    assert_eq!(series(&after, requests) - series(&before, requests), 3.0);
    let committed = series(&after, batches) - series(&before, batches);
    assert!((1.0..=3.0).contains(&committed), "{after}");
    assert!(after.contains("# TYPE ledger_writer_pipelined_batches_total counter"));
    assert!(after.contains("ledger_writer_written_again_batches_total 0"));
}

/// A capture or refund given an amount reads nothing of its payment's stream when this
/// process keeps the payment's fold: the amount's currency, the default amounts and the
/// approval check come from the state the command is decided on, under the stream's turn,
/// not from a read of their own before it, and the append checks that state's version.
#[tokio::test]
async fn a_command_built_from_its_kept_payment_reads_nothing_of_the_stream() {
    let app = spawn_app().await;
    let id = initiate(&app, "reads-1", "100.00", "MANUAL").await;
    authorize(&app, &id).await;
    let handler = &app.state.app.handler;

    let before = handler.stream_reads();
    let captured = payment_mutation(
        &app,
        "capturePayment",
        json!({"idempotencyKey": "reads-cap", "paymentId": id, "amount": "60", "final": false}),
    )
    .await;
    assert_eq!(captured["payment"]["capturedAmount"], "60.00");
    assert_eq!(handler.stream_reads() - before, 0, "no read for a capture");

    let before = handler.stream_reads();
    let refunded = payment_mutation(
        &app,
        "refundPayment",
        json!({"idempotencyKey": "reads-ref", "paymentId": id}),
    )
    .await;
    assert_eq!(refunded["payment"]["refundPendingAmount"], "60.00");
    assert_eq!(handler.stream_reads() - before, 0, "no read for a refund");
}

#[tokio::test]
async fn a_failed_capture_is_recorded_and_the_authorization_stays_open() {
    let app = spawn_app().await;
    let id = initiate(&app, "capfail-1", "30.00", "MANUAL").await;
    authorize(&app, &id).await;
    let failed = payment_mutation(
        &app,
        "recordCaptureFailure",
        json!({"idempotencyKey": "capfail-1-f", "paymentId": id, "captureId": "cap_try_1",
               "reason": "processor timeout", "retryable": true}),
    )
    .await;
    assert_eq!(failed["events"][0]["type"], "CaptureFailed");
    assert_eq!(failed["payment"]["status"], "AUTHORIZED");
    assert_eq!(failed["payment"]["capturedAmount"], "0.00");
    let captured = payment_mutation(
        &app,
        "capturePayment",
        json!({"idempotencyKey": "capfail-1-c", "paymentId": id, "captureId": "cap_try_2"}),
    )
    .await;
    assert_eq!(captured["payment"]["status"], "CAPTURED");
    // Once nothing is capturable, a failure has nothing to fail: the capture rule says so.
    let answer = app
        .graphql(
            &mutation("recordCaptureFailure", "RecordCaptureFailureInput"),
            json!({"input": {"idempotencyKey": "capfail-1-late", "paymentId": id, "reason": "late"}}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("RULE_VIOLATION"), "{answer:?}");
}

#[tokio::test]
async fn authorizations_past_their_expiry_expire_as_the_system() {
    let app = spawn_app().await;
    let due = initiate(&app, "exp-due", "15.00", "MANUAL").await;
    let later = initiate(&app, "exp-later", "15.00", "MANUAL").await;
    for (id, expires_at) in [
        (&due, chrono::Utc::now() - chrono::Duration::minutes(5)),
        (&later, chrono::Utc::now() + chrono::Duration::days(6)),
    ] {
        payment_mutation(
            &app,
            "recordAuthorization",
            json!({"idempotencyKey": format!("auth-{id}"), "paymentId": id, "outcome": "APPROVED",
                   "expiresAt": expires_at.to_rfc3339()}),
        )
        .await;
    }
    // The sweep finds candidates in the read model, as `ledger serve` does every 30 s.
    let head = app.log_head().await;
    app.graphql(
        "query($at: Position) { payments(waitForPosition: $at) { edges { node { id } } } }",
        json!({"at": head.to_string()}),
    )
    .await
    .data();
    let expired = ledger_api::expiry::expire_due_authorizations(
        &app.state.app.handler,
        &app.state.app.pool,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(expired, 1);
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let query = "query($id: UUID!) { payment(id: $id) { status events { type metadata } } }";
    let answer = app
        .graphql_as(Some(&support), query, json!({"id": due}))
        .await;
    let payment = &answer.data()["payment"];
    assert_eq!(payment["status"], "EXPIRED");
    let last = payment["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "AuthorizationExpired");
    assert_eq!(last["metadata"]["actor_id"], "system", "{last}");
    let answer = app
        .graphql_as(Some(&support), query, json!({"id": later}))
        .await;
    assert_eq!(answer.data()["payment"]["status"], "AUTHORIZED");
    // A second sweep finds nothing more to do (the read model may still list the expired
    // one for a moment; the rules refuse it again).
    let again = ledger_api::expiry::expire_due_authorizations(
        &app.state.app.handler,
        &app.state.app.pool,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(again, 0);
}

#[tokio::test]
async fn capture_mode_and_final_accept_an_explicit_null_as_their_default() {
    let app = spawn_app().await;
    let initiated = payment_mutation(
        &app,
        "initiatePayment",
        json!({"idempotencyKey": "null-mode", "orderId": "o-null", "merchantId": "merchant-1",
               "amount": "20.00", "currency": "USD", "captureMode": null}),
    )
    .await;
    let id = initiated["payment"]["id"].as_str().unwrap().to_owned();
    let authorized = authorize(&app, &id).await;
    // MANUAL: the authorization waits for a capture.
    assert_eq!(authorized["payment"]["status"], "AUTHORIZED");
    let captured = payment_mutation(
        &app,
        "capturePayment",
        json!({"idempotencyKey": "null-final", "paymentId": id, "amount": "5.00", "final": null}),
    )
    .await;
    // Final by default: the rest of the authorization is released, nothing more to capture.
    assert_eq!(captured["payment"]["status"], "CAPTURED");
    assert_eq!(captured["payment"]["capturedAmount"], "5.00");
}

#[tokio::test]
async fn a_decline_without_a_decline_code_is_recorded() {
    let app = spawn_app().await;
    let id = initiate(&app, "no-code", "9.00", "MANUAL").await;
    let declined = payment_mutation(
        &app,
        "recordAuthorization",
        json!({"idempotencyKey": "no-code-decl", "paymentId": id, "outcome": "DECLINED"}),
    )
    .await;
    assert_eq!(declined["payment"]["status"], "DECLINED");
    assert_eq!(declined["events"][0]["type"], "PaymentDeclined");
    let answer = app
        .graphql(
            "query($id: UUID!) { payment(id: $id) { declineCode } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        answer.data()["payment"]["declineCode"],
        serde_json::Value::Null
    );
}
