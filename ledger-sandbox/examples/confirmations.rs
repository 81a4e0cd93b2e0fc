//! Benchmark: PaymentIntent confirmations per second with webhooks delivered to a real
//! ledger, beside a baseline measured in the same run (the same load with no webhook
//! endpoint). Each confirmation is one `POST /v1/payment_intents` with `confirm=true`
//! (`pm_card_visa`, automatic capture: three events); the clock stops when every delivery has
//! settled. Measured twice: with an endpoint that enables every event (all three delivered),
//! and with one that enables the types the ledger maps, as its Stripe endpoint should be set
//! up (`charge.succeeded`, which the ledger would only record as ignored, is not sent).
//!
//! ```sh
//! LEDGER_STRIPE_WEBHOOK_SECRETS=test:whsec_bench ledger serve --bind 127.0.0.1:8080 &
//! cargo run --release -p ledger-sandbox --example confirmations -- \
//!     http://127.0.0.1:8080/webhooks/stripe whsec_bench [COUNT] [CLIENTS]
//! ```

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_sandbox::{EnabledEvents, SandboxConfig};
use ledger_stripe::gateway::handled_event_types;
use serde_json::Value;

// The allocator the `ledger` binary uses, so the sandbox costs here what `ledger sandbox` costs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEY: &str = "sk_test_benchmark";

/// The next run's seed; set from the clock at start.
static NEXT_SEED: AtomicU64 = AtomicU64::new(0);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let webhook_url = args
        .next()
        .ok_or("usage: confirmations WEBHOOK_URL WHSEC [COUNT] [CLIENTS]")?;
    let secret = args
        .next()
        .ok_or("the webhook secret (whsec_…) is missing")?;
    let count: usize = args.next().map_or(Ok(5_000), |text| text.parse())?;
    let clients: usize = args.next().map_or(Ok(32), |text| text.parse())?;
    // Seeds of their own for every invocation: with the same seeds, a second invocation
    // against the same ledger sent the ids of the first again, and measured the ledger
    // answering duplicates (about twice as fast) instead of new payments.
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    NEXT_SEED.store(since_epoch.as_nanos() as u64, Ordering::Relaxed);

    let baseline = run(SandboxConfig::new(&secret)?, count, clients).await?;
    let config = SandboxConfig::new(&secret)?.with_webhook_url(&webhook_url)?;
    let every_event = run(config, count, clients).await?;
    let config = SandboxConfig::new(&secret)?
        .with_webhook_endpoint(&webhook_url, EnabledEvents::parse(handled_event_types())?)?;
    let mapped_events = run(config, count, clients).await?;
    println!("sandbox confirmations, {count} by {clients} clients, webhooks to {webhook_url}");
    println!("  baseline (no webhook endpoint): {baseline:>8.0} confirmations/s");
    for (endpoint, rate) in [
        ("every event (3 a confirmation)", every_event),
        ("the ledger's event types (2)", mapped_events),
    ] {
        println!(
            "  endpoint enabling {endpoint}: {rate:>8.0} confirmations/s ({:.0}% of baseline; target >= 1000/s)",
            100.0 * rate / baseline
        );
    }
    Ok(())
}

/// Confirmations per second, counted until every webhook delivery settled.
async fn run(
    mut config: SandboxConfig,
    count: usize,
    clients: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    // Ids and event ids follow from the seed: each run's must be new to the ledger.
    config.seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
    let sandbox = ledger_sandbox::start(config, "127.0.0.1:0".parse()?).await?;
    let base = sandbox.base_url();
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base, next) = (http.clone(), base.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let response = http
                    .post(format!("{base}/v1/payment_intents"))
                    .bearer_auth(KEY)
                    .form(&[
                        ("amount", "1999"),
                        ("currency", "usd"),
                        ("payment_method", "pm_card_visa"),
                        ("confirm", "true"),
                    ])
                    .send()
                    .await?;
                if !response.status().is_success() {
                    return Err(format!("confirmation answered {}", response.status()).into());
                }
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await?.map_err(|error| error.to_string())?;
    }
    loop {
        let stats: Value = http
            .get(format!("{base}/sandbox/webhooks"))
            .bearer_auth(KEY)
            .send()
            .await?
            .json()
            .await?;
        if stats["pending"] == 0 {
            if stats["given_up"] != 0 {
                return Err(format!("deliveries were given up: {stats}").into());
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    sandbox.task.abort();
    Ok(count as f64 / seconds)
}
