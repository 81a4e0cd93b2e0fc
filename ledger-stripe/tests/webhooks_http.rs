//! `POST /webhooks/stripe` through real HTTP against a real database: every mapped event type
//! recorded, exactly once under duplicates and concurrent copies, the same end state in every
//! delivery order, payouts, and refusals that record nothing.

mod webhooks_support;

use std::collections::BTreeSet;

use chrono::Utc;
use ledger_core::ids::{
    CaptureId, Environment, MerchantId, PaymentId, PayoutId, SettlementBatchId,
};
use ledger_core::payment::{PaymentState, PaymentStatus, SettledItem};
use ledger_core::settlement::{
    BatchItem, PayoutUpdate, RecordPayout, RecordSettlementBatch, SettlementCommand,
};
use ledger_core::{Currency, Money, PositiveMoney};
use ledger_store::commands::CommandContext;
use ledger_stripe::gateway::payment_id_for_payment_intent;
use ledger_stripe::gateway::sign;
use ledger_stripe::webhooks::{
    recent_deliveries, retry_all_parked, DeliveryFilter, DeliveryOutcome, CLAIM_PREFIX,
};
use uuid::Uuid;
use webhooks_support::*;

const PAYMENT_INTENT: &str = "pi_3MtwBwLkdIwHu7ix28a3tqPa";

async fn payment(app: &TestApp, payment_id: PaymentId) -> PaymentState {
    app.commands
        .load_payment(Environment::Test, payment_id)
        .await
        .unwrap()
}

/// Every fixture, in an order Stripe could send them, gets its expected outcome and a row.
#[tokio::test]
async fn every_mapped_event_type_is_recorded_with_its_outcome() {
    let app = spawn_app().await;
    let expected = [
        ("customer.created", "ignored"),
        ("payment_intent.created", "applied"),
        ("payment_intent.amount_capturable_updated", "applied"),
        ("charge.captured", "applied"),
        ("payment_intent.succeeded.manual", "duplicate"),
        ("refund.created", "applied"),
        ("refund.updated", "applied"),
        ("charge.refunded", "duplicate"),
        ("refund.failed", "applied"),
        ("charge.dispute.created", "applied"),
        ("charge.dispute.updated", "applied"),
        ("charge.dispute.closed", "applied"),
        ("payment_intent.payment_failed", "applied"),
        ("payment_intent.canceled", "applied"),
        ("payment_intent.succeeded.jpy", "applied"),
        ("payout.paid", "parked"),
        ("payout.failed", "parked"),
    ];
    for (name, outcome) in expected {
        let body = fixture(name);
        let answer = deliver(&app, &body).await;
        assert_eq!(answer.status, 200, "{name}: {:?}", answer.body);
        assert_eq!(answer.outcome(), outcome, "{name}: {:?}", answer.body);
        let row = delivery(&app, &event_id(&body)).await;
        assert_eq!(row.outcome.as_str(), outcome, "{name}");
        assert_eq!(row.delivery_count, 1);
    }
    let state = payment(&app, payment_id_for_payment_intent(PAYMENT_INTENT)).await;
    let paid = state.payment.as_ref().unwrap();
    assert_eq!(paid.status(), PaymentStatus::PartiallyRefunded);
    assert_eq!(
        paid.captured_amount(),
        Money::parse("15.00", Currency::USD).unwrap()
    );
    assert_eq!(
        paid.refunded_amount(),
        Money::parse("5.00", Currency::USD).unwrap()
    );
    assert_eq!(paid.disputes.len(), 1);
    // The decline was recorded on the payment its metadata names.
    let declined = PaymentId::parse("7b1f9f3e-2c4d-4e8a-9b6a-0f6f3c2d1e5a").unwrap();
    assert_eq!(
        payment(&app, declined).await.status(),
        Some(PaymentStatus::Declined)
    );
    let rows = recent_deliveries(
        app.database.pool(),
        Environment::Test,
        &DeliveryFilter {
            stripe_event_id: None,
            payment_id: Some(payment_id_for_payment_intent(PAYMENT_INTENT)),
        },
        50,
    )
    .await
    .unwrap();
    assert_eq!(
        rows.len(),
        11,
        "the PaymentIntent's events are found by payment"
    );
    assert_eq!(
        parked_count(&app).await,
        2,
        "the payouts wait for their batches"
    );
}

