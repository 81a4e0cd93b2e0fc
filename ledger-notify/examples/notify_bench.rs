//! Notification throughput and lag: commands appended by concurrent writers while the
//! dispatcher and sender deliver to local receivers (axum, 127.0.0.1), beside a baseline of
//! the same writers with no endpoint, measured in the same run on the same database.
//!
//! `cargo run --release -p ledger-notify --example notify_bench -- [SECONDS] [WRITERS] [ENDPOINTS] [DELIVERIES_PER_SECOND] [BASELINE_SECONDS]`
//! (defaults 10, 32, 4, 0, SECONDS). Prints commands/s of both phases; deliveries made and
//! delivered while the writers appended, and how long the rest took; two lags (p50, p99,
//! max): the dispatcher's, from an event's commit to its deliveries' creation, and the whole
//! way, from the commit to the arrival at the receiver.
//!
//! With `DELIVERIES_PER_SECOND` 0 the writers append as fast as they can: the store appends
//! several times more than any sender delivers, so the backlog and the lag only grow, and
//! deliveries/s is the sender's capacity. Given a rate, the writers are paced to make that many
//! deliveries a second (three events a payment, one delivery per endpoint), which is the
//! question the issue asks: does delivery keep up with that load, and how far behind.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use ledger_core::ids::{Environment, MerchantId, OrderId, PaymentId};
use ledger_core::payment::{CaptureMode, InitiatePayment, PaymentCommand, RecordAuthorization};
use ledger_core::{Currency, PositiveMoney};
use ledger_notify::{Dispatcher, Endpoints, NewEndpoint, Sender, SenderOptions, UrlPolicy};
use ledger_store::commands::{CommandContext, CommandHandler};
use ledger_store::testing::TestDatabase;
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

fn context() -> CommandContext {
    CommandContext {
        environment: Environment::Test,
        actor_id: "bench".to_owned(),
        actor_role: "service".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: None,
    }
}

