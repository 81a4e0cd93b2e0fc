//! Scale benchmark (issue 19, "cost as the log grows"): grows one log through the store to
//! each checkpoint and measures the same things at each, so their figures compare directly.
//!
//! ```sh
//! cargo run --release -p ledger-projections --example scale_bench -- [CHECKPOINTS] [SECONDS]
//! ```
//! `CHECKPOINTS` defaults to `0,1000000,10000000` (events in the log), `SECONDS` (of each
//! timed load) to 10. The log is grown by the rebuild benchmark's generator
//! (`rebuild_bench.rs`: realistic payment lifecycles through ledger-core's `decide`, appended
//! with the store's normal `append`, settlement batches and payouts per merchant), on a
//! private test cluster, given a quarter of the machine's memory for `shared_buffers` as an
//! operator would (`SCALE_BENCH_SHARED_BUFFERS` overrides it).
//!
//! At each checkpoint:
//! - **appends**: 32 writers initiate and authorize payments through the `CommandHandler`
//!   (a read of the new stream's row, or the fold the handler keeps from the initiation; a
//!   decision; an append) for `SECONDS`: commands/s and the p99 of one command;
//! - **`payment(id)`**: 32 readers load payments picked at random from the whole log through a
//!   handler with no kept folds (what `payment(id)` reads from the log: the state its stream's
//!   row keeps, or its events where the row keeps none): payments/s, and how many kept states
//!   of the sample were usable;
//! - **rebuild** of every projection from zero: events/s;
//! - **a `payments` page** (50 payments of one merchant) and **balances as of a past time**
//!   (the time the middle of the log was recorded): p50 and p99 of 200 requests;
//! - **verify** (chain, refold, trial balance, read models compared): events/s;
//! - **bytes on disk per event** (the `events` table with its indexes and TOAST) and the
//!   database's size;
//! - **memory**: this process's resident size now and its peak since the last checkpoint (the
//!   store, the projector and the verifier all run in it, as in `ledger serve`).

#[allow(dead_code, unused_imports)]
#[path = "rebuild_bench.rs"]
mod rebuild_bench;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_core::ids::{Environment, MerchantId, OrderId, PaymentId};
use ledger_core::payment::{CaptureMode, InitiatePayment, PaymentCommand, RecordAuthorization};
use ledger_core::{Currency, PositiveMoney};
use ledger_projections::read_models::payments::{list_payments, PaymentFilter};
use ledger_projections::rebuild::balances_as_of;
use ledger_projections::verify::verify;
use ledger_projections::{rebuild, AsOf, Projection, ProjectorOptions};
use ledger_store::commands::{CommandContext, CommandHandler};
use ledger_store::testing::{Shutdown, TestCluster};
use ledger_store::EventStore;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