/// A repeated delivery answers 200, changes nothing and is counted.
#[tokio::test]
async fn a_duplicate_delivery_changes_nothing() {
    let app = spawn_app().await;
    let body = fixture("charge.captured");
    assert_eq!(deliver(&app, &body).await.outcome(), "applied");
    let head = log_head(&app).await;
    assert_eq!(head, 3, "initiated, authorized, captured");
    let again = deliver(&app, &body).await;
    assert_eq!((again.status, again.outcome()), (200, "duplicate"));
    assert_eq!(log_head(&app).await, head);
    let row = delivery(&app, &event_id(&body)).await;
    assert_eq!(row.outcome, DeliveryOutcome::Applied);
    assert_eq!(row.delivery_count, 2);
    assert_eq!((row.first_position, row.last_position), (Some(1), Some(3)));
}

/// A webhook's payment facts go through the command handler, the path of every GraphQL
/// command: one read of the stream, the fold kept afterwards (so the next command or query
/// on the payment reads only what came after it), the claim `stripe:<evt_…>` on the events.
#[tokio::test]
async fn a_webhook_payment_goes_through_the_command_handler() {
    let app = spawn_app().await;
    let body = fixture("charge.captured");
    let reads = app.commands.stream_reads();
    assert_eq!(deliver(&app, &body).await.outcome(), "applied");
    assert_eq!(
        app.commands.stream_reads() - reads,
        1,
        "one read of the payment"
    );
    let events = app.store.read_all(1, 10).await.unwrap();
    assert_eq!(events.len(), 3, "initiated, authorized, captured");
    let payment_id = events[0].stream_id;
    let kept = app
        .commands
        .kept::<PaymentState>(payment_id)
        .expect("the webhook's fold is kept like a command's");
    assert_eq!(kept.summary.version, 3);
    assert_eq!(kept.state.status(), Some(PaymentStatus::Captured));
    for event in &events {
        let metadata = event.parsed_metadata().unwrap();
        assert_eq!(metadata.actor_id, "stripe");
        assert_eq!(
            metadata.idempotency_key,
            Some(format!("{CLAIM_PREFIX}{}", event_id(&body)))
        );
    }
}

/// Twenty copies of one event at once: one applies, nineteen are duplicates, and the log
/// holds the event's facts once.
#[tokio::test]
async fn twenty_concurrent_copies_apply_once() {
    let app = spawn_app().await;
    let body = fixture("charge.captured");
    let header = signature_now(&body);
    let copies = (0..20).map(|_| {
        let body = body.clone();
        let header = header.clone();
        let address = app.address;
        tokio::spawn(async move {
            post_raw(address, &[("Stripe-Signature", &header)], &body, false).await
        })
    });
    let answers = futures::future::join_all(copies).await;
    let mut outcomes = Vec::new();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        outcomes.push(answer.outcome().to_owned());
    }
    assert_eq!(
        outcomes.iter().filter(|o| *o == "applied").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(outcomes.iter().filter(|o| *o == "duplicate").count(), 19);
    assert_eq!(log_head(&app).await, 3);
    let row = delivery(&app, &event_id(&body)).await;
    assert_eq!(row.outcome, DeliveryOutcome::Applied);
    assert_eq!(row.delivery_count, 20);
}

fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for (index, first) in items.iter().enumerate() {
        let mut rest = items.to_vec();
        rest.remove(index);
        for mut tail in permutations(&rest) {
            tail.insert(0, *first);
            all.push(tail);
        }
    }
    all
}

