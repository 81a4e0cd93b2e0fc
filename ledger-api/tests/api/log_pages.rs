//! Pages of the global log: `first` may be null, and a page is shorter than asked only at the
//! end of the log, however the two environments' events are interleaved.

use chrono::Utc;
use futures::StreamExt;
use ledger_api::auth::Role;
use ledger_core::ids::{Environment, MerchantId, OrderId, PaymentId};
use ledger_core::money::PositiveMoney;
use ledger_core::payment::{CaptureMode, InitiatePayment, PaymentCommand};
use ledger_core::Currency;
use ledger_store::commands::{CommandContext, CommandHandler};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

const PAGE: &str = "query($from: Position, $first: Int) { events(fromPosition: $from, first: $first) { position } }";

async fn page(app: &TestApp, key: &str, from: u64, first: Option<u32>) -> Vec<u64> {
    let answer = app
        .graphql_as(
            Some(key),
            PAGE,
            json!({"from": from.to_string(), "first": first}),
        )
        .await;
    answer.data()["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer:?}"))
        .iter()
        .map(|event| event["position"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Records `count` live payments straight through the command handler (faster than HTTP).
async fn live_payments(app: &TestApp, count: usize) {
    let handler = CommandHandler::new(app.database.store());
    let command = PaymentCommand::Initiate(InitiatePayment {
        merchant_id: MerchantId::parse("merchant-live").unwrap(),
        order_id: OrderId::parse("order-live").unwrap(),
        environment: Environment::Live,
        amount: PositiveMoney::parse("1.00", Currency::USD).unwrap(),
        capture_mode: CaptureMode::Manual,
        payment_method: None,
    });
    let context = CommandContext {
        environment: Environment::Live,
        actor_id: "load".to_owned(),
        actor_role: "service".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: None,
    };
    futures::stream::iter(0..count)
        .map(|_| {
            let (handler, command, context) = (&handler, &command, &context);
            async move {
                handler
                    .handle_payment(PaymentId::new_random(), command, context)
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(64)
        .collect::<()>()
        .await;
}

#[tokio::test]
async fn first_may_be_null_or_absent() {
    let app = spawn_app().await;
    for n in 0..3 {
        initiate(&app, &format!("null-first-{n}"), "1.00", "MANUAL").await;
    }
    let auditor = app.key(Role::Auditor, Environment::Test).to_owned();
    assert_eq!(page(&app, &auditor, 1, None).await, vec![1, 2, 3]);
    let absent = app
        .graphql_as(Some(&auditor), "{ events { position } }", json!({}))
        .await;
    assert_eq!(absent.data()["events"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_page_is_full_however_many_events_of_the_other_environment_come_first() {
    let app = spawn_app().await;
    // More of the live environment's events than any bounded scan would read past.
    live_payments(&app, 25_000).await;
    let mut ours = Vec::new();
    for n in 0..3 {
        initiate(&app, &format!("after-live-{n}"), "1.00", "MANUAL").await;
        ours.push(app.log_head().await);
    }
    let auditor = app.key(Role::Auditor, Environment::Test).to_owned();
    assert_eq!(page(&app, &auditor, 1, Some(2)).await, ours[..2]);
    assert_eq!(page(&app, &auditor, ours[1] + 1, Some(2)).await, ours[2..]);
    assert_eq!(
        page(&app, &auditor, ours[2] + 1, Some(2)).await,
        Vec::<u64>::new()
    );
    let live_auditor = app.key(Role::Auditor, Environment::Live).to_owned();
    assert_eq!(
        page(&app, &live_auditor, 24_999, Some(500)).await,
        vec![24_999, 25_000],
        "the live key sees its own events and none of the test ones"
    );
}
