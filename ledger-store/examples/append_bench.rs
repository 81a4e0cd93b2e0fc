//! Append throughput and latency of the event log, with its own baseline.
//!
//! ```text
//! cargo run --release -p ledger-store --example append_bench -- --writers 32 --seconds 10
//! ```
//!
//! Uses `DATABASE_URL` when set, else starts a private cluster with durability on (fsync,
//! synchronous_commit) in a temporary directory. Writers run realistic payment lifecycles
//! (initiate → authorize → capture → refund for one in four), each command one append with an
//! idempotency key. Then, on the same database and with the same number of clients, the
//! baseline: raw multi-row INSERTs of equally sized rows into a plain table unique only on
//! stream and version, the shape `performance.md` measured its physical limit on.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use ledger_store::embedded::EmbeddedCluster;
use ledger_store::{
    AppendRequest, Environment, EventMetadata, EventStore, ExpectedVersion, IdempotencyClaim,
    NewEvent, StreamAppend, StreamType,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

// The allocator the `ledger` binary uses, so the writer's cost is measured as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Connections the benchmark opens at most.
const MAX_CONNECTIONS: u32 = 90;

/// Rows per statement in the baseline, as in the pgbench figures of `performance.md`.
const BASELINE_ROWS_PER_INSERT: usize = 10;

struct Arguments {
    writers: usize,
    seconds: u64,
}

fn parse_arguments() -> anyhow::Result<Arguments> {
    let mut arguments = Arguments {
        writers: 32,
        seconds: 10,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let value = words
            .next()
            .with_context(|| format!("{word} needs a value"))?;
        match word.as_str() {
            "--writers" => arguments.writers = value.parse()?,
            "--seconds" => arguments.seconds = value.parse()?,
            other => bail!("unknown argument {other}; use --writers N --seconds S"),
        }
    }
    Ok(arguments)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = parse_arguments()?;
    let bench_dir = std::env::temp_dir().join(format!("ledger-bench-{}", std::process::id()));
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => run(&arguments, &url, None).await,
        _ => {
            // Stopped and removed whatever the outcome: the benchmark leaves nothing behind.
            let mut cluster = EmbeddedCluster::start(&bench_dir)?;
            let url = cluster.url().to_owned();
            let outcome = run(&arguments, &url, Some(cluster.data_dir())).await;
            cluster.stop()?;
            std::fs::remove_dir_all(&bench_dir)
                .with_context(|| format!("removing {}", bench_dir.display()))?;
            outcome
        }
    }
}

async fn run(
    arguments: &Arguments,
    url: &str,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    // PostgreSQL accepts 100 connections by default; more writers share them.
    let pool =
        ledger_store::pool_options((u32::try_from(arguments.writers)? + 4).min(MAX_CONNECTIONS))
            .connect(url)
            .await?;
    ledger_store::migrate(&pool).await?;
    let durability: (String, String) =
        sqlx::query_as("SELECT current_setting('fsync'), current_setting('synchronous_commit')")
            .fetch_one(&pool)
            .await?;
    println!(
        "append_bench: {} writers, {} s, fsync={}, synchronous_commit={}",
        arguments.writers, arguments.seconds, durability.0, durability.1
    );

    let store = EventStore::new(pool.clone());
    let duration = Duration::from_secs(arguments.seconds);
    let cpu_before = process_cpu_seconds();
    let server_cpu_before = data_dir.map(server_cpu_seconds);
    let store_figures = run_store(&store, arguments.writers, duration).await?;
    let store_cpu_seconds = process_cpu_seconds() - cpu_before;
    let server_cpu_seconds = data_dir
        .map(server_cpu_seconds)
        .zip(server_cpu_before)
        .map(|(after, before)| after - before);
    let baseline_rows_per_second = run_baseline(&pool, arguments.writers, duration).await?;
    let statistics = store.writer_statistics();
    let chain = store.verify_chain(1, None).await?;

    let ratio = store_figures.events_per_second / baseline_rows_per_second;
    println!(
        "store:    {:>9.0} commands/s (target ≥ 10000)",
        store_figures.commands_per_second
    );
    println!(
        "store:    {:>9.0} events/s",
        store_figures.events_per_second
    );
    println!(
        "store:    latency p50 {:.2} ms, p99 {:.2} ms (target p99 ≤ 20 ms)",
        store_figures.p50_ms, store_figures.p99_ms
    );
    println!(
        "baseline: {baseline_rows_per_second:>9.0} rows/s (plain table unique on stream and version, {BASELINE_ROWS_PER_INSERT} rows per INSERT, {} clients)",
        arguments.writers
    );
    // Each command is one durable round trip for its writer, as each baseline INSERT is for
    // its client: this ratio shows the cost of the checks, the other the rows per trip.
    let baseline_statements_per_second = baseline_rows_per_second / BASELINE_ROWS_PER_INSERT as f64;
    println!(
        "baseline: {baseline_statements_per_second:>9.0} INSERT statements/s; store commands/s ÷ baseline statements/s = {:.0}%",
        store_figures.commands_per_second / baseline_statements_per_second * 100.0
    );
    println!(
        "ratio:    store events/s ÷ baseline rows/s = {:.0}% (target ≥ 50%)",
        ratio * 100.0
    );
    println!(
        "process:  {:.0} µs of this process's CPU per command (clients, validation, writer)",
        store_cpu_seconds * 1e6 / (store_figures.commands_per_second * duration.as_secs_f64())
    );
    if let Some(seconds) = server_cpu_seconds {
        println!(
            "server:   {:.0} µs of PostgreSQL's CPU per command (all its processes)",
            seconds * 1e6 / (store_figures.commands_per_second * duration.as_secs_f64())
        );
    }
    println!(
        "writer:   {} commits, {:.1} commands per commit on average; {} pipelined, {} written again",
        statistics.batches,
        statistics.requests as f64 / statistics.batches.max(1) as f64,
        statistics.pipelined,
        statistics.written_again
    );
    println!(
        "chain:    {} events verified, intact: {}",
        chain.events_checked,
        chain.is_intact()
    );

    drop(store);
    pool.close().await;
    Ok(())
}

