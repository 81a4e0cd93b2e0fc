//! The read-model queries: keyset pages that stay exact under concurrent writes, filters,
//! orders, disputes, settlement, balances, metrics, roles, environments, and reading one's
//! own writes with `waitForPosition`.

use std::collections::HashSet;

use ledger_api::auth::Role;
use ledger_core::ids::Environment;
use serde_json::{json, Value};

use crate::helpers::*;

/// Runs a payment mutation as `key` and returns its result object.
async fn mutate_as(app: &TestApp, key: &str, name: &str, input: Value) -> Value {
    let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
    let answer = app
        .graphql_as(
            Some(key),
            &mutation(name, &input_type),
            json!({"input": input}),
        )
        .await;
    answer.data()[name].clone()
}

/// Initiates a payment of `merchant` for `order` and returns (payment id, position).
async fn pay(
    app: &TestApp,
    environment: Environment,
    idempotency_key: &str,
    merchant: &str,
    order: &str,
    mode: &str,
) -> (String, String) {
    let key = app.key(Role::Service, environment).to_owned();
    let result = mutate_as(
        app,
        &key,
        "initiatePayment",
        json!({"idempotencyKey": idempotency_key, "orderId": order, "merchantId": merchant,
               "amount": "10.00", "currency": "USD", "captureMode": mode}),
    )
    .await;
    (
        result["payment"]["id"].as_str().unwrap().to_owned(),
        result["position"].as_str().unwrap().to_owned(),
    )
}

const PAGE_QUERY: &str = "query($filter: PaymentFilter, $first: Int, $after: String, $wait: Position) {
    payments(filter: $filter, first: $first, after: $after, waitForPosition: $wait) {
        edges { cursor node { id status merchantId orderId amount capturedAmount version
                              captures { captureId amount } refunds { refundId } disputes { disputeId } } }
        pageInfo { hasNextPage endCursor } } }";

fn ids(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn payment_pages_are_exact_while_payments_are_recorded() {
    let app = spawn_app().await;
    let mut existing = Vec::new();
    let mut position = String::new();
    for index in 0..7 {
        let (id, at) = pay(
            &app,
            Environment::Test,
            &format!("pre-{index}"),
            "m-page",
            &format!("o-{index}"),
            "MANUAL",
        )
        .await;
        existing.push(id);
        position = at;
    }
    // A writer records payments of the same merchant all the while the pages are read.
    let writer = {
        let client = app.client.clone();
        let url = format!("{}/graphql", app.address);
        let key = app.key(Role::Service, Environment::Test).to_owned();
        tokio::spawn(async move {
            for index in 0..15 {
                let input = json!({"idempotencyKey": format!("concurrent-{index}"), "orderId": "o-c",
                    "merchantId": "m-page", "amount": "1.00", "currency": "USD"});
                let body = json!({"query": mutation("initiatePayment", "InitiatePaymentInput"),
                    "variables": {"input": input}});
                let response = client.post(&url).bearer_auth(&key).json(&body).send().await;
                assert!(response.is_ok_and(|response| response.status().is_success()));
            }
        })
    };
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let filter = json!({"merchantId": "m-page"});
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        // Payments recorded between pages must neither repeat nor hide earlier ones.
        pay(
            &app,
            Environment::Test,
            &format!("during-{pages}"),
            "m-page",
            "o-late",
            "MANUAL",
        )
        .await;
        let answer = app
            .graphql_as(
                Some(&support),
                PAGE_QUERY,
                json!({"filter": filter, "first": 3, "after": after, "wait": position}),
            )
            .await;
        let page = &answer.data()["payments"];
        seen.extend(ids(page));
        pages += 1;
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() || pages > 40 {
            break;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    writer.await.unwrap();
    assert!(pages >= 3, "{pages} pages");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no payment twice: {seen:?}");
    for id in &existing {
        assert!(unique.contains(id), "{id} missing");
    }
    // The pre-existing payments come first, in creation order.
    assert_eq!(seen[..existing.len()], existing[..]);
}

#[tokio::test]
async fn payments_are_filtered_by_order_status_and_time() {
    let app = spawn_app().await;
    let (first, _) = pay(
        &app,
        Environment::Test,
        "f-1",
        "m-filter",
        "o-a",
        "AUTOMATIC",
    )
    .await;
    let (second, _) = pay(&app, Environment::Test, "f-2", "m-filter", "o-b", "MANUAL").await;
    let captured = authorize(&app, &first).await;
    let position = captured["position"].as_str().unwrap().to_owned();
    let query = |filter: Value| json!({"filter": filter, "wait": position});
    let answer = app
        .graphql(
            PAGE_QUERY,
            query(json!({"merchantId": "m-filter", "status": "CAPTURED"})),
        )
        .await;
    let page = &answer.data()["payments"];
    assert_eq!(ids(page), vec![first.clone()]);
    assert_eq!(page["edges"][0]["node"]["capturedAmount"], "10.00");
    assert_eq!(
        page["edges"][0]["node"]["captures"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let answer = app
        .graphql(PAGE_QUERY, query(json!({"orderId": "o-b"})))
        .await;
    assert_eq!(ids(&answer.data()["payments"]), vec![second]);
    let answer = app
        .graphql(
            PAGE_QUERY,
            query(json!({"merchantId": "m-filter", "createdBefore": "2000-01-01T00:00:00Z"})),
        )
        .await;
    assert!(ids(&answer.data()["payments"]).is_empty());
    let answer = app
        .graphql(
            PAGE_QUERY,
            query(json!({"merchantId": "m-filter", "createdFrom": "2000-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(ids(&answer.data()["payments"]).len(), 2);
}

#[tokio::test]
async fn pages_are_capped_and_cursors_checked() {
    let app = spawn_app().await;
    let answer = app.graphql(PAGE_QUERY, json!({"first": 101})).await;
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));
    let answer = app.graphql(PAGE_QUERY, json!({"first": 0})).await;
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));
    let answer = app
        .graphql(PAGE_QUERY, json!({"after": "not-a-cursor"}))
        .await;
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));
    let answer = app.graphql(PAGE_QUERY, json!({"first": 100})).await;
    assert!(ids(&answer.data()["payments"]).is_empty());
    let answer = app.graphql(PAGE_QUERY, json!({"wait": "999999"})).await;
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));
}

