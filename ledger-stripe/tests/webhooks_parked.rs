//! Parked webhook events through real HTTP against a real database: the age limit after
//! which a parked event expires for support instead of being applied, and the sweep that
//! reaches every subject with parked events, however many there are.

mod webhooks_support;

use chrono::Utc;
use ledger_core::ids::{CaptureId, Environment, MerchantId, OrderId, PaymentId};
use ledger_core::payment::{
    CaptureMode, CapturePayment, InitiatePayment, PaymentCommand, PaymentState, PaymentStatus,
    RecordAuthorization,
};
use ledger_core::{Currency, PositiveMoney};
use ledger_store::commands::CommandContext;
use ledger_stripe::gateway::payment_id_for_payment_intent;
use ledger_stripe::webhooks::{retry_all_parked, DeliveryOutcome};
use uuid::Uuid;
use webhooks_support::*;

const PAYMENT_INTENT: &str = "pi_3MtwBwLkdIwHu7ix28a3tqPa";

async fn payment(app: &TestApp, payment_id: PaymentId) -> PaymentState {
    app.commands
        .load_payment(Environment::Test, payment_id)
        .await
        .unwrap()
}

/// Moves every parked event's parking time `hours` into the past.
async fn age_parked_events(app: &TestApp, hours: i32) {
    sqlx::query("UPDATE webhook_parked SET parked_at = now() - make_interval(hours => $1)")
        .bind(hours)
        .execute(app.database.pool())
        .await
        .unwrap();
}

/// A refund parked more than 72 hours ago is not applied when its payment finally arrives:
/// the retry after the payment's apply expires it, support sees it as `expired`, and a later
/// delivery of it by Stripe is answered `expired` and changes nothing.
#[tokio::test]
async fn a_refund_parked_past_the_age_limit_expires_and_is_never_applied() {
    let app = spawn_app().await;
    let refund = fixture("refund.updated");
    assert_eq!(deliver(&app, &refund).await.outcome(), "parked");
    age_parked_events(&app, 73).await;

    for name in [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
    ] {
        assert_eq!(deliver(&app, &fixture(name)).await.outcome(), "applied");
    }
    assert_eq!(
        parked_count(&app).await,
        0,
        "the expired event waits no more"
    );
    let payment_id = payment_id_for_payment_intent(PAYMENT_INTENT);
    assert_eq!(
        payment(&app, payment_id).await.status(),
        Some(PaymentStatus::Captured),
        "the expired refund was not applied"
    );
    let row = delivery(&app, &event_id(&refund)).await;
    assert_eq!(row.outcome, DeliveryOutcome::Expired);
    assert!(
        row.detail
            .as_deref()
            .unwrap_or_default()
            .contains("72 hours"),
        "{:?}",
        row.detail
    );
    assert_eq!(row.first_position, None);

    let head = log_head(&app).await;
    let again = deliver(&app, &refund).await;
    assert_eq!((again.status, again.outcome()), (200, "expired"));
    assert_eq!(
        log_head(&app).await,
        head,
        "a late delivery applies nothing"
    );
    assert_eq!(
        payment(&app, payment_id).await.status(),
        Some(PaymentStatus::Captured)
    );
    let row = delivery(&app, &event_id(&refund)).await;
    assert_eq!(row.outcome, DeliveryOutcome::Expired);
    assert_eq!(row.delivery_count, 2);
}

/// The sweep expires what waited too long and leaves younger parked events waiting.
#[tokio::test]
async fn the_sweep_expires_only_events_past_the_age_limit() {
    let app = spawn_app().await;
    let old = fixture("refund.updated");
    assert_eq!(deliver(&app, &old).await.outcome(), "parked");
    age_parked_events(&app, 73).await;
    let young = with_replaced(
        &fixture("refund.failed"),
        &[(PAYMENT_INTENT, "pi_3YoungParkedRefund")],
    );
    assert_eq!(deliver(&app, &young).await.outcome(), "parked");
    age_parked_events(&app, 71).await;
    // Only the young one is 71 hours old now; put the old one back past the limit.
    sqlx::query(
        "UPDATE webhook_parked SET parked_at = now() - interval '73 hours' WHERE stripe_event_id = $1",
    )
    .bind(event_id(&old))
    .execute(app.database.pool())
    .await
    .unwrap();

    assert_eq!(
        retry_all_parked(&app.state, Environment::Test)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        delivery(&app, &event_id(&old)).await.outcome,
        DeliveryOutcome::Expired
    );
    assert_eq!(
        delivery(&app, &event_id(&young)).await.outcome,
        DeliveryOutcome::Parked
    );
    assert_eq!(parked_count(&app).await, 1);
    assert_eq!(log_head(&app).await, 0);
}

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