/// The state of a payment as JSON, with its PaymentIntent id made neutral so that payments
/// of different intents compare.
fn neutral_state(state: &PaymentState, payment_intent: &str) -> String {
    serde_json::to_string(state)
        .unwrap()
        .replace(payment_intent, "pi_X")
}

/// All 24 orders of created, authorized, captured, refunded end in the same state, with
/// nothing left parked and every event recorded once.
#[tokio::test]
async fn every_order_of_a_four_event_lifecycle_ends_in_the_same_state() {
    let app = spawn_app().await;
    let lifecycle = [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
        "refund.updated",
    ];
    let orders = permutations(&[0, 1, 2, 3]);
    assert_eq!(orders.len(), 24);
    let mut end_states = BTreeSet::new();
    for (run, order) in orders.iter().enumerate() {
        // A new PaymentIntent and new event ids per order, so each run is its own payment.
        let payment_intent = format!("pi_3MtwBwLkdIwHu7ixRun{run:02}");
        let bodies: Vec<Vec<u8>> = lifecycle
            .iter()
            .map(|name| {
                let body = fixture(name);
                let id = event_id(&body);
                with_replaced(
                    &body,
                    &[
                        (PAYMENT_INTENT, payment_intent.as_str()),
                        (id.as_str(), format!("{id}Run{run:02}").as_str()),
                    ],
                )
            })
            .collect();
        for &index in order {
            let answer = deliver(&app, &bodies[index]).await;
            assert_eq!(answer.status, 200, "order {order:?}: {:?}", answer.body);
        }
        let state = payment(&app, payment_id_for_payment_intent(&payment_intent)).await;
        assert_eq!(state.version, 5, "order {order:?}");
        assert_eq!(
            state.status(),
            Some(PaymentStatus::PartiallyRefunded),
            "order {order:?}"
        );
        end_states.insert(neutral_state(&state, &payment_intent));
        for body in &bodies {
            let row = delivery(&app, &event_id(body)).await;
            assert!(row.outcome.is_final(), "order {order:?}: {row:?}");
        }
    }
    assert_eq!(end_states.len(), 1, "{end_states:#?}");
    assert_eq!(parked_count(&app).await, 0);
    assert_eq!(log_head(&app).await, 24 * 5);
}

/// A refund that arrives first is parked against its PaymentIntent and applied to the payment
/// that the PaymentIntent's metadata names, once that payment is captured.
#[tokio::test]
async fn an_early_refund_waits_and_lands_on_the_linked_payment() {
    let app = spawn_app().await;
    let ledger_payment = Uuid::new_v4().to_string();
    // Stripe copies the PaymentIntent's metadata to its charge; refunds carry none.
    let link = |name: &str| {
        let mut event: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
        event["data"]["object"]["metadata"]["ledger_payment_id"] =
            serde_json::json!(ledger_payment);
        serde_json::to_vec(&event).unwrap()
    };
    let refund = fixture("refund.updated");
    let parked = deliver(&app, &refund).await;
    assert_eq!(parked.outcome(), "parked");
    assert_eq!(log_head(&app).await, 0);
    assert_eq!(
        deliver(&app, &link("payment_intent.created"))
            .await
            .outcome(),
        "applied"
    );
    assert_eq!(parked_count(&app).await, 1, "still waits for the capture");
    assert_eq!(
        deliver(&app, &link("charge.captured")).await.outcome(),
        "applied"
    );
    assert_eq!(parked_count(&app).await, 0);
    let payment_id = PaymentId::parse(&ledger_payment).unwrap();
    let state = payment(&app, payment_id).await;
    assert_eq!(state.status(), Some(PaymentStatus::PartiallyRefunded));
    let row = delivery(&app, &event_id(&refund)).await;
    assert_eq!(row.outcome, DeliveryOutcome::Applied);
    assert_eq!(row.payment_id, Some(payment_id));
    // Nothing went to the stream a guess from the PaymentIntent id alone would have named.
    let guessed = payment_id_for_payment_intent(PAYMENT_INTENT);
    assert_eq!(payment(&app, guessed).await.version, 0);
}