#[tokio::test]
async fn wait_for_position_reads_a_mutation_right_after_it() {
    let app = spawn_app().await;
    for index in 0..5 {
        let (id, position) = pay(
            &app,
            Environment::Test,
            &format!("w-{index}"),
            "m-wait",
            "o-w",
            "MANUAL",
        )
        .await;
        let answer = app
            .graphql(PAGE_QUERY, json!({"filter": {"merchantId": "m-wait", "status": "INITIATED"}, "first": 100, "wait": position}))
            .await;
        assert!(
            ids(&answer.data()["payments"]).contains(&id),
            "payment {index} not yet visible"
        );
    }
}

const ORDER_QUERY: &str =
    "query($id: String!, $wait: Position) { order(id: $id, waitForPosition: $wait) {
    id merchantId paymentStatus paymentCount payments { id status refunds { refundId } } } }";

/// An order lists at most its first 100 payments, oldest first; `paymentCount` counts all.
#[tokio::test]
async fn an_order_with_many_payments_lists_a_bounded_number() {
    let app = spawn_app().await;
    let mut first_id = String::new();
    let mut position = String::new();
    for n in 0..105 {
        let (id, at) = pay(
            &app,
            Environment::Test,
            &format!("many-{n}"),
            "m-many",
            "order-many",
            "MANUAL",
        )
        .await;
        if n == 0 {
            first_id = id;
        }
        position = at;
    }
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&support),
            ORDER_QUERY,
            json!({"id": "order-many", "wait": position}),
        )
        .await;
    let order = &answer.data()["order"];
    assert_eq!(order["paymentCount"], 105);
    let payments = order["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 100);
    assert_eq!(payments[0]["id"], first_id.as_str());
}

