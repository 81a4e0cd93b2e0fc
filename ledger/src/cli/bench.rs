//! `ledger bench`: a load generator that drives the public HTTP API, on a scratch database so
//! that the ledger's own data is untouched. It prints its figures beside a baseline measured in
//! the same run: plain `GET /healthz` requests, the HTTP stack's own limit on this machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Mutex;

use super::client::{admin_key, serve_in_process, GraphqlClient};

/// Latencies in microseconds, and how many operations failed.
#[derive(Default)]
struct Samples {
    latencies_us: Vec<u64>,
    failures: u64,
}

struct Figures {
    operations: usize,
    failures: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn figures(mut samples: Samples, elapsed: Duration) -> Figures {
    samples.latencies_us.sort_unstable();
    let milliseconds = |fraction| percentile(&samples.latencies_us, fraction) as f64 / 1000.0;
    Figures {
        operations: samples.latencies_us.len(),
        failures: samples.failures,
        per_second: samples.latencies_us.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: milliseconds(0.50),
        p99_ms: milliseconds(0.99),
    }
}

fn print(name: &str, figures: &Figures, baseline: Option<f64>) {
    let ratio = baseline
        .map(|baseline| {
            format!(
                "  ({:.0}% of baseline)",
                100.0 * figures.per_second / baseline
            )
        })
        .unwrap_or_default();
    println!(
        "{name:<34} {:>9.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} ok, {} failed){ratio}",
        figures.per_second, figures.p50_ms, figures.p99_ms, figures.operations, figures.failures
    );
}

/// Runs `operation` from `clients` tasks for `duration`; each task passes its index and a
/// counter to the operation.
async fn load<F, Fut>(clients: usize, duration: Duration, operation: F) -> (Samples, Duration)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let operation = Arc::new(operation);
    let samples = Arc::new(Mutex::new(Samples::default()));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let operation = Arc::clone(&operation);
            let samples = Arc::clone(&samples);
            tokio::spawn(async move {
                let mut local = Samples::default();
                let mut counter = 0;
                while Instant::now() < deadline {
                    let begun = Instant::now();
                    match operation(client, counter).await {
                        Ok(()) => local.latencies_us.push(begun.elapsed().as_micros() as u64),
                        Err(_) => local.failures += 1,
                    }
                    counter += 1;
                }
                let mut shared = samples.lock().await;
                shared.latencies_us.extend(local.latencies_us);
                shared.failures += local.failures;
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();
    let samples = std::mem::take(&mut *samples.lock().await);
    (samples, elapsed)
}

/// How often the projection lag is read while commands run.
const LAG_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The worst lag among the live projections at each sample: positions and milliseconds.
#[derive(Default)]
struct LagSamples {
    positions: Vec<u64>,
    millis: Vec<u64>,
}

async fn sample_projection_lag(pool: PgPool, duration: Duration) -> LagSamples {
    let mut samples = LagSamples::default();
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        if let Ok(lags) = ledger_projections::projection_lag(&pool).await {
            let positions = lags.iter().map(|lag| lag.positions_behind).max();
            let seconds = lags
                .iter()
                .map(|lag| lag.seconds_behind)
                .fold(0.0, f64::max);
            samples.positions.push(positions.unwrap_or(0));
            samples.millis.push((seconds * 1000.0) as u64);
        }
        tokio::time::sleep(LAG_SAMPLE_EVERY).await;
    }
    samples
}

fn print_lag(mut lag: LagSamples) {
    lag.positions.sort_unstable();
    lag.millis.sort_unstable();
    println!(
        "projection lag under that load, sampled every {} ms: positions behind p50 {} max {}; seconds behind p50 {:.3} max {:.3}",
        LAG_SAMPLE_EVERY.as_millis(),
        percentile(&lag.positions, 0.5),
        percentile(&lag.positions, 1.0),
        percentile(&lag.millis, 0.5) as f64 / 1000.0,
        percentile(&lag.millis, 1.0) as f64 / 1000.0,
    );
}

/// The value at `fraction` (0.5 the median, 1.0 the largest) of sorted samples; 0 if none.
fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    let index = (sorted.len().saturating_sub(1) as f64 * fraction).round() as usize;
    sorted.get(index).copied().unwrap_or(0)
}

fn resident_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}

