//! Reconciliation through the API: runs, their payouts and exceptions (the ledger's side beside
//! the report's), filters and pages, resolving an exception (idempotent, once, by the right
//! roles, within the key's environment), and the latest verdict beside settlement exceptions.
//! Runs are recorded through the command handler, as the importer records them.

use std::collections::HashSet;

use chrono::{TimeZone, Utc};
use ledger_api::auth::Role;
use ledger_core::ids::{
    CaptureId, Environment, PaymentId, PayoutId, ReconciliationExceptionId, ReconciliationRunId,
    SettlementBatchId,
};
use ledger_core::payment::SettledItem;
use ledger_core::reconciliation::{
    ExceptionClass, LedgerSide, PayoutOutcome, PayoutReconciled, ReconciliationCommand,
    ReconciliationException, ReconciliationRunState, ReconciliationSource, ReportSide, StartRun,
};
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money};
use ledger_store::commands::{CommandContext, CommandHandler};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

fn text(value: &str) -> ShortText {
    ShortText::parse(value).unwrap()
}

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::USD).unwrap()
}

/// A run as the importer leaves it, and the log position its last event reached.
struct Run {
    id: ReconciliationRunId,
    exceptions: Vec<ReconciliationException>,
    position: u64,
}

/// One verdict of a run: payout, its batch, and how many exceptions it had.
struct Verdict<'a> {
    payout_id: &'a str,
    batch_id: SettlementBatchId,
    exceptions: u64,
}

