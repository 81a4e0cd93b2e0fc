//! `ledger sandbox`: the local Stripe-compatible test gateway (the `ledger-sandbox` crate),
//! until Ctrl-C. It touches no database: main answers it before opening one.

use std::net::SocketAddr;

use anyhow::Context as _;
use ledger_sandbox::{Chaos, EnabledEvents, SandboxConfig};
use ledger_stripe::gateway::handled_event_types;

/// `--webhook-events`: `ledger` names the types the ledger maps, anything else is Stripe's
/// `enabled_events` as a comma-separated list.
pub fn enabled_events(text: &str) -> anyhow::Result<EnabledEvents> {
    let parsed = if text.trim() == "ledger" {
        EnabledEvents::parse(handled_event_types())
    } else {
        EnabledEvents::parse(text.split(','))
    };
    parsed.context("--webhook-events")
}

pub async fn run(
    bind: SocketAddr,
    webhook_urls: Vec<String>,
    webhook_events: &str,
    webhook_secret: Option<String>,
    chaos: Chaos,
    seed: Option<u64>,
    payout_delay_days: u32,
) -> anyhow::Result<()> {
    let seed = seed.unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let secret = webhook_secret.unwrap_or_else(|| {
        format!(
            "whsec_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    });
    let enabled = enabled_events(webhook_events)?;
    let mut config = SandboxConfig::new(&secret).context("--webhook-secret")?;
    for url in &webhook_urls {
        config = config
            .with_webhook_endpoint(url, enabled.clone())
            .context("--webhook-url")?;
    }
    config.chaos = chaos;
    config.seed = seed;
    config = config
        .with_payout_delay_days(payout_delay_days)
        .context("--payout-delay-days")?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("could not listen on {bind}"))?;
    let address = listener.local_addr().context("the bound address")?;
    println!("ledger sandbox: Stripe's API at http://{address} (test keys only: sk_test_…)");
    println!("seed {seed} (--seed {seed} replays this run's ids and chaos)");
    if webhook_urls.is_empty() {
        println!("webhooks: no --webhook-url; events are kept for GET /v1/events");
    } else {
        println!(
            "webhooks: {} to {} signed with {secret} (the ledger takes it as LEDGER_STRIPE_WEBHOOK_SECRETS=test:{secret}); chaos {chaos}",
            describe(&enabled),
            webhook_urls.join(", ")
        );
    }
    println!("Ctrl-C stops");
    ledger_sandbox::serve(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("the sandbox failed")
}

fn describe(enabled: &EnabledEvents) -> String {
    match enabled {
        EnabledEvents::All => "every event".to_owned(),
        EnabledEvents::Only(types) => format!(
            "{} event types ({})",
            types.len(),
            types
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