/// Clock ticks per second in /proc (Linux's USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// The parent pid and the user plus system CPU seconds of a process, from /proc/PID/stat.
fn process_stat(pid: &str) -> Option<(u32, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the parenthesized command name: state, ppid, …; utime and stime are the 12th and
    // 13th fields.
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((parent, (utime + stime) / TICKS_PER_SECOND))
}

/// CPU seconds used by this process so far.
fn process_cpu_seconds() -> f64 {
    process_stat("self").map_or(0.0, |(_, seconds)| seconds)
}

/// CPU seconds used so far by the server: the postmaster and its child processes (ended
/// backends are not counted; the store's connections live throughout).
fn server_cpu_seconds(data_dir: &std::path::Path) -> f64 {
    let pid_file = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap_or_default();
    let Some(postmaster) = pid_file
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
    else {
        return 0.0;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let pid: u32 = name.parse().ok()?;
            let (parent, seconds) = process_stat(&name)?;
            (pid == postmaster || parent == postmaster).then_some(seconds)
        })
        .sum()
}

struct StoreFigures {
    commands_per_second: f64,
    events_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run_store(
    store: &EventStore,
    writers: usize,
    duration: Duration,
) -> anyhow::Result<StoreFigures> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..writers)
        .map(|writer| tokio::spawn(payment_writer(store.clone(), writer, deadline)))
        .collect();
    let mut latencies_us = Vec::new();
    let mut events = 0u64;
    for task in tasks {
        let (writer_latencies, writer_events) = task.await??;
        latencies_us.extend(writer_latencies);
        events += writer_events;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let percentile = |fraction: f64| {
        let index = ((latencies_us.len() as f64 - 1.0) * fraction).round() as usize;
        latencies_us.get(index).copied().unwrap_or(0) as f64 / 1000.0
    };
    Ok(StoreFigures {
        commands_per_second: latencies_us.len() as f64 / elapsed,
        events_per_second: events as f64 / elapsed,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
    })
}

/// Runs payment lifecycles until the deadline; returns each command's latency (µs) and the
/// events recorded.
async fn payment_writer(
    store: EventStore,
    writer: usize,
    deadline: Instant,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let mut latencies = Vec::new();
    let mut events = 0;
    let mut payment_number = 0u64;
    while Instant::now() < deadline {
        payment_number += 1;
        let payment_id = Uuid::new_v4();
        let refunds = payment_number % 4 == 0;
        let steps: &[&str] = if refunds {
            &[
                "PaymentInitiated",
                "PaymentAuthorized",
                "PaymentCaptured",
                "RefundRequested",
            ]
        } else {
            &["PaymentInitiated", "PaymentAuthorized", "PaymentCaptured"]
        };
        for (version, event_type) in steps.iter().enumerate() {
            let request = command(payment_id, version as u64, event_type, writer)?;
            let sent = Instant::now();
            let outcome = store.append(request).await?;
            latencies.push(sent.elapsed().as_micros() as u64);
            events += outcome.result().events.len() as u64;
        }
    }
    Ok((latencies, events))
}