/// Deliveries of many payments at once share their statements (`grouped.rs`): each still gets
/// its own row and its own answer to "is anything parked on my subject". Half the payments
/// have an early refund parked; their captures, delivered together with the others', must
/// each find it and apply it, and the others must record theirs untouched.
#[tokio::test]
async fn concurrent_deliveries_of_many_payments_each_find_their_own_parked_events() {
    let app = spawn_app().await;
    let payments = 24;
    // Every id in the fixtures (evt_, pi_, ch_, re_) contains this; replacing it makes a new
    // payment's events.
    let for_payment = |name: &str, number: usize| {
        with_replaced(
            &fixture(name),
            &[("MtwBwLkdIwHu7ix", &format!("Grp{number:012}"))],
        )
    };
    let deliver_all = |bodies: Vec<Vec<u8>>| {
        let address = app.address;
        async move {
            let posts = bodies.into_iter().map(|body| {
                tokio::spawn(async move {
                    let header = signature_now(&body);
                    post_raw(address, &[("Stripe-Signature", &header)], &body, false).await
                })
            });
            futures::future::join_all(posts)
                .await
                .into_iter()
                .map(|answer| {
                    let answer = answer.unwrap();
                    assert_eq!(answer.status, 200, "{:?}", answer.body);
                    answer.outcome().to_owned()
                })
                .collect::<Vec<_>>()
        }
    };
    let refunded: Vec<usize> = (0..payments).filter(|number| number % 2 == 0).collect();
    let outcomes = deliver_all(
        refunded
            .iter()
            .map(|n| for_payment("refund.updated", *n))
            .collect(),
    )
    .await;
    assert!(
        outcomes.iter().all(|outcome| outcome == "parked"),
        "{outcomes:?}"
    );
    let created = (0..payments)
        .map(|n| for_payment("payment_intent.created", n))
        .collect();
    let outcomes = deliver_all(created).await;
    assert!(
        outcomes.iter().all(|outcome| outcome == "applied"),
        "{outcomes:?}"
    );
    let captured = (0..payments)
        .map(|n| for_payment("charge.captured", n))
        .collect();
    let outcomes = deliver_all(captured).await;
    assert!(
        outcomes.iter().all(|outcome| outcome == "applied"),
        "{outcomes:?}"
    );

    assert_eq!(
        parked_count(&app).await,
        0,
        "every parked refund was applied"
    );
    for number in 0..payments {
        let payment_intent = format!("pi_3Grp{number:012}28a3tqPa");
        let payment_id = payment_id_for_payment_intent(&payment_intent);
        let captured = delivery(&app, &event_id(&for_payment("charge.captured", number))).await;
        assert_eq!(captured.outcome, DeliveryOutcome::Applied);
        assert_eq!(captured.payment_id, Some(payment_id), "{payment_intent}");
        assert_eq!(captured.delivery_count, 1);
        let expected = if number % 2 == 0 {
            let refund = delivery(&app, &event_id(&for_payment("refund.updated", number))).await;
            assert_eq!(refund.outcome, DeliveryOutcome::Applied);
            assert_eq!(refund.payment_id, Some(payment_id));
            PaymentStatus::PartiallyRefunded
        } else {
            PaymentStatus::Captured
        };
        assert_eq!(payment(&app, payment_id).await.status(), Some(expected));
    }
}

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::USD).unwrap()
}