/// Initiates, authorizes and captures 15.00 USD on a payment through the command handler, as
/// the API would: no webhook retries its parked events.
async fn capture_through_the_api(app: &TestApp, payment_id: PaymentId) {
    let amount = PositiveMoney::parse("15.00", Currency::USD).unwrap();
    let commands = [
        PaymentCommand::Initiate(InitiatePayment {
            merchant_id: MerchantId::parse("merchant_default").unwrap(),
            order_id: OrderId::parse("order_sweep").unwrap(),
            environment: Environment::Test,
            amount,
            capture_mode: CaptureMode::Manual,
            payment_method: None,
        }),
        PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
            authorized_amount: Some(amount),
            authorization_code: None,
            gateway_reference: None,
            expires_at: None,
        }),
        PaymentCommand::Capture(CapturePayment {
            capture_id: CaptureId::parse("ch_sweep").unwrap(),
            amount: Some(amount),
            final_capture: true,
        }),
    ];
    for command in &commands {
        app.commands
            .handle_payment(payment_id, command, &context())
            .await
            .unwrap();
    }
}

/// More subjects wait than one page of the sweep holds, all parked before the one whose
/// payment arrives; that one sorts after the first page however the page is ordered (by
/// waiting time or by subject), and the sweep still reaches and applies it.
#[tokio::test]
async fn the_sweep_reaches_a_subject_after_the_first_page() {
    let app = spawn_app().await;
    let last_subject = "pi_zzzSortsAfterTheFirstPage";
    let refund = with_replaced(
        &fixture("refund.updated"),
        &[(PAYMENT_INTENT, last_subject)],
    );
    assert_eq!(deliver(&app, &refund).await.outcome(), "parked");
    // A page's worth of other subjects, each with a refund of a payment that never comes,
    // parked an hour earlier (young enough not to expire).
    let page = 1_000;
    sqlx::query(
        r#"INSERT INTO webhook_parked (environment, stripe_event_id, subject, event_type,
                                       event_created_at, event, reason, parked_at)
           SELECT parked.environment, 'evt_filler_' || n, 'pi_filler_' || lpad(n::text, 5, '0'),
                  parked.event_type, parked.event_created_at,
                  jsonb_set(jsonb_set(parked.event, '{id}', to_jsonb('evt_filler_' || n)),
                            '{data,object,payment_intent}',
                            to_jsonb('pi_filler_' || lpad(n::text, 5, '0'))),
                  parked.reason, now() - interval '1 hour'
           FROM webhook_parked AS parked, generate_series(1, $1) AS n"#,
    )
    .bind(page)
    .execute(app.database.pool())
    .await
    .unwrap();
    assert_eq!(parked_count(&app).await, i64::from(page) + 1);

    let payment_id = payment_id_for_payment_intent(last_subject);
    capture_through_the_api(&app, payment_id).await;
    assert_eq!(
        retry_all_parked(&app.state, Environment::Test)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        payment(&app, payment_id).await.status(),
        Some(PaymentStatus::PartiallyRefunded)
    );
    assert_eq!(
        delivery(&app, &event_id(&refund)).await.outcome,
        DeliveryOutcome::Applied
    );
    assert_eq!(
        parked_count(&app).await,
        i64::from(page),
        "the others still wait"
    );
}

/// Stripe delivering again an event parked past its age limit (a resend from the dashboard)
/// expires it rather than applying it days late, even though its payment exists by then.
#[tokio::test]
async fn a_redelivery_of_an_overdue_parked_event_expires_it() {
    let app = spawn_app().await;
    let refund = fixture("refund.updated");
    assert_eq!(deliver(&app, &refund).await.outcome(), "parked");
    age_parked_events(&app, 73).await;
    let payment_id = payment_id_for_payment_intent(PAYMENT_INTENT);
    capture_through_the_api(&app, payment_id).await;
    let head = log_head(&app).await;

    let again = deliver(&app, &refund).await;
    assert_eq!((again.status, again.outcome()), (200, "expired"));
    assert_eq!(log_head(&app).await, head);
    assert_eq!(
        payment(&app, payment_id).await.status(),
        Some(PaymentStatus::Captured)
    );
    assert_eq!(parked_count(&app).await, 0);
    let row = delivery(&app, &event_id(&refund)).await;
    assert_eq!(row.outcome, DeliveryOutcome::Expired);
    assert_eq!(row.delivery_count, 2);
}