#[tokio::test]
async fn an_order_shows_its_payments_and_status() {
    let app = spawn_app().await;
    let (declined, _) = pay(
        &app,
        Environment::Test,
        "ord-1",
        "m-order",
        "order-77",
        "AUTOMATIC",
    )
    .await;
    payment_mutation(&app, "recordAuthorization",
        json!({"idempotencyKey": "ord-1-auth", "paymentId": declined, "outcome": "DECLINED", "declineCode": "insufficient_funds"})).await;
    let (paid, _) = pay(
        &app,
        Environment::Test,
        "ord-2",
        "m-order",
        "order-77",
        "AUTOMATIC",
    )
    .await;
    let position = authorize(&app, &paid).await["position"]
        .as_str()
        .unwrap()
        .to_owned();
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let answer = app
        .graphql_as(
            Some(&support),
            ORDER_QUERY,
            json!({"id": "order-77", "wait": position}),
        )
        .await;
    let order = &answer.data()["order"];
    assert_eq!(order["paymentStatus"], "PAID");
    assert_eq!(order["paymentCount"], 2);
    assert_eq!(order["payments"].as_array().unwrap().len(), 2);
    let answer = app
        .graphql_as(Some(&support), ORDER_QUERY, json!({"id": "no-such-order"}))
        .await;
    assert!(answer.data()["order"].is_null());
}

const DISPUTES_QUERY: &str = "query($filter: DisputeFilter, $wait: Position) {
    disputes(filter: $filter, first: 10, waitForPosition: $wait) {
        edges { node { paymentId disputeId status amount evidenceDueBy } } pageInfo { hasNextPage } } }";