/// Records a completed run of `environment` with these exceptions and verdicts through the
/// command handler.
async fn record_run(
    app: &TestApp,
    environment: Environment,
    exceptions: Vec<ReconciliationException>,
    verdicts: &[Verdict<'_>],
) -> Run {
    let handler = CommandHandler::new(app.database.store());
    let context = CommandContext {
        environment,
        actor_id: "importer".to_owned(),
        actor_role: "finance".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: None,
    };
    let id = ReconciliationRunId::new_random();
    let mut commands = vec![
        ReconciliationCommand::Start(StartRun {
            environment,
            source: ReconciliationSource::StripePayouts,
            file_name: Some(text("payouts-2026-11.csv")),
            file_sha256: "ab".repeat(32),
            started_by: text("finance-key"),
            started_at: Utc::now(),
            availability_days: 2,
        }),
        ReconciliationCommand::RecordExceptions {
            exceptions: exceptions.clone(),
        },
    ];
    for verdict in verdicts {
        commands.push(ReconciliationCommand::RecordPayout(PayoutReconciled {
            payout_id: PayoutId::parse(verdict.payout_id).unwrap(),
            batch_id: verdict.batch_id,
            currency: Currency::USD,
            line_count: 2,
            exception_count: verdict.exceptions,
            gross: usd("20.00"),
            fees: usd("0.60"),
            net: usd("19.40"),
            ledger_amount: None,
            outcome: if verdict.exceptions == 0 {
                PayoutOutcome::Proven
            } else {
                PayoutOutcome::Unproven
            },
            batch_recorded: false,
        }));
    }
    commands.push(ReconciliationCommand::Complete {
        lines: 12,
        matched_lines: 7,
        completed_at: Utc::now(),
    });
    let mut state = ReconciliationRunState::default();
    let mut position = 0;
    for command in &commands {
        let (next, events) = handler
            .advance_reconciliation(id, state, command, &context)
            .await
            .unwrap();
        state = next;
        position = events.last().map_or(position, |event| event.position);
    }
    Run {
        id,
        exceptions,
        position,
    }
}

fn exception(
    class: ExceptionClass,
    line: u64,
    payout: &str,
    payment_id: Option<PaymentId>,
    report: bool,
    ledger: bool,
) -> ReconciliationException {
    ReconciliationException {
        exception_id: ReconciliationExceptionId::new_random(),
        class,
        detail: text(&format!("line {line}: {}", class.as_str())),
        line_number: report.then_some(line),
        payout_id: Some(PayoutId::parse(payout).unwrap()),
        payment_id,
        item: payment_id
            .map(|_| SettledItem::Capture(CaptureId::parse(format!("ch_{line}")).unwrap())),
        report: report.then(|| ReportSide {
            balance_transaction_id: Some(text(&format!("txn_{line}"))),
            reporting_category: Some(text("charge")),
            currency: Some(text("usd")),
            gross: Some(text("10.00")),
            fee: Some(text("0.30")),
            net: Some(text("9.70")),
            available_on: Some(text("2026-11-20")),
        }),
        ledger: ledger.then(|| LedgerSide {
            currency: Currency::USD,
            amount: usd("9.5"),
            fee: Some(usd("0.3")),
            batch_id: None,
            recorded_at: Utc.with_ymd_and_hms(2026, 11, 18, 9, 30, 0).single(),
        }),
    }
}

/// Five exceptions of payout `po_a` (and one of `po_b`): two amount mismatches with both
/// sides, one missing from the ledger (report only), a fee mismatch, and a payout total (no
/// line, no sides).
fn five_exceptions(payment_id: PaymentId) -> Vec<ReconciliationException> {
    vec![
        exception(
            ExceptionClass::AmountMismatch,
            2,
            "po_a",
            Some(payment_id),
            true,
            true,
        ),
        exception(
            ExceptionClass::MissingFromLedger,
            3,
            "po_a",
            None,
            true,
            false,
        ),
        exception(
            ExceptionClass::FeeMismatch,
            4,
            "po_a",
            Some(payment_id),
            true,
            true,
        ),
        exception(
            ExceptionClass::AmountMismatch,
            5,
            "po_b",
            Some(payment_id),
            true,
            true,
        ),
        exception(
            ExceptionClass::PayoutTotalMismatch,
            0,
            "po_a",
            None,
            false,
            false,
        ),
    ]
}

async fn test_run(app: &TestApp) -> (Run, PaymentId) {
    let payment_id = PaymentId::new_random();
    let verdicts = [
        Verdict {
            payout_id: "po_a",
            batch_id: SettlementBatchId::new_random(),
            exceptions: 4,
        },
        Verdict {
            payout_id: "po_b",
            batch_id: SettlementBatchId::new_random(),
            exceptions: 1,
        },
    ];
    let run = record_run(
        app,
        Environment::Test,
        five_exceptions(payment_id),
        &verdicts,
    )
    .await;
    (run, payment_id)
}

const EXCEPTION_FIELDS: &str = "id runId class detail lineNumber payoutId paymentId itemKind itemId \
    report { balanceTransactionId reportingCategory currency gross fee net availableOn } \
    ledger { currency amount fee batchId recordedAt } foundAt resolved resolvedAt resolvedBy resolutionReason";

fn exceptions_query() -> String {
    format!(
        "query($filter: ReconciliationExceptionFilter, $first: Int, $after: String, $wait: Position) {{
            reconciliationExceptions(filter: $filter, first: $first, after: $after, waitForPosition: $wait) {{
                edges {{ cursor node {{ {EXCEPTION_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    )
}

/// Every exception of a filter, `size` at a time.
async fn all_exceptions(app: &TestApp, key: &str, filter: Value, size: i32) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..50 {
        let answer = app
            .graphql_as(
                Some(key),
                &exceptions_query(),
                json!({"filter": filter, "first": size, "after": after}),
            )
            .await;
        let page = answer.data()["reconciliationExceptions"].clone();
        for edge in page["edges"].as_array().unwrap() {
            nodes.push(edge["node"].clone());
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return nodes;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    panic!("more pages than exceptions");
}

fn ids_of(nodes: &[Value]) -> Vec<String> {
    nodes
        .iter()
        .map(|node| node["id"].as_str().unwrap().to_owned())
        .collect()
}

fn exception_ids(run: &Run) -> Vec<String> {
    run.exceptions
        .iter()
        .map(|exception| exception.exception_id.to_string())
        .collect()
}

const RUN_QUERY: &str = "query($id: UUID!, $wait: Position) { reconciliationRun(id: $id, waitForPosition: $wait) {
    id environment source fileName fileSha256 status completedAt
    summary { lines matchedLines exceptions unresolvedExceptions payoutsProven payoutsUnproven batchesRecorded }
    payouts { payoutId batchId currency lineCount exceptionCount gross fees net ledgerAmount outcome batchRecorded }
    exceptions(first: 2) { edges { node { id class } } pageInfo { hasNextPage endCursor } } } }";

#[tokio::test]
async fn runs_and_exceptions_are_read_with_filters_and_pages() {
    let app = spawn_app().await;
    let (run, payment_id) = test_run(&app).await;
    let live = record_run(
        &app,
        Environment::Live,
        vec![exception(
            ExceptionClass::InvalidRow,
            9,
            "po_live",
            None,
            true,
            false,
        )],
        &[],
    )
    .await;
    let wait = live.position.max(run.position).to_string();
    let finance = app.key(Role::Finance, Environment::Test).to_owned();

    let answer = app
        .graphql_as(
            Some(&finance),
            "query($wait: Position) { reconciliationRuns(first: 10, waitForPosition: $wait) {
                edges { cursor node { id status summary { exceptions } } } pageInfo { hasNextPage } } }",
            json!({"wait": wait}),
        )
        .await;
    let runs = answer.data()["reconciliationRuns"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(runs.len(), 1, "a test key sees only test runs: {runs:?}");
    assert_eq!(runs[0]["node"]["id"], run.id.to_string().as_str());
    assert_eq!(runs[0]["node"]["status"], "COMPLETED");

    let answer = app
        .graphql_as(Some(&finance), RUN_QUERY, json!({"id": run.id.to_string()}))
        .await;
    let node = &answer.data()["reconciliationRun"];
    assert_eq!(node["environment"], "TEST");
    assert_eq!(node["source"], "STRIPE_PAYOUTS");
    assert_eq!(node["fileName"], "payouts-2026-11.csv");
    assert_eq!(
        node["summary"],
        json!({"lines": 12, "matchedLines": 7, "exceptions": 5, "unresolvedExceptions": 5,
               "payoutsProven": 0, "payoutsUnproven": 2, "batchesRecorded": 0})
    );
    let payouts = node["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 2);
    assert_eq!(payouts[0]["payoutId"], "po_a");
    assert_eq!(payouts[0]["outcome"], "UNPROVEN");
    assert_eq!(payouts[0]["exceptionCount"], 4);
    assert_eq!(payouts[0]["net"], "19.40");
    assert_eq!(payouts[0]["ledgerAmount"], Value::Null);
    let first_two = &node["exceptions"];
    assert_eq!(
        ids_of(
            &first_two["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|edge| edge["node"].clone())
                .collect::<Vec<_>>()
        ),
        exception_ids(&run)[..2]
    );
    assert_eq!(first_two["pageInfo"]["hasNextPage"], true);

    // Every exception, two a page, in the order found, each once.
    let all = all_exceptions(&app, &finance, json!({}), 2).await;
    assert_eq!(ids_of(&all), exception_ids(&run));
    assert_eq!(ids_of(&all).iter().collect::<HashSet<_>>().len(), 5);
    // Side by side: the report as the file wrote it, the ledger at its currency's scale.
    let both = &all[0];
    assert_eq!(both["class"], "AMOUNT_MISMATCH");
    assert_eq!(both["lineNumber"], 2);
    assert_eq!(both["paymentId"], payment_id.to_string().as_str());
    assert_eq!(
        (both["itemKind"].as_str(), both["itemId"].as_str()),
        (Some("CAPTURE"), Some("ch_2"))
    );
    assert_eq!(
        both["report"],
        json!({"balanceTransactionId": "txn_2", "reportingCategory": "charge", "currency": "usd",
               "gross": "10.00", "fee": "0.30", "net": "9.70", "availableOn": "2026-11-20"})
    );
    assert_eq!(
        both["ledger"],
        json!({"currency": "USD", "amount": "9.50", "fee": "0.30", "batchId": null,
               "recordedAt": "2026-11-18T09:30:00+00:00"})
    );
    assert_eq!(both["resolved"], false);
    assert_eq!(both["resolvedAt"], Value::Null);
    assert_eq!(all[1]["class"], "MISSING_FROM_LEDGER");
    assert_eq!(all[1]["ledger"], Value::Null);
    assert_eq!(all[1]["report"]["gross"], "10.00");
    assert_eq!(all[4]["class"], "PAYOUT_TOTAL_MISMATCH");
    assert_eq!(
        (&all[4]["report"], &all[4]["ledger"], &all[4]["lineNumber"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );

    let filtered = |filter: Value| {
        let app = &app;
        let finance = finance.clone();
        async move { ids_of(&all_exceptions(app, &finance, filter, 100).await) }
    };
    let ids = exception_ids(&run);
    assert_eq!(
        filtered(json!({"class": "AMOUNT_MISMATCH"})).await,
        vec![ids[0].clone(), ids[3].clone()]
    );
    assert_eq!(
        filtered(json!({"class": "INVALID_ROW"})).await,
        Vec::<String>::new()
    );
    assert_eq!(filtered(json!({"resolved": false})).await, ids);
    assert_eq!(
        filtered(json!({"resolved": true})).await,
        Vec::<String>::new()
    );
    assert_eq!(filtered(json!({"runId": run.id.to_string()})).await, ids);
    assert_eq!(
        filtered(json!({"runId": live.id.to_string()})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        filtered(json!({"payoutId": "po_b"})).await,
        vec![ids[3].clone()]
    );
    assert_eq!(
        filtered(json!({"paymentId": payment_id.to_string(), "payoutId": "po_a"})).await,
        vec![ids[0].clone(), ids[2].clone()]
    );
    let answer = app
        .graphql_as(Some(&finance), &exceptions_query(), json!({"first": 101}))
        .await;
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));
    let answer = app
        .graphql_as(
            Some(&finance),
            &exceptions_query(),
            json!({"after": "bm90IGEgY3Vyc29y"}),
        )
        .await;
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));

    // Environments never meet: the live run is invisible to a test key, and the other way.
    let answer = app
        .graphql_as(
            Some(&finance),
            RUN_QUERY,
            json!({"id": live.id.to_string()}),
        )
        .await;
    assert_eq!(answer.data()["reconciliationRun"], Value::Null);
    let live_finance = app.key(Role::Finance, Environment::Live).to_owned();
    let live_exceptions = all_exceptions(&app, &live_finance, json!({}), 10).await;
    assert_eq!(ids_of(&live_exceptions), exception_ids(&live));
    assert_eq!(live_exceptions[0]["class"], "INVALID_ROW");
    let answer = app
        .graphql_as(
            Some(&live_finance),
            RUN_QUERY,
            json!({"id": run.id.to_string()}),
        )
        .await;
    assert_eq!(answer.data()["reconciliationRun"], Value::Null);

    // Finance, auditors and admins read runs; support and service may not.
    for role in Role::ALL {
        let key = app.key(role, Environment::Test).to_owned();
        for query in [
            "{ reconciliationRuns { edges { node { id } } } }".to_owned(),
            format!("{{ reconciliationRun(id: \"{}\") {{ id }} }}", run.id),
            "{ reconciliationExceptions { edges { node { id } } } }".to_owned(),
        ] {
            let answer = app.graphql_as(Some(&key), &query, json!({})).await;
            if matches!(role, Role::Finance | Role::Auditor | Role::Admin) {
                assert!(
                    answer.body.get("errors").is_none(),
                    "{role}: {}",
                    answer.body
                );
            } else {
                assert_eq!(answer.error_code(), Some("FORBIDDEN"), "{role} {query}");
            }
        }
    }
}

const RESOLVE: &str = "mutation($input: ResolveReconciliationExceptionInput!) {
    resolveReconciliationException(input: $input) {
        exception { id runId class detail lineNumber payoutId paymentId itemKind itemId
            report { balanceTransactionId reportingCategory currency gross fee net availableOn }
            ledger { currency amount fee batchId recordedAt } foundAt resolved resolvedAt resolvedBy resolutionReason }
        events { position type streamId payload }
        position replayed } }";

async fn resolve(
    app: &TestApp,
    key: &str,
    idempotency_key: &str,
    exception_id: &str,
    reason: &str,
) -> Answer {
    app.graphql_as(
        Some(key),
        RESOLVE,
        json!({"input": {"idempotencyKey": idempotency_key, "exceptionId": exception_id, "reason": reason}}),
    )
    .await
}

#[tokio::test]
async fn finance_resolves_an_exception_once() {
    let app = spawn_app().await;
    let (run, _) = test_run(&app).await;
    let live = record_run(
        &app,
        Environment::Live,
        vec![exception(
            ExceptionClass::InvalidRow,
            9,
            "po_live",
            None,
            true,
            false,
        )],
        &[],
    )
    .await;
    let ids = exception_ids(&run);
    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    // Reading first waits for the read model, which is where the mutation finds the run.
    let wait =
        json!({"id": run.id.to_string(), "wait": live.position.max(run.position).to_string()});
    app.graphql_as(Some(&finance), RUN_QUERY, wait).await.data();

    let answer = resolve(
        &app,
        &finance,
        "resolve-1",
        &ids[0],
        "webhook replayed by hand",
    )
    .await;
    let result = answer.data()["resolveReconciliationException"].clone();
    let resolved = &result["exception"];
    assert_eq!(resolved["id"], ids[0].as_str());
    assert_eq!(resolved["resolved"], true);
    assert_eq!(resolved["resolutionReason"], "webhook replayed by hand");
    assert!(resolved["resolvedAt"].is_string());
    assert!(!resolved["resolvedBy"].as_str().unwrap().is_empty());
    assert_eq!(result["replayed"], false);
    let events = result["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "ReconciliationExceptionResolved");
    assert_eq!(events[0]["streamId"], run.id.to_string().as_str());
    assert_eq!(events[0]["payload"]["exception_id"], ids[0].as_str());
    assert_eq!(result["position"], events[0]["position"]);

    // The same request again answers the same and records nothing; another one under the
    // same key is refused.
    let head = app.log_head().await;
    let again = resolve(
        &app,
        &finance,
        "resolve-1",
        &ids[0],
        "webhook replayed by hand",
    )
    .await;
    let again = again.data()["resolveReconciliationException"].clone();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["events"], result["events"]);
    assert_eq!(again["position"], result["position"]);
    assert_eq!(again["exception"], result["exception"]);
    let reused = resolve(&app, &finance, "resolve-1", &ids[0], "another reason").await;
    assert_eq!(reused.error_code(), Some("IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(app.log_head().await, head);

    // Resolved once only.
    let twice = resolve(&app, &finance, "resolve-2", &ids[0], "again").await;
    assert_eq!(twice.error_code(), Some("RULE_VIOLATION"));
    assert_eq!(
        twice.error_rule(),
        Some("reconciliation_exception_already_resolved")
    );

    // The read model shows what the mutation answered, and the run's open count dropped.
    let answer = app
        .graphql_as(
            Some(&finance),
            &exceptions_query(),
            json!({"filter": {"resolved": true}, "wait": result["position"]}),
        )
        .await;
    let edges = answer.data()["reconciliationExceptions"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"], result["exception"]);
    let answer = app
        .graphql_as(Some(&finance), RUN_QUERY, json!({"id": run.id.to_string()}))
        .await;
    assert_eq!(
        answer.data()["reconciliationRun"]["summary"]["unresolvedExceptions"],
        4
    );
    assert_eq!(
        answer.data()["reconciliationRun"]["summary"]["exceptions"],
        5
    );

    // Unknown, the other environment's, or the wrong role.
    let unknown = resolve(
        &app,
        &finance,
        "resolve-3",
        &Uuid::new_v4().to_string(),
        "x",
    )
    .await;
    assert_eq!(unknown.error_code(), Some("NOT_FOUND"));
    let live_id = live.exceptions[0].exception_id.to_string();
    let crossing = resolve(&app, &finance, "resolve-4", &live_id, "x").await;
    assert_eq!(crossing.error_code(), Some("NOT_FOUND"));
    let live_finance = app.key(Role::Finance, Environment::Live).to_owned();
    let crossing = resolve(&app, &live_finance, "resolve-5", &ids[1], "x").await;
    assert_eq!(crossing.error_code(), Some("NOT_FOUND"));
    for role in [Role::Support, Role::Service, Role::Auditor] {
        let key = app.key(role, Environment::Test).to_owned();
        let refused = resolve(&app, &key, &format!("resolve-{role}"), &ids[1], "x").await;
        assert_eq!(refused.error_code(), Some("FORBIDDEN"), "{role}");
    }
    let empty = resolve(&app, &finance, "resolve-6", &ids[1], "  ").await;
    assert_eq!(empty.error_code(), Some("VALIDATION_ERROR"));
    assert_eq!(app.log_head().await, head);

    // An admin resolves too; the live key resolves its own.
    let admin = app.key(Role::Admin, Environment::Test).to_owned();
    resolve(&app, &admin, "resolve-7", &ids[1], "adjusted by hand")
        .await
        .data();
    resolve(
        &app,
        &live_finance,
        "resolve-1",
        &live_id,
        "row fixed in the file",
    )
    .await
    .data();
}

#[tokio::test]
async fn settlement_exceptions_show_the_latest_reconciliation_verdict() {
    let app = spawn_app().await;
    let service = app.key(Role::Service, Environment::Test).to_owned();
    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    let initiate = mutation("initiatePayment", "InitiatePaymentInput");
    let mut payments = Vec::new();
    for index in 0..2 {
        let answer = app
            .graphql_as(
                Some(&service),
                &initiate,
                json!({"input": {"idempotencyKey": format!("rv-{index}"), "orderId": "o-rv",
                    "merchantId": "m-rv", "amount": "10.00", "currency": "USD", "captureMode": "AUTOMATIC"}}),
            )
            .await;
        let id = answer.data()["initiatePayment"]["payment"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        authorize(&app, &id).await;
        payments.push(id);
    }
    // The first capture is settled with a reserve and a failed payout; the second is not.
    let batch_id = Uuid::new_v4();
    app.graphql_as(Some(&finance),
        "mutation($input: RecordSettlementBatchInput!) { recordSettlementBatch(input: $input) { position } }",
        json!({"input": {"idempotencyKey": "rv-batch", "batchId": batch_id, "merchantId": "m-rv",
               "currency": "USD", "reserve": "5.00",
               "items": [{"paymentId": payments[0], "kind": "CAPTURE", "itemId": "automatic", "gross": "10.00", "fee": "0.30"}]}}))
        .await
        .data();
    app.graphql_as(
        Some(&finance),
        "mutation($input: RecordPayoutInput!) { recordPayout(input: $input) { position } }",
        json!({"input": {"idempotencyKey": "rv-payout", "batchId": batch_id, "payoutId": "po_rv",
               "amount": "4.70", "status": "FAILED", "failureReason": "account_closed"}}),
    )
    .await
    .data();
    let batch_id = SettlementBatchId::from_uuid(batch_id);
    let first = record_run(
        &app,
        Environment::Test,
        vec![exception(
            ExceptionClass::AmountMismatch,
            2,
            "po_rv",
            None,
            true,
            false,
        )],
        &[Verdict {
            payout_id: "po_rv",
            batch_id,
            exceptions: 1,
        }],
    )
    .await;
    let latest = record_run(
        &app,
        Environment::Test,
        Vec::new(),
        &[Verdict {
            payout_id: "po_rv",
            batch_id,
            exceptions: 0,
        }],
    )
    .await;
    // A live run of the same payout id is not the test environment's verdict.
    let live = record_run(
        &app,
        Environment::Live,
        Vec::new(),
        &[Verdict {
            payout_id: "po_rv",
            batch_id: SettlementBatchId::new_random(),
            exceptions: 3,
        }],
    )
    .await;
    let wait = first
        .position
        .max(latest.position)
        .max(live.position)
        .to_string();
    let answer = app
        .graphql_as(
            Some(&finance),
            "query($wait: Position) { settlementExceptions(merchantId: \"m-rv\", unsettledAfterDays: 0, waitForPosition: $wait) {
                kind subjectId itemId reconciliation { runId payoutId batchId outcome exceptionCount reconciledAt } } }",
            json!({"wait": wait}),
        )
        .await;
    let exceptions = answer.data()["settlementExceptions"]
        .as_array()
        .unwrap()
        .clone();
    let of_kind = |kind: &str| {
        exceptions
            .iter()
            .find(|exception| exception["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {exceptions:?}"))
            .clone()
    };
    let verdict = json!({"runId": latest.id.to_string(), "payoutId": "po_rv",
        "batchId": batch_id.to_string(), "outcome": "PROVEN", "exceptionCount": 0});
    for kind in ["RESERVE_WITHHELD", "PAYOUT_FAILED"] {
        let mut shown = of_kind(kind)["reconciliation"].clone();
        assert!(shown["reconciledAt"].is_string(), "{kind}: {shown}");
        shown.as_object_mut().unwrap().remove("reconciledAt");
        assert_eq!(shown, verdict, "{kind}");
    }
    let unsettled = of_kind("CAPTURE_NOT_SETTLED");
    assert_eq!(unsettled["subjectId"], payments[1].as_str());
    assert_eq!(unsettled["reconciliation"], Value::Null);
}