/// Records a settlement batch of the captured 15.00 (fee 0.45) and initiates its payout.
async fn settle_and_initiate_payout(app: &TestApp, payout_id: &str) -> SettlementBatchId {
    let batch_id = SettlementBatchId::new_random();
    let context = CommandContext {
        environment: Environment::Test,
        actor_id: "test".to_owned(),
        actor_role: "finance".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: None,
    };
    let record = SettlementCommand::RecordBatch(RecordSettlementBatch {
        batch_id,
        merchant_id: MerchantId::parse("merchant_acme").unwrap(),
        environment: Environment::Test,
        currency: Currency::USD,
        items: vec![BatchItem {
            payment_id: payment_id_for_payment_intent(PAYMENT_INTENT),
            item: SettledItem::Capture(CaptureId::parse("ch_3MtwBwLkdIwHu7ix2Ck6fKGe").unwrap()),
            gross: PositiveMoney::parse("15.00", Currency::USD).unwrap(),
            fee: usd("0.45"),
        }],
        reserve: None,
    });
    app.commands
        .handle_settlement(batch_id, &record, &context)
        .await
        .unwrap();
    let initiate = SettlementCommand::RecordPayout(RecordPayout {
        payout_id: PayoutId::parse(payout_id).unwrap(),
        amount: PositiveMoney::parse("14.55", Currency::USD).unwrap(),
        update: PayoutUpdate::Initiated {
            expected_arrival_date: None,
        },
    });
    app.commands
        .handle_settlement(batch_id, &initiate, &context)
        .await
        .unwrap();
    batch_id
}

/// payout.paid parks until a batch has initiated its payout, then records it on that batch
/// when the parked events are retried (as a reconciliation import does).
#[tokio::test]
async fn a_payout_waits_for_its_batch_then_is_recorded_on_it() {
    let app = spawn_app().await;
    for name in [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
    ] {
        assert_eq!(deliver(&app, &fixture(name)).await.outcome(), "applied");
    }
    let paid = with_value(
        &fixture("payout.paid"),
        "/data/object/amount",
        serde_json::json!(1455),
    );
    assert_eq!(deliver(&app, &paid).await.outcome(), "parked");
    let batch_id = settle_and_initiate_payout(&app, "po_1OaFdSLkdIwHu7ixVbQkQy3X").await;
    assert_eq!(
        retry_all_parked(&app.state, Environment::Test)
            .await
            .unwrap(),
        1
    );
    assert_eq!(parked_count(&app).await, 0);
    let batch: ledger_core::settlement::SettlementBatchState =
        app.commands.load(batch_id.as_uuid()).await.unwrap();
    let payout = &batch.batch.as_ref().unwrap().payouts[0];
    assert_eq!(payout.status, ledger_core::settlement::PayoutStatus::Paid);
    assert_eq!(
        delivery(&app, &event_id(&paid)).await.outcome,
        DeliveryOutcome::Applied
    );
    // Delivered again: a duplicate.
    assert_eq!(deliver(&app, &paid).await.outcome(), "duplicate");
}

/// A payout whose batch is known applies at once; one that disagrees with the batch's net is
/// kept as a conflict.
#[tokio::test]
async fn a_payout_of_a_known_batch_applies_and_a_wrong_amount_is_a_conflict() {
    let app = spawn_app().await;
    for name in [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
    ] {
        deliver(&app, &fixture(name)).await;
    }
    settle_and_initiate_payout(&app, "po_1OaFdSLkdIwHu7ixVbQkQy3X").await;
    let wrong = fixture("payout.paid");
    let answer = deliver(&app, &wrong).await;
    assert_eq!((answer.status, answer.outcome()), (200, "conflict"));
    let head = log_head(&app).await;
    let paid = with_replaced(
        &with_value(&wrong, "/data/object/amount", serde_json::json!(1455)),
        &[(
            "evt_1OaGk2LkdIwHu7ixTq8eDv4N",
            "evt_1OaGk2LkdIwHu7ixTq8eDv4X",
        )],
    );
    assert_eq!(deliver(&app, &paid).await.outcome(), "applied");
    assert_eq!(log_head(&app).await, head + 1, "PayoutPaid");
}

/// Unknown types are answered 200 and kept as ignored.
#[tokio::test]
async fn an_unknown_event_type_is_recorded_as_ignored() {
    let app = spawn_app().await;
    let body = with_value(
        &fixture("customer.created"),
        "/type",
        serde_json::json!("invoice.finalized"),
    );
    let answer = deliver(&app, &body).await;
    assert_eq!((answer.status, answer.outcome()), (200, "ignored"));
    let row = delivery(&app, &event_id(&body)).await;
    assert!(row.detail.unwrap().contains("invoice.finalized"));
    assert_eq!(log_head(&app).await, 0);
}