#[tokio::test]
async fn disputes_are_filtered_by_status_deadline_and_merchant() {
    let app = spawn_app().await;
    let (id, _) = pay(
        &app,
        Environment::Test,
        "dsp-1",
        "m-dispute",
        "o-d",
        "AUTOMATIC",
    )
    .await;
    authorize(&app, &id).await;
    let due = (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339();
    let opened = payment_mutation(&app, "openDispute",
        json!({"idempotencyKey": "dsp-1-open", "paymentId": id, "disputeId": "dp_9", "amount": "4.00",
               "reason": "fraudulent", "evidenceDueBy": due})).await;
    let position = opened["position"].as_str().unwrap().to_owned();
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let count = |answer: &Answer| answer.data()["disputes"]["edges"].as_array().unwrap().len();
    let answer = app.graphql_as(Some(&support), DISPUTES_QUERY,
        json!({"filter": {"status": "NEEDS_RESPONSE", "merchantId": "m-dispute"}, "wait": position})).await;
    assert_eq!(count(&answer), 1);
    assert_eq!(
        answer.data()["disputes"]["edges"][0]["node"]["amount"],
        "4.00"
    );
    let answer = app
        .graphql_as(
            Some(&support),
            DISPUTES_QUERY,
            json!({"filter": {"status": "WON"}}),
        )
        .await;
    assert_eq!(count(&answer), 0);
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let answer = app
        .graphql_as(
            Some(&support),
            DISPUTES_QUERY,
            json!({"filter": {"dueBefore": soon}}),
        )
        .await;
    assert_eq!(count(&answer), 0);
    let answer = app
        .graphql_as(
            Some(&support),
            DISPUTES_QUERY,
            json!({"filter": {"merchantId": "other"}}),
        )
        .await;
    assert_eq!(count(&answer), 0);
    let answer = app
        .graphql_as(
            Some(&support),
            "{ disputesDueSoon(withinHours: 48) { edges { node { disputeId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        answer.data()["disputesDueSoon"]["edges"][0]["node"]["disputeId"],
        "dp_9"
    );
}

/// Records a settled capture of 100.00 with a 3.20 fee and a 5.00 reserve, paid out; returns
/// the position before the batch and after the payout.
async fn settle(app: &TestApp) -> (String, String, String) {
    let (id, _) = pay(
        app,
        Environment::Test,
        "stl-1",
        "m-settle",
        "o-s",
        "AUTOMATIC",
    )
    .await;
    let before = authorize(app, &id).await["position"]
        .as_str()
        .unwrap()
        .to_owned();
    let batch_id = uuid::Uuid::new_v4().to_string();
    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    let record = "mutation($input: RecordSettlementBatchInput!) { recordSettlementBatch(input: $input) { position } }";
    app.graphql_as(Some(&finance), record,
        json!({"input": {"idempotencyKey": "stl-batch", "batchId": batch_id, "merchantId": "m-settle",
               "currency": "USD", "reserve": "5.00",
               "items": [{"paymentId": id, "kind": "CAPTURE", "itemId": "automatic", "gross": "10.00", "fee": "0.30"}]}}))
        .await
        .data();
    let payout =
        "mutation($input: RecordPayoutInput!) { recordPayout(input: $input) { position } }";
    let answer = app.graphql_as(Some(&finance), payout,
        json!({"input": {"idempotencyKey": "stl-payout", "batchId": batch_id, "payoutId": "po_9",
               "amount": "4.70", "status": "PAID"}}))
        .await;
    let after = answer.data()["recordPayout"]["position"]
        .as_str()
        .unwrap()
        .to_owned();
    (batch_id, before, after)
}

fn trial_balance_is_zero(balances: &Value) {
    let mut sums = std::collections::BTreeMap::new();
    for balance in balances.as_array().unwrap() {
        let amount: rust_decimal::Decimal = balance["balance"].as_str().unwrap().parse().unwrap();
        *sums
            .entry(balance["currency"].as_str().unwrap().to_owned())
            .or_insert(rust_decimal::Decimal::ZERO) += amount;
    }
    assert!(!sums.is_empty());
    for (currency, sum) in sums {
        assert!(sum.is_zero(), "{currency} trial balance {sum}");
    }
}

#[tokio::test]
async fn settlement_batches_balances_and_summary() {
    let app = spawn_app().await;
    let (batch_id, before, after) = settle(&app).await;
    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    let answer = app.graphql_as(Some(&finance),
        "query($wait: Position) { settlementBatches(filter: {merchantId: \"m-settle\"}, first: 5, waitForPosition: $wait) {
            edges { node { id net reserve payoutStatus payouts { payoutId status amount } } } pageInfo { hasNextPage } } }",
        json!({"wait": after})).await;
    let node = &answer.data()["settlementBatches"]["edges"][0]["node"];
    assert_eq!(node["id"], batch_id.as_str());
    assert_eq!(node["net"], "4.70");
    assert_eq!(node["payoutStatus"], "PAID");
    assert_eq!(node["payouts"][0]["payoutId"], "po_9");
    let answer = app
        .graphql_as(
            Some(&finance),
            "{ settlementBatches(filter: {payoutStatus: FAILED}) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert!(answer.data()["settlementBatches"]["edges"]
        .as_array()
        .unwrap()
        .is_empty());
    let answer = app
        .graphql_as(
            Some(&finance),
            "{ settlementExceptions(merchantId: \"m-settle\") { kind amount subjectId } }",
            json!({}),
        )
        .await;
    assert_eq!(
        answer.data()["settlementExceptions"][0]["kind"],
        "RESERVE_WITHHELD"
    );
    assert_eq!(answer.data()["settlementExceptions"][0]["amount"], "5.00");

    let balances = "query($asOf: Position, $wait: Position) { balances(merchantId: \"m-settle\", asOfPosition: $asOf, waitForPosition: $wait) { currency account balance } }";
    let now = app
        .graphql_as(Some(&finance), balances, json!({"wait": after}))
        .await;
    let now = now.data()["balances"].clone();
    trial_balance_is_zero(&now);
    let earlier = app
        .graphql_as(Some(&finance), balances, json!({"asOf": before}))
        .await;
    let earlier = earlier.data()["balances"].clone();
    trial_balance_is_zero(&earlier);
    assert_ne!(now, earlier);
    let account = |balances: &Value, name: &str| {
        balances
            .as_array()
            .unwrap()
            .iter()
            .find(|balance| balance["account"] == name)
            .map(|balance| balance["balance"].clone())
    };
    assert_eq!(account(&earlier, "gateway_pending"), Some(json!("10.00")));
    assert_ne!(account(&now, "gateway_pending"), Some(json!("10.00")));

    let auditor = app.key(Role::Auditor, Environment::Test).to_owned();
    let answer = app.graphql_as(Some(&auditor),
        "query($wait: Position) { merchantSummary(merchantId: \"m-settle\", waitForPosition: $wait) { currency pending settled inTransit paidOut reserved } }",
        json!({"wait": after})).await;
    let summary = &answer.data()["merchantSummary"][0];
    assert_eq!(summary["currency"], "USD");
    assert_eq!(summary["pending"], "0.00");
    assert_eq!(summary["reserved"], "5.00");
    assert_eq!(summary["paidOut"], "4.70");
}