/// The rows of `webhook_delivery_hours` that differ from a recount of `webhook_deliveries`
/// (in either direction), and the rollup's number of parked events.
async fn rollup_drift(app: &TestApp) -> (i64, i64) {
    let recount = "SELECT environment,
               date_bin(interval '1 hour', received_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
               count(*),
               count(*) FILTER (WHERE outcome IN ('applied', 'duplicate', 'ignored')),
               count(*) FILTER (WHERE outcome = 'duplicate'),
               sum(delivery_count - 1),
               count(*) FILTER (WHERE outcome = 'parked'),
               count(*) FILTER (WHERE outcome IN ('conflict', 'rejected', 'expired')),
               sum(extract(epoch FROM processed_at - received_at)),
               max(extract(epoch FROM processed_at - received_at))
           FROM webhook_deliveries GROUP BY 1, 2";
    // Summed over an hour's slots, as the health page reads them.
    let rollup = "SELECT environment, hour, sum(events)::bigint, sum(succeeded)::bigint,
               sum(duplicates)::bigint, sum(redeliveries)::bigint, sum(parked)::bigint,
               sum(failed)::bigint, sum(processing_seconds_sum),
               CASE WHEN bool_or(max_recount)
                    THEN (SELECT max(extract(epoch FROM d.processed_at - d.received_at))
                          FROM webhook_deliveries d
                          WHERE d.environment = r.environment AND d.received_at >= r.hour
                            AND d.received_at < r.hour + interval '1 hour')
                    ELSE max(processing_seconds_max) END
           FROM webhook_delivery_hours r GROUP BY environment, hour HAVING sum(events) > 0";
    let drift = sqlx::query_scalar::<_, i64>(&format!(
        "SELECT count(*) FROM (({rollup} EXCEPT {recount}) UNION ALL ({recount} EXCEPT {rollup})) d"
    ))
    .fetch_one(app.database.pool())
    .await
    .unwrap();
    let parked = sqlx::query_scalar::<_, Option<i64>>(
        "SELECT sum(parked)::bigint FROM webhook_delivery_hours",
    )
    .fetch_one(app.database.pool())
    .await
    .unwrap()
    .unwrap_or(0);
    (drift, parked)
}

/// The hourly rollup the console's webhook health page reads is kept by the writes of the
/// deliveries themselves: after an ignored event, a redelivery, a parked refund applied later
/// (it moves from parked to succeeded) and a delivery whose processing time shrank (the
/// hour's maximum is recounted), it holds exactly what counting the deliveries gives.
#[tokio::test]
async fn the_hourly_rollup_agrees_with_a_recount_of_the_deliveries() {
    let app = spawn_app().await;
    assert_eq!(rollup_drift(&app).await, (0, 0));

    assert_eq!(
        deliver(&app, &fixture("refund.updated")).await.outcome(),
        "parked"
    );
    assert_eq!(
        deliver(&app, &fixture("customer.created")).await.outcome(),
        "ignored"
    );
    let created = fixture("payment_intent.created");
    assert_eq!(deliver(&app, &created).await.outcome(), "applied");
    assert_eq!(rollup_drift(&app).await, (0, 1), "the refund waits");

    deliver(&app, &created).await;
    for name in [
        "payment_intent.amount_capturable_updated",
        "charge.captured",
    ] {
        assert_eq!(deliver(&app, &fixture(name)).await.outcome(), "applied");
    }
    let refund = delivery(&app, &event_id(&fixture("refund.updated"))).await;
    assert_eq!(refund.outcome, DeliveryOutcome::Applied);
    assert_eq!(
        rollup_drift(&app).await,
        (0, 0),
        "the refund moved from parked to succeeded"
    );
    let redeliveries = sqlx::query_scalar::<_, Option<i64>>(
        "SELECT sum(redeliveries)::bigint FROM webhook_delivery_hours",
    )
    .fetch_one(app.database.pool())
    .await
    .unwrap();
    assert_eq!(redeliveries, Some(1));

    // The slowest delivery becomes the fastest: the maximum it held must go with it.
    sqlx::query(
        "UPDATE webhook_deliveries SET processed_at = received_at
         WHERE stripe_event_id = (SELECT stripe_event_id FROM webhook_deliveries
                                  ORDER BY processed_at - received_at DESC LIMIT 1)",
    )
    .execute(app.database.pool())
    .await
    .unwrap();
    assert_eq!(rollup_drift(&app).await, (0, 0));
}