/// Asserts that a refused delivery recorded nothing anywhere.
async fn assert_nothing_recorded(app: &TestApp) {
    assert_eq!(log_head(app).await, 0, "the log is untouched");
    assert!(deliveries(app).await.is_empty(), "no delivery row");
    assert_eq!(parked_count(app).await, 0);
}

fn assert_refused(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(answer.error_code(), code, "{:?}", answer.body);
    assert!(!answer.body["error"]["message"].as_str().unwrap().is_empty());
}

/// Bad signature, stale timestamp, missing header: 400 with a reason, nothing recorded.
#[tokio::test]
async fn signature_failures_are_refused_and_record_nothing() {
    let app = spawn_app().await;
    let body = fixture("charge.captured");
    let wrong_secret = sign(
        &secret(Environment::Test, "whsec_not_the_configured_one"),
        Utc::now().timestamp(),
        &body,
    );
    let answer = post_raw(
        app.address,
        &[("Stripe-Signature", &wrong_secret)],
        &body,
        false,
    )
    .await;
    assert_refused(&answer, 400, "no_secret_matched");
    let stale = sign(
        &secret(Environment::Test, TEST_SECRET),
        Utc::now().timestamp() - 301,
        &body,
    );
    let answer = post_raw(app.address, &[("Stripe-Signature", &stale)], &body, false).await;
    assert_refused(&answer, 400, "timestamp_outside_tolerance");
    let answer = post_raw(app.address, &[], &body, false).await;
    assert_refused(&answer, 400, "missing_signature_header");
    // Signed over other bytes than those delivered.
    let tampered = with_value(
        &body,
        "/data/object/amount_captured",
        serde_json::json!(2000),
    );
    let header = signature_now(&body);
    let answer = post_raw(
        app.address,
        &[("Stripe-Signature", &header)],
        &tampered,
        false,
    )
    .await;
    assert_refused(&answer, 400, "no_secret_matched");
    assert_nothing_recorded(&app).await;
}

/// A test-mode event signed with the live secret is refused.
#[tokio::test]
async fn a_livemode_that_disagrees_with_the_secret_is_refused() {
    let app = spawn_app().await;
    let body = fixture("charge.captured");
    let header = sign(
        &secret(Environment::Live, LIVE_SECRET),
        Utc::now().timestamp(),
        &body,
    );
    let answer = post_raw(app.address, &[("Stripe-Signature", &header)], &body, false).await;
    assert_refused(&answer, 400, "livemode_mismatch");
    assert_nothing_recorded(&app).await;
}

/// Malformed JSON and an oversized body: refused, nothing recorded; the oversized body is
/// refused from its declared length, before it is sent.
#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_and_record_nothing() {
    let app = spawn_app().await;
    let malformed = b"{\"id\": \"evt_1\", \"object\": \"event\",".to_vec();
    assert_refused(&deliver(&app, &malformed).await, 400, "malformed_body");
    let not_an_event = br#"{"id": "evt_1", "object": "customer"}"#.to_vec();
    assert_refused(&deliver(&app, &not_an_event).await, 400, "malformed_body");
    let mut oversized = fixture("charge.captured");
    let padding = " ".repeat(TEST_MAX_BODY_BYTES);
    oversized.splice(1..1, padding.bytes());
    let header = signature_now(&oversized);
    let answer = post_raw(
        app.address,
        &[("Stripe-Signature", &header)],
        &oversized,
        true,
    )
    .await;
    assert_refused(&answer, 413, "body_too_large");
    assert_nothing_recorded(&app).await;
}