#[tokio::test]
async fn merchant_metrics_count_authorizations_and_declines() {
    let app = spawn_app().await;
    let (approved, _) = pay(
        &app,
        Environment::Test,
        "met-1",
        "m-metrics",
        "o-m",
        "AUTOMATIC",
    )
    .await;
    authorize(&app, &approved).await;
    let (declined, _) = pay(
        &app,
        Environment::Test,
        "met-2",
        "m-metrics",
        "o-m2",
        "MANUAL",
    )
    .await;
    let result = payment_mutation(&app, "recordAuthorization",
        json!({"idempotencyKey": "met-2-auth", "paymentId": declined, "outcome": "DECLINED", "declineCode": "insufficient_funds"})).await;
    let position = result["position"].as_str().unwrap().to_owned();
    let today = chrono::Utc::now().date_naive();
    let finance = app.key(Role::Finance, Environment::Test).to_owned();
    let answer = app.graphql_as(Some(&finance),
        "query($from: NaiveDate!, $to: NaiveDate!, $wait: Position) { merchantMetrics(merchantId: \"m-metrics\", from: $from, to: $to, waitForPosition: $wait) {
            days { day currency paymentsInitiated authorizationsApproved authorizationsDeclined authorizationRate refundRate disputeRate }
            declineCodes { declineCode declines } disputeRate } }",
        json!({"from": today - chrono::Duration::days(1), "to": today + chrono::Duration::days(1), "wait": position})).await;
    let metrics = &answer.data()["merchantMetrics"];
    let day = &metrics["days"][0];
    assert_eq!(day["paymentsInitiated"], 2);
    assert_eq!(day["authorizationRate"], "0.5");
    assert_eq!(day["refundRate"], "0");
    assert_eq!(
        metrics["declineCodes"][0]["declineCode"],
        "insufficient_funds"
    );
    assert_eq!(metrics["declineCodes"][0]["declines"], 1);
    let answer = app.graphql_as(Some(&finance),
        "{ merchantMetrics(merchantId: \"m\", from: \"2026-01-02\", to: \"2026-01-01\") { disputeRate } }", json!({})).await;
    assert_eq!(answer.error_code(), Some("VALIDATION_ERROR"));
}

/// Every read-model query, for the role and isolation checks.
const QUERIES: [(&str, &str); 8] = [
    ("payments", "{ payments { edges { node { id } } } }"),
    ("order", "{ order(id: \"o-iso\") { id payments { id } } }"),
    ("disputes", "{ disputes { edges { node { disputeId } } } }"),
    ("settlementBatches", "{ settlementBatches { edges { node { id } } } }"),
    ("settlementExceptions", "{ settlementExceptions(unsettledAfterDays: 0) { kind } }"),
    ("balances", "{ balances(merchantId: \"m-iso\") { balance } }"),
    ("merchantSummary", "{ merchantSummary(merchantId: \"m-iso\") { pending } }"),
    ("merchantMetrics", "{ merchantMetrics(merchantId: \"m-iso\", from: \"2020-01-01\", to: \"2020-12-31\") { days { day } declineCodes { declines } } }"),
];

fn may(role: Role, query: &str) -> bool {
    match query {
        "payments" => true,
        "order" | "disputes" => role != Role::Service,
        _ => matches!(role, Role::Finance | Role::Auditor | Role::Admin),
    }
}