fn command(
    payment_id: Uuid,
    version: u64,
    event_type: &str,
    writer: usize,
) -> anyhow::Result<AppendRequest> {
    let key = format!("{payment_id}-{event_type}");
    let payload = payload(payment_id, event_type, writer);
    let request_hash = IdempotencyClaim::hash_request(&payload)?;
    let expected_version = if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exactly(version)
    };
    Ok(AppendRequest {
        streams: vec![StreamAppend {
            stream_id: payment_id,
            stream_type: StreamType::Payment,
            expected_version,
            events: vec![NewEvent {
                event_id: Uuid::new_v4(),
                event_type: event_type.into(),
                schema_version: 1,
                occurred_at: Utc::now(),
                payload,
                metadata: EventMetadata {
                    environment: Environment::Test,
                    actor_id: format!("key_{writer:04}"),
                    actor_role: "service".into(),
                    correlation_id: Uuid::new_v4(),
                    causation_id: None,
                    idempotency_key: Some(key.clone()),
                },
            }],
            kept_state: None,
        }],
        idempotency: Some(IdempotencyClaim {
            environment: Environment::Test,
            key,
            request_hash,
        }),
    })
}

/// A payload of about 400 bytes, like the domain's payment events.
fn payload(payment_id: Uuid, event_type: &str, writer: usize) -> Value {
    json!({
        "payment_id": payment_id,
        "order_id": format!("order-{writer}-{}", payment_id.simple()),
        "merchant_id": format!("merchant-{:03}", writer % 50),
        "kind": event_type,
        "amount": "1099.50",
        "currency": "USD",
        "capture_mode": "MANUAL",
        "payment_method": {"type": "card", "brand": "visa", "last4": "4242", "exp": "12/29"},
        "gateway_reference": format!("pi_{}", payment_id.simple()),
        "authorization_code": "A1B2C3",
        "description": "Order of 3 items shipped to the customer's address on file",
    })
}

/// The baseline: `writers` clients inserting equally sized rows into a plain table.
async fn run_baseline(pool: &PgPool, writers: usize, duration: Duration) -> anyhow::Result<f64> {
    // The baseline table is not part of the schema, so these statements cannot be checked at
    // compile time against the migrations; they are plain `sqlx::query`.
    sqlx::query("DROP TABLE IF EXISTS bench_baseline")
        .execute(pool)
        .await?;
    // The shape performance.md measured its physical limit on: an event log's columns, unique
    // on stream and version, and nothing else.
    sqlx::query(
        "CREATE TABLE bench_baseline (position bigserial, stream_id uuid, version bigint,
         event_type text, payload jsonb, metadata jsonb, hash bytea,
         UNIQUE (stream_id, version))",
    )
    .execute(pool)
    .await?;
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let pool = pool.clone();
            tokio::spawn(async move { baseline_client(pool, writer, deadline).await })
        })
        .collect();
    let mut rows = 0u64;
    for task in tasks {
        rows += task.await??;
    }
    let rows_per_second = rows as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_baseline")
        .execute(pool)
        .await?;
    Ok(rows_per_second)
}

async fn baseline_client(pool: PgPool, writer: usize, deadline: Instant) -> anyhow::Result<u64> {
    let mut rows = 0;
    while Instant::now() < deadline {
        let mut stream_ids = Vec::with_capacity(BASELINE_ROWS_PER_INSERT);
        let mut versions = Vec::with_capacity(BASELINE_ROWS_PER_INSERT);
        let mut types = Vec::with_capacity(BASELINE_ROWS_PER_INSERT);
        let mut payloads = Vec::with_capacity(BASELINE_ROWS_PER_INSERT);
        let mut metadatas = Vec::with_capacity(BASELINE_ROWS_PER_INSERT);
        let mut hashes = Vec::with_capacity(BASELINE_ROWS_PER_INSERT);
        for row in 0..BASELINE_ROWS_PER_INSERT {
            let stream_id = Uuid::new_v4();
            stream_ids.push(stream_id);
            versions.push(row as i64 + 1);
            types.push("PaymentCaptured".to_owned());
            payloads.push(payload(stream_id, "PaymentCaptured", writer));
            metadatas.push(json!({
                "environment": "test", "actor_id": format!("key_{writer:04}"),
                "actor_role": "service", "correlation_id": Uuid::new_v4(),
                "causation_id": null, "idempotency_key": format!("{stream_id}-PaymentCaptured"),
                "occurred_at": "2026-11-26T13:41:00.123456Z", "stream_type": "payment",
            }));
            hashes.push(vec![7u8; 32]);
        }
        sqlx::query(
            "INSERT INTO bench_baseline (stream_id, version, event_type, payload, metadata, hash)
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::jsonb[],
                 $5::jsonb[], $6::bytea[])",
        )
        .bind(&stream_ids)
        .bind(&versions)
        .bind(&types)
        .bind(&payloads)
        .bind(&metadatas)
        .bind(&hashes)
        .execute(&pool)
        .await?;
        rows += BASELINE_ROWS_PER_INSERT as u64;
    }
    Ok(rows)
}