// The allocator the `ledger` binary uses, so the server's parts cost here what they cost
// there (the system's allocator was a fifth of this process's time while verifying).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WRITERS: usize = 32;
const READERS: usize = 32;
const PAGE_REQUESTS: usize = 200;
// Enough that `payment(id)` reads for its whole time at ten million events (each id read once:
// 20,000 lasted 1–2 s before kept states, under one since).
const SAMPLED_PAYMENTS: i64 = 300_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().collect();
    let checkpoints: Vec<u64> = arguments
        .get(1)
        .map_or("0,1000000,10000000", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let seconds: u64 = arguments
        .get(2)
        .map(|text| text.parse())
        .transpose()?
        .unwrap_or(10);
    let cluster = TestCluster::start()?;
    let shared_buffers = shared_buffers();
    configure(&cluster, &shared_buffers).await?;
    println!("private cluster: shared_buffers = {shared_buffers}");
    // PostgreSQL maps its shared memory on huge pages when the machine reserves them
    // (`vm.nr_hugepages`; its `huge_pages = try` default), which shortens every page walk of a
    // random read through a large `shared_buffers`.
    println!(
        "huge pages of the machine: {} reserved, {} free after the cluster started",
        meminfo_figure("HugePages_Total:").unwrap_or(0),
        meminfo_figure("HugePages_Free:").unwrap_or(0)
    );
    let database = cluster.create_database().await?;
    let store = database.store();
    let pool = database.pool().clone();

    for target in checkpoints {
        let started = Instant::now();
        rebuild_bench::generate(&store, target).await?;
        let head = store.head().await?.last_position;
        println!(
            "\n== {head} events in the log ({:.0} s to grow it)",
            started.elapsed().as_secs_f64()
        );
        rebuild_bench::reset_peak_memory();

        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&pool)
            .await?;
        sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(&pool)
            .await?;
        let (rate, p99) = appends(&store, seconds).await?;
        println!("appends, {WRITERS} writers:        {rate:>9.0} commands/s, p99 {p99:.1} ms");
        print_top_statements(&pool).await?;

        sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(&pool)
            .await?;
        let (rate, events_per_payment) = payment_reads(&store, seconds).await?;
        println!(
            "payment(id), {READERS} readers:     {rate:>9.0} payments/s ({events_per_payment:.1} events per payment read)"
        );
        print_top_statements(&pool).await?;

        let head = store.head().await?.last_position;
        let report = rebuild(&pool, &Projection::ALL, ProjectorOptions::for_build()).await?;
        println!(
            "rebuild of every projection:   {:>9.0} events/s ({:.1} s)",
            report.events_per_second(),
            report.elapsed.as_secs_f64()
        );

        let merchant = Some("merchant_3".to_owned());
        let filter = PaymentFilter {
            merchant_id: merchant.clone(),
            order_id: None,
            status: None,
            created_from: None,
            created_before: None,
        };
        let (p50, p99) = timed_requests(|| async {
            list_payments(&pool, Environment::Test, &filter, None, 50).await?;
            Ok(())
        })
        .await?;
        println!("payments page of a merchant:   p50 {p50:.2} ms, p99 {p99:.2} ms");

        let middle = store.read_all(head / 2 + 1, 1).await?;
        let past = middle
            .first()
            .map_or_else(Utc::now, |event| event.recorded_at);
        let (p50, p99) = timed_requests(|| async {
            balances_as_of(
                &pool,
                Environment::Test,
                merchant.as_deref(),
                AsOf::Time(past),
            )
            .await?;
            Ok(())
        })
        .await?;
        println!("balances as of a past time:    p50 {p50:.2} ms, p99 {p99:.2} ms");

        let started = Instant::now();
        let verification = verify(&store, ProjectorOptions::for_build()).await?;
        let verify_seconds = started.elapsed().as_secs_f64();
        println!(
            "verify:                        {:>9.0} events/s ({verify_seconds:.1} s, {} discrepancies)",
            verification.events_folded as f64 / verify_seconds,
            verification.discrepancies.len()
        );
        println!(
            "  its parts, from one read of the log: chain {:.1} s, refold {:.1} s, read models built and compared {:.1} s (the comparison {:.1} s); the build took {} events from the refold and read {} again",
            verification.durations.chain.as_secs_f64(),
            verification.durations.fold.as_secs_f64(),
            verification.durations.read_models.as_secs_f64(),
            verification.durations.comparison.as_secs_f64(),
            verification.events_built_from_refold,
            verification.events_built_from_log
        );

        let head = store.head().await?.last_position.max(1);
        let (events_bytes, database_bytes): (i64, i64) = sqlx::query_as(
            "SELECT pg_total_relation_size('events'), pg_database_size(current_database())",
        )
        .fetch_one(&pool)
        .await?;
        println!(
            "disk: {:.0} bytes per event in `events` with its indexes; database {:.0} MiB ({:.0} bytes per event)",
            events_bytes as f64 / head as f64,
            database_bytes as f64 / 1_048_576.0,
            database_bytes as f64 / head as f64
        );
        println!(
            "memory of this process: {} MiB resident, {} MiB at its peak during the measurements",
            rebuild_bench::memory_kib("VmRSS:").unwrap_or(0) / 1024,
            rebuild_bench::memory_kib("VmHWM:").unwrap_or(0) / 1024
        );
    }
    Ok(())
}

/// What an operator gives PostgreSQL (docs/scaling.md): a quarter of the machine's memory
/// for `shared_buffers`, or `SCALE_BENCH_SHARED_BUFFERS` (e.g. `128MB`, the server's default,
/// to compare with).
fn shared_buffers() -> String {
    if let Ok(setting) = std::env::var("SCALE_BENCH_SHARED_BUFFERS") {
        return setting;
    }
    let total_kib = meminfo_figure("MemTotal:").unwrap_or(4 * 1024 * 1024);
    format!("{}MB", total_kib / 4 / 1024)
}

/// A figure of `/proc/meminfo` (KiB for a size such as `MemTotal:`, a count for
/// `HugePages_Total:`), where the system reports it.
fn meminfo_figure(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sets the cluster's `shared_buffers` and restarts it (the setting takes effect only at
/// start).
async fn configure(cluster: &TestCluster, shared_buffers: &str) -> anyhow::Result<()> {
    let mut connection = PgConnection::connect(&cluster.url("postgres")).await?;
    sqlx::query(&format!(
        "ALTER SYSTEM SET shared_buffers = '{}'",
        shared_buffers.replace('\'', "")
    ))
    .execute(&mut connection)
    .await?;
    // The statements of the append and `payment(id)` measurements are printed with their
    // times and the blocks they read from outside PostgreSQL's cache (with the time those
    // reads took), to see which one grows with the log, and why.
    sqlx::query("ALTER SYSTEM SET track_io_timing = on")
        .execute(&mut connection)
        .await?;
    sqlx::query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    cluster.restart(Shutdown::Fast)?;
    Ok(())
}

/// The statements that took the most time since the last reset, with their mean.
async fn print_top_statements(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let rows: Vec<(String, i64, f64, f64, i64, i64, f64)> = sqlx::query_as(
        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), calls, total_exec_time,
                mean_exec_time, shared_blks_hit, shared_blks_read, blk_read_time
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 6",
    )
    .fetch_all(pool)
    .await?;
    for (query, calls, total, mean, hit, read, read_ms) in rows {
        println!(
            "  {total:>8.0} ms in {calls:>7} calls, mean {mean:.3} ms, blocks hit {hit} read {read} ({read_ms:.0} ms reading): {query}"
        );
    }
    Ok(())
}