/// Creates a scratch database beside the ledger's, migrated, and returns its pool and name.
async fn scratch_database(pool: &PgPool, url: &str) -> anyhow::Result<(PgPool, String)> {
    let name = format!("ledger_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(pool)
        .await
        .context("could not create the scratch database (the role needs CREATEDB)")?;
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let scratch = ledger_store::pool_options(crate::database::MAX_CONNECTIONS)
        .connect_with(options.database(&name))
        .await?;
    ledger_store::migrate(&scratch).await?;
    Ok((scratch, name))
}

pub async fn run(
    pool: PgPool,
    url: &str,
    clients: usize,
    seconds: u64,
    store_writers: usize,
) -> anyhow::Result<()> {
    let clients = clients.clamp(1, 1_024);
    let store_writers = store_writers.min(1_024);
    let duration = Duration::from_secs(seconds.clamp(1, 600));
    let (scratch, name) = scratch_database(&pool, url).await?;
    let outcome = measure(scratch.clone(), clients, duration, store_writers).await;
    scratch.close().await;
    // FORCE: the in-process server's log listener has a connection of its own, outside the
    // pool, that may not have noticed the end yet.
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await
        .context("could not drop the scratch database")?;
    outcome
}

async fn measure(
    pool: PgPool,
    clients: usize,
    duration: Duration,
    store_writers: usize,
) -> anyhow::Result<()> {
    let server = serve_in_process(pool.clone()).await?;
    let address = server.address;
    let client = GraphqlClient::new(address, admin_key(&pool, "ledger bench").await?)?;
    println!(
        "ledger bench: {clients} concurrent clients, {}s per phase, client and server in this process",
        duration.as_secs()
    );

    let http = client.http().clone();
    let health = format!("http://{address}/healthz");
    let (samples, elapsed) = load(clients, duration, move |_, _| {
        let http = http.clone();
        let health = health.clone();
        async move {
            http.get(&health).send().await?.error_for_status()?;
            Ok(())
        }
    })
    .await;
    let baseline = figures(samples, elapsed);
    print("baseline: GET /healthz", &baseline, None);

    let ids = Arc::new(Mutex::new(Vec::new()));
    let commands_client = client.clone();
    let created = Arc::clone(&ids);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let lag = tokio::spawn(sample_projection_lag(pool.clone(), duration));
    let (samples, elapsed) = load(clients, duration, move |task, counter| {
        let client = commands_client.clone();
        let created = Arc::clone(&created);
        let run = run.clone();
        async move { lifecycle_step(&client, &created, &run, task, counter).await }
    })
    .await;
    let commands = figures(samples, elapsed);
    print(
        "commands (initiate/authorize/capture)",
        &commands,
        Some(baseline.per_second),
    );
    if let Ok(lag) = lag.await {
        print_lag(lag);
    }

    let ids = Arc::new(ids.lock().await.clone());
    anyhow::ensure!(!ids.is_empty(), "no payment was created; nothing to query");
    let query_client = client.clone();
    let (samples, elapsed) = load(clients, duration, move |task, counter| {
        let client = query_client.clone();
        let ids = Arc::clone(&ids);
        async move {
            let id = &ids[(task * 7919 + counter as usize) % ids.len()];
            client
                .run(
                    "query($id: UUID!) { payment(id: $id) { id status capturedAmount } }",
                    json!({"id": id}),
                )
                .await?;
            Ok(())
        }
    })
    .await;
    print(
        "payment(id) queries",
        &figures(samples, elapsed),
        Some(baseline.per_second),
    );

    let page_client = client.clone();
    let (samples, elapsed) = load(clients, duration, move |_, _| {
        let client = page_client.clone();
        async move {
            client
                .run("{ payments(first: 20) { edges { cursor node { id status } } pageInfo { hasNextPage endCursor } } }", json!({}))
                .await?;
            Ok(())
        }
    })
    .await;
    print(
        "payments page queries (20 a page)",
        &figures(samples, elapsed),
        Some(baseline.per_second),
    );

    if store_writers > 0 {
        let lag = tokio::spawn(sample_projection_lag(pool.clone(), duration));
        let load = super::store_load::run(&pool, store_writers, duration).await?;
        println!(
            "store load: {store_writers} writers, commands straight to the handler: {:>9.0} commands/s ({} ok, {} failed)",
            load.commands as f64 / load.elapsed.as_secs_f64(),
            load.commands,
            load.failures
        );
        if let Ok(lag) = lag.await {
            print_lag(lag);
        }
    }

    if let Some(megabytes) = resident_memory_mb() {
        println!("resident memory of this process (server and client together): {megabytes:.0} MB");
    }
    println!("targets here: commands ≥ 3,000/s with p99 < 50 ms; payment(id) ≥ 10,000/s; memory < 200 MB");
    Ok(())
}

/// Each client walks its own payments through initiate → authorize → capture, one command per
/// call, so every call is one command.
async fn lifecycle_step(
    client: &GraphqlClient,
    created: &Mutex<Vec<String>>,
    run: &str,
    task: usize,
    counter: u64,
) -> anyhow::Result<()> {
    let lifecycle = counter / 3;
    let payment_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{run}-{task}-{lifecycle}").as_bytes(),
    );
    let key = format!("{run}-{task}-{counter}");
    let result_fields = "payment { id status } position";
    match counter % 3 {
        0 => {
            client
                .run(
                    &format!("mutation($input: InitiatePaymentInput!) {{ initiatePayment(input: $input) {{ {result_fields} }} }}"),
                    json!({"input": {"idempotencyKey": key, "paymentId": payment_id, "orderId": format!("bench-{task}-{lifecycle}"),
                           "merchantId": "merchant_bench", "amount": "49.99", "currency": "USD"}}),
                )
                .await?;
            created.lock().await.push(payment_id.to_string());
        }
        1 => {
            client
                .run(
                    &format!("mutation($input: RecordAuthorizationInput!) {{ recordAuthorization(input: $input) {{ {result_fields} }} }}"),
                    json!({"input": {"idempotencyKey": key, "paymentId": payment_id, "outcome": "APPROVED"}}),
                )
                .await?;
        }
        _ => {
            client
                .run(
                    &format!("mutation($input: CapturePaymentInput!) {{ capturePayment(input: $input) {{ {result_fields} }} }}"),
                    json!({"input": {"idempotencyKey": key, "paymentId": payment_id}}),
                )
                .await?;
        }
    }
    Ok(())
}
