//! Benchmark: PaymentIntent confirmations per second with every webhook delivered to a real
//! ledger, beside a baseline measured in the same run (the same load with no webhook
//! endpoint). Each confirmation is one `POST /v1/payment_intents` with `confirm=true`
//! (`pm_card_visa`, automatic capture: three events); the clock stops when every delivery has
//! settled.
//!
//! ```sh
//! LEDGER_STRIPE_WEBHOOK_SECRETS=test:whsec_bench ledger serve --bind 127.0.0.1:8080 &
//! cargo run --release -p ledger-sandbox --example confirmations -- \
//!     http://127.0.0.1:8080/webhooks/stripe whsec_bench [COUNT] [CLIENTS]
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_sandbox::SandboxConfig;
use serde_json::Value;

const KEY: &str = "sk_test_benchmark";

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

    let baseline = run(SandboxConfig::new(&secret)?, count, clients).await?;
    let config = SandboxConfig::new(&secret)?.with_webhook_url(&webhook_url)?;
    let delivered = run(config, count, clients).await?;
    println!("sandbox confirmations, {count} by {clients} clients");
    println!("  baseline (no webhook endpoint): {baseline:>8.0} confirmations/s");
    println!("  webhooks delivered to {webhook_url}: {delivered:>8.0} confirmations/s ({:.0}% of baseline; target >= 1000/s)", 100.0 * delivered / baseline);
    Ok(())
}

/// Confirmations per second, counted until every webhook delivery settled.
async fn run(
    config: SandboxConfig,
    count: usize,
    clients: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
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