fn context() -> CommandContext {
    CommandContext {
        environment: Environment::Test,
        actor_id: "scale-bench".to_owned(),
        actor_role: "service".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: None,
    }
}

/// Commands a second and the p99 of one command, over `seconds`.
async fn appends(store: &EventStore, seconds: u64) -> anyhow::Result<(f64, f64)> {
    let handler = CommandHandler::new(store.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (handler, stop, latencies) = (handler.clone(), stop.clone(), latencies.clone());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            let mut number = 0;
            while !stop.load(Ordering::Relaxed) {
                number += 1;
                let payment_id = PaymentId::from_uuid(Uuid::new_v4());
                let initiate = PaymentCommand::Initiate(InitiatePayment {
                    merchant_id: MerchantId::parse("merchant-scale")?,
                    order_id: OrderId::parse(format!("scale-{writer}-{number}"))?,
                    environment: Environment::Test,
                    amount: PositiveMoney::parse("25.00", Currency::USD)?,
                    capture_mode: CaptureMode::Manual,
                    payment_method: None,
                });
                let authorize =
                    PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
                        authorized_amount: None,
                        authorization_code: None,
                        gateway_reference: None,
                        expires_at: None,
                    });
                for command in [initiate, authorize] {
                    let started = Instant::now();
                    handler
                        .handle_payment(payment_id, &command, &context())
                        .await?;
                    mine.push(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            latencies
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .extend(mine);
            Ok::<(), anyhow::Error>(())
        });
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    latencies.sort_by(f64::total_cmp);
    Ok((
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.99),
    ))
}

/// Payments loaded from the log a second, ids drawn from the whole log, and the events a
/// payment read had on average: the payments of a small log are the append measurement's
/// two-event ones, those of a large log the generator's whole lifecycles, so the two figures
/// are compared with their sizes. A payment whose row keeps its state is one row to read
/// however many events it has (`ledger_store::kept_state`).
async fn payment_reads(store: &EventStore, seconds: u64) -> anyhow::Result<(f64, f64)> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT stream_id FROM streams WHERE stream_type = 'payment' ORDER BY random() LIMIT $1",
    )
    .bind(SAMPLED_PAYMENTS)
    .fetch_all(store.pool())
    .await?;
    if ids.is_empty() {
        return Ok((0.0, 0.0));
    }
    let ids = Arc::new(ids);
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM streams WHERE stream_id = ANY($1) AND state IS NOT NULL",
    )
    .bind(ids.as_slice())
    .fetch_one(store.pool())
    .await?;
    println!(
        "payments sampled with a kept state: {kept} of {}",
        ids.len()
    );
    // No kept folds: each read goes to the log, as for a payment nobody asked about lately.
    let handler = CommandHandler::new(store.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..READERS {
        let (handler, ids, next, stop) = (handler.clone(), ids.clone(), next.clone(), stop.clone());
        tasks.spawn(async move {
            let (mut reads, mut events) = (0_u64, 0_u64);
            while !stop.load(Ordering::Relaxed) {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= ids.len() {
                    break;
                }
                let state = handler
                    .load_payment(Environment::Test, PaymentId::from_uuid(ids[index]))
                    .await?;
                reads += 1;
                events += state.version;
            }
            Ok::<(u64, u64), anyhow::Error>((reads, events))
        });
    }
    let started = Instant::now();
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    let (mut reads, mut events) = (0, 0);
    loop {
        tokio::select! {
            () = &mut deadline, if !stop.load(Ordering::Relaxed) => stop.store(true, Ordering::Relaxed),
            done = tasks.join_next() => match done {
                Some(done) => {
                    let (task_reads, task_events) = done??;
                    reads += task_reads;
                    events += task_events;
                }
                None => break,
            },
        }
    }
    Ok((
        reads as f64 / started.elapsed().as_secs_f64(),
        events as f64 / reads.max(1) as f64,
    ))
}

/// p50 and p99 in milliseconds of [`PAGE_REQUESTS`] requests one after the other.
async fn timed_requests<F, Fut>(request: F) -> anyhow::Result<(f64, f64)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(PAGE_REQUESTS);
    for _ in 0..PAGE_REQUESTS {
        let started = Instant::now();
        request().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((percentile(&times, 0.5), percentile(&times, 0.99)))
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * quantile).round() as usize]
}