/// Writers append captured payments (two commands, three events each) until `seconds` pass,
/// each at most `payments_per_second / writers` a second when a rate is given; returns the
/// commands appended.
async fn append(
    handler: &CommandHandler,
    writers: usize,
    seconds: u64,
    payments_per_second: Option<f64>,
) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let commands = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let (handler, stop, commands) = (handler.clone(), stop.clone(), commands.clone());
        let mut pace = payments_per_second.map(|rate| {
            let mut interval =
                tokio::time::interval(Duration::from_secs_f64(writers as f64 / rate));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        tasks.spawn(async move {
            let mut number = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some(pace) = pace.as_mut() {
                    pace.tick().await;
                }
                number += 1;
                let payment_id = PaymentId::from_uuid(Uuid::new_v4());
                let initiate = PaymentCommand::Initiate(InitiatePayment {
                    merchant_id: MerchantId::parse("merchant-bench").unwrap(),
                    order_id: OrderId::parse(format!("order-{writer}-{number}")).unwrap(),
                    environment: Environment::Test,
                    amount: PositiveMoney::parse("9.99", Currency::USD).unwrap(),
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
                    commands.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    commands.load(Ordering::Relaxed)
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * quantile).round() as usize]
}

#[tokio::main]
async fn main() {
    let mut arguments = std::env::args()
        .skip(1)
        .map(|text| text.parse::<u64>().unwrap());
    let seconds = arguments.next().unwrap_or(10);
    let writers = arguments.next().unwrap_or(32) as usize;
    let endpoint_count = arguments.next().unwrap_or(4);
    let deliveries_per_second = arguments.next().unwrap_or(0);
    let baseline_seconds = arguments.next().unwrap_or(seconds);
    let payments_per_second = (deliveries_per_second > 0)
        .then(|| deliveries_per_second as f64 / (3 * endpoint_count) as f64);

    let database = TestDatabase::new().await;
    let handler = CommandHandler::new(database.store());

    // Baseline: the same writers, no endpoint (the dispatcher still follows the log).
    let wake = Arc::new(Notify::new());
    let pool = database.server_pool().await;
    let dispatcher = tokio::spawn(
        Dispatcher::new(pool.clone(), wake.clone())
            .follow(Duration::from_millis(100), std::future::pending()),
    );
    let started = Instant::now();
    let baseline = append(&handler, writers, baseline_seconds, None).await;
    let baseline_rate = baseline as f64 / started.elapsed().as_secs_f64();

    // Receivers record each arrival's lag behind the event's commit.
    let lags: Arc<Mutex<Vec<f64>>> = Arc::default();
    let endpoints = Endpoints::new(database.pool().clone(), UrlPolicy::default());
    for number in 0..endpoint_count {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let lags = lags.clone();
        let app = Router::new().route(
            "/hook",
            post(move |body: String| {
                let lags = lags.clone();
                async move {
                    let body: Value = serde_json::from_str(&body).unwrap();
                    let recorded: DateTime<Utc> = body["data"]["event"]["recorded_at"]
                        .as_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let lag = (Utc::now() - recorded).num_microseconds().unwrap() as f64 / 1e6;
                    lags.lock().unwrap().push(lag);
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        endpoints
            .create(
                Environment::Test,
                NewEndpoint {
                    idempotency_key: format!("bench-{number}"),
                    url,
                    event_types: vec!["*".to_owned()],
                    description: None,
                },
            )
            .await
            .unwrap();
    }
    let sender = Sender::new(
        pool.clone(),
        SenderOptions {
            concurrency: 256,
            claim_size: 4_000,
            ..SenderOptions::default()
        },
        wake,
    )
    .unwrap();
    let sending = tokio::spawn(sender.run(std::future::pending()));
    // Where the time goes: each second, how far the dispatcher is behind the log and how many
    // deliveries wait for the sender (to stderr, beside the figures).
    // (Delivered is counted by the receivers: counting it in the table each second scanned
    // every delivered row and took a share of the database from what is measured.)
    let progress_pool = database.pool().clone();
    let progress_lags = lags.clone();
    let progress_started = Instant::now();
    let progress = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(row) = sqlx::query!(
                r#"SELECT (SELECT last_position FROM log_head) AS "head",
                          (SELECT position FROM notification_checkpoint) AS "dispatched",
                          (SELECT count(*) FROM notification_deliveries
                           WHERE status = 'pending') AS "pending""#
            )
            .fetch_one(&progress_pool)
            .await
            else {
                continue;
            };
            let delivered = progress_lags.lock().unwrap().len();
            eprintln!(
                "{:5.1} s: log head {:?}, dispatched to {:?}, pending {:?}, delivered {delivered}",
                progress_started.elapsed().as_secs_f64(),
                row.head,
                row.dispatched,
                row.pending,
            );
        }
    });

    let started = Instant::now();
    let commands = append(&handler, writers, seconds, payments_per_second).await;
    let append_seconds = started.elapsed().as_secs_f64();
    // What had arrived when the writers stopped: keeping up means delivering as fast as the
    // deliveries are made, not only draining them afterwards.
    let delivered_while_appending = lags.lock().unwrap().len();
    // Let the backlog drain, then measure deliveries over the whole phase.
    let expected = (commands / 2 * 3 * endpoint_count) as usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    while lags.lock().unwrap().len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total_seconds = started.elapsed().as_secs_f64();
    // The dispatcher's own lag: from an event's commit to the creation of its deliveries.
    let mut dispatch_lags: Vec<f64> = sqlx::query_scalar!(
        r#"SELECT GREATEST(extract(epoch FROM d.created_at - e.recorded_at), 0)::float8 AS "lag!"
           FROM notification_deliveries d JOIN events e ON e.position = d.position"#
    )
    .fetch_all(database.pool())
    .await
    .unwrap();
    dispatch_lags.sort_by(f64::total_cmp);
    dispatcher.abort();
    sending.abort();
    progress.abort();
    let mut lags = lags.lock().unwrap().clone();
    lags.sort_by(f64::total_cmp);
    println!("writers {writers}, endpoints {endpoint_count}, {seconds} s per phase");
    match payments_per_second {
        Some(rate) => {
            println!("paced: {rate:.0} payments/s, {deliveries_per_second} deliveries/s asked for")
        }
        None => println!("unpaced: writers append as fast as they can"),
    }
    println!("baseline (no endpoint): {baseline_rate:.0} commands/s");
    println!(
        "with notifications:     {:.0} commands/s",
        commands as f64 / append_seconds
    );
    println!(
        "deliveries made: {expected} in {append_seconds:.1} s = {:.0}/s",
        expected as f64 / append_seconds
    );
    println!(
        "delivered while appending: {delivered_while_appending} = {:.0}/s; the other {} \
         within {:.1} s after",
        delivered_while_appending as f64 / append_seconds,
        expected.saturating_sub(delivered_while_appending),
        total_seconds - append_seconds
    );
    println!(
        "deliveries: {} of {expected} in {total_seconds:.1} s = {:.0}/s",
        lags.len(),
        lags.len() as f64 / total_seconds
    );
    println!(
        "dispatcher's lag, commit → deliveries created: p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        percentile(&dispatch_lags, 0.5),
        percentile(&dispatch_lags, 0.99),
        percentile(&dispatch_lags, 1.0)
    );
    println!(
        "lag commit → receiver: p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        percentile(&lags, 1.0)
    );
}