/// During a secret roll both secrets verify, and a header carrying both signatures too.
#[tokio::test]
async fn rotated_secrets_both_verify() {
    let old = "whsec_oldOldOld1234567890abcdef";
    let new = "whsec_newNewNew0987654321fedcba";
    let app = spawn_app_with_secrets(&format!("test:{old},test:{new}")).await;
    let now = Utc::now().timestamp();
    let first = fixture("payment_intent.created");
    let header = sign(&secret(Environment::Test, old), now, &first);
    let answer = post_raw(app.address, &[("Stripe-Signature", &header)], &first, false).await;
    assert_eq!(answer.outcome(), "applied", "{:?}", answer.body);
    let second = fixture("payment_intent.amount_capturable_updated");
    let header = sign(&secret(Environment::Test, new), now, &second);
    let answer = post_raw(
        app.address,
        &[("Stripe-Signature", &header)],
        &second,
        false,
    )
    .await;
    assert_eq!(answer.outcome(), "applied", "{:?}", answer.body);
    // Stripe's header during a roll: one v1 per secret.
    let third = fixture("charge.captured");
    let by_old = sign(&secret(Environment::Test, old), now, &third);
    let by_new = sign(&secret(Environment::Test, new), now, &third);
    let v1_new = by_new
        .split(',')
        .find(|part| part.starts_with("v1="))
        .unwrap();
    let header = format!("{by_old},{v1_new}");
    let answer = post_raw(app.address, &[("Stripe-Signature", &header)], &third, false).await;
    assert_eq!(answer.outcome(), "applied", "{:?}", answer.body);
    // A secret that is no longer configured does not verify.
    let retired = sign(
        &secret(Environment::Test, TEST_SECRET),
        now,
        &fixture("refund.updated"),
    );
    let answer = post_raw(
        app.address,
        &[("Stripe-Signature", &retired)],
        &fixture("refund.updated"),
        false,
    )
    .await;
    assert_refused(&answer, 400, "no_secret_matched");
}

/// Support finds deliveries by Stripe event id and by payment; the limit is honoured.
#[tokio::test]
async fn recent_deliveries_are_searchable() {
    let app = spawn_app().await;
    for name in [
        "customer.created",
        "payment_intent.created",
        "payment_intent.payment_failed",
    ] {
        deliver(&app, &fixture(name)).await;
    }
    let all = deliveries(&app).await;
    assert_eq!(all.len(), 3);
    let by_payment = recent_deliveries(
        app.database.pool(),
        Environment::Test,
        &DeliveryFilter {
            stripe_event_id: None,
            payment_id: Some(PaymentId::parse("7b1f9f3e-2c4d-4e8a-9b6a-0f6f3c2d1e5a").unwrap()),
        },
        10,
    )
    .await
    .unwrap();
    assert_eq!(by_payment.len(), 1);
    assert_eq!(by_payment[0].event_type, "payment_intent.payment_failed");
    assert_eq!(
        by_payment[0].payment_intent_id.as_deref(),
        Some("pi_3NcLqGLkdIwHu7ix1hXb2VfY")
    );
    let limited = recent_deliveries(
        app.database.pool(),
        Environment::Test,
        &DeliveryFilter::default(),
        2,
    )
    .await
    .unwrap();
    assert_eq!(limited.len(), 2);
    let live = recent_deliveries(
        app.database.pool(),
        Environment::Live,
        &DeliveryFilter::default(),
        10,
    )
    .await
    .unwrap();
    assert!(live.is_empty(), "environments do not mix");
}

/// A signed event whose object does not fit the ledger (an unknown currency) is refused
/// with 422 and kept as rejected for support; the log is untouched.
#[tokio::test]
async fn an_unmappable_event_is_rejected_and_kept_for_support() {
    let app = spawn_app().await;
    let body = with_value(
        &fixture("charge.captured"),
        "/data/object/currency",
        serde_json::json!("xyz"),
    );
    let answer = deliver(&app, &body).await;
    assert_refused(&answer, 422, "invalid_field");
    assert_eq!(log_head(&app).await, 0);
    let row = delivery(&app, &event_id(&body)).await;
    assert_eq!(row.outcome, DeliveryOutcome::Rejected);
    assert!(row.detail.unwrap().contains("currency"));
}