#[tokio::test]
async fn roles_decide_which_read_models_a_key_may_query() {
    let app = spawn_app().await;
    for role in Role::ALL {
        let key = app.key(role, Environment::Test).to_owned();
        for (name, query) in QUERIES {
            let answer = app.graphql_as(Some(&key), query, json!({})).await;
            if may(role, name) {
                assert!(
                    answer.body.get("errors").is_none(),
                    "{role} {name}: {}",
                    answer.body
                );
            } else {
                assert_eq!(answer.error_code(), Some("FORBIDDEN"), "{role} {name}");
            }
        }
    }
    let answer = app.graphql_as(None, QUERIES[0].1, json!({})).await;
    assert_eq!(answer.error_code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn a_test_key_sees_nothing_of_live_data() {
    let app = spawn_app().await;
    let live = app.key(Role::Service, Environment::Live).to_owned();
    let (id, _) = pay(
        &app,
        Environment::Live,
        "iso-1",
        "m-iso",
        "o-iso",
        "AUTOMATIC",
    )
    .await;
    let authorized = mutate_as(
        &app,
        &live,
        "recordAuthorization",
        json!({"idempotencyKey": "iso-1-auth", "paymentId": id, "outcome": "APPROVED"}),
    )
    .await;
    mutate_as(&app, &live, "openDispute",
        json!({"idempotencyKey": "iso-1-dsp", "paymentId": id, "disputeId": "dp_iso", "amount": "1.00", "reason": "fraudulent"})).await;
    let position = authorized["position"].as_str().unwrap().to_owned();
    let live_admin = app.key(Role::Admin, Environment::Live).to_owned();
    let answer = app
        .graphql_as(
            Some(&live_admin),
            "query($wait: Position) { payments(waitForPosition: $wait) { edges { node { id } } } }",
            json!({"wait": position}),
        )
        .await;
    assert_eq!(ids(&answer.data()["payments"]), vec![id]);
    let today = chrono::Utc::now().date_naive();
    let test_admin = app.key(Role::Admin, Environment::Test).to_owned();
    for (name, query) in QUERIES {
        let query = query
            .replace("2020-01-01", &today.to_string())
            .replace("2020-12-31", &today.to_string());
        let seen_live = app.graphql_as(Some(&live_admin), &query, json!({})).await;
        let seen_test = app.graphql_as(Some(&test_admin), &query, json!({})).await;
        let empty = match name {
            "order" => seen_test.data()[name].is_null(),
            "payments" | "disputes" | "settlementBatches" => seen_test.data()[name]["edges"]
                .as_array()
                .unwrap()
                .is_empty(),
            "merchantMetrics" => seen_test.data()[name]["days"]
                .as_array()
                .unwrap()
                .is_empty(),
            _ => seen_test.data()[name].as_array().unwrap().is_empty(),
        };
        assert!(empty, "{name}: test key saw {}", seen_test.body);
        assert!(
            seen_live.body.get("errors").is_none(),
            "{name}: {}",
            seen_live.body
        );
    }
}

#[tokio::test]
async fn dispute_pages_run_by_deadline_then_undated() {
    let app = spawn_app().await;
    let now = chrono::Utc::now();
    let deadlines = [Some(48), None, Some(24), Some(72)];
    let mut position = String::new();
    for (index, hours) in deadlines.iter().enumerate() {
        let (id, _) = pay(
            &app,
            Environment::Test,
            &format!("dp-{index}"),
            "m-dp",
            "o-dp",
            "AUTOMATIC",
        )
        .await;
        authorize(&app, &id).await;
        let mut input = json!({"idempotencyKey": format!("dp-{index}-open"), "paymentId": id,
            "disputeId": format!("dp_{index}"), "amount": "1.00", "reason": "fraudulent"});
        if let Some(hours) = hours {
            input["evidenceDueBy"] = json!((now + chrono::Duration::hours(*hours)).to_rfc3339());
        }
        position = payment_mutation(&app, "openDispute", input).await["position"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let support = app.key(Role::Support, Environment::Test).to_owned();
    let query = "query($after: String, $wait: Position) { disputes(first: 1, after: $after, waitForPosition: $wait) {
        edges { node { disputeId } } pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let answer = app
            .graphql_as(
                Some(&support),
                query,
                json!({"after": after, "wait": position}),
            )
            .await;
        let page = &answer.data()["disputes"];
        for edge in page["edges"].as_array().unwrap() {
            seen.push(edge["node"]["disputeId"].as_str().unwrap().to_owned());
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() || seen.len() > 10 {
            break;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["dp_2", "dp_0", "dp_3", "dp_1"]);
}
