//! The server's configuration from the environment variables of interfaces.md.

use anyhow::Context as _;
use std::time::Duration;

use ledger_api::replicas::ReplicaSettings;
use ledger_api::server::ServerConfig;
use ledger_core::ids::MerchantId;
use ledger_core::payment::RefundApprovalThresholds;
use ledger_stripe::gateway::connect::CONNECTED_ACCOUNTS_VARIABLE;
use ledger_stripe::gateway::secrets::WEBHOOK_SECRETS_VARIABLE;
use ledger_stripe::gateway::{ConnectedAccounts, WebhookSecrets};
use ledger_stripe::webhooks::WebhookConfig;

/// The merchant of gateway events that name none, unless configured otherwise.
pub const DEFAULT_MERCHANT_ID: &str = "default";

/// Reads the server's configuration; a malformed value is an error that names its variable.
pub fn server_config() -> anyhow::Result<ServerConfig> {
    Ok(ServerConfig {
        refund_approval: refund_approval_thresholds()?,
        webhooks: webhook_config()?,
        notify_url_policy: notify_url_policy()?,
        read_replicas: read_replica_settings()?,
        ..ServerConfig::default()
    })
}

/// `LEDGER_REFUND_APPROVAL_THRESHOLDS` (`USD:10000,JPY:1500000,*:10000`); currencies it does
/// not name have [`ledger_core::payment::refund_approval::DEFAULT_REFUND_APPROVAL_THRESHOLD`]
/// major units. The old single-amount variable is refused rather than ignored, so an operator
/// who set it does not silently get the default.
fn refund_approval_thresholds() -> anyhow::Result<RefundApprovalThresholds> {
    if std::env::var_os("LEDGER_REFUND_APPROVAL_THRESHOLD").is_some() {
        anyhow::bail!(
            "LEDGER_REFUND_APPROVAL_THRESHOLD is no longer read: set \
             LEDGER_REFUND_APPROVAL_THRESHOLDS per currency instead (e.g. USD:10000,*:10000)"
        );
    }
    match std::env::var("LEDGER_REFUND_APPROVAL_THRESHOLDS") {
        Ok(text) => RefundApprovalThresholds::parse(&text)
            .context("LEDGER_REFUND_APPROVAL_THRESHOLDS is malformed"),
        Err(_) => Ok(RefundApprovalThresholds::default()),
    }
}

/// The Stripe webhooks' configuration, when `LEDGER_STRIPE_WEBHOOK_SECRETS` sets their
/// secrets. Without secrets no signature could be checked, so the route answers 503.
pub fn webhook_config() -> anyhow::Result<Option<WebhookConfig>> {
    let Ok(secrets) = std::env::var(WEBHOOK_SECRETS_VARIABLE) else {
        tracing::warn!(
            "{WEBHOOK_SECRETS_VARIABLE} is not set: POST /webhooks/stripe answers 503 until it is"
        );
        return Ok(None);
    };
    let secrets = WebhookSecrets::parse(&secrets)
        .with_context(|| format!("{WEBHOOK_SECRETS_VARIABLE} is malformed"))?;
    let merchant = std::env::var("LEDGER_DEFAULT_MERCHANT_ID")
        .unwrap_or_else(|_| DEFAULT_MERCHANT_ID.to_owned());
    let merchant = MerchantId::parse(merchant)
        .context("LEDGER_DEFAULT_MERCHANT_ID is not a valid merchant id")?;
    let mut config = WebhookConfig::new(secrets, merchant);
    if let Ok(accounts) = std::env::var(CONNECTED_ACCOUNTS_VARIABLE) {
        let accounts = ConnectedAccounts::parse(&accounts)
            .with_context(|| format!("{CONNECTED_ACCOUNTS_VARIABLE} is malformed"))?;
        config.connected_accounts = std::sync::Arc::new(accounts);
    }
    Ok(Some(config))
}

/// `LEDGER_NOTIFY_ALLOW_PRIVATE_TARGETS=true` lets live notification endpoints point at
/// private, loopback and link-local addresses (an operator's own network).
fn notify_url_policy() -> anyhow::Result<ledger_notify::UrlPolicy> {
    let allow = match std::env::var("LEDGER_NOTIFY_ALLOW_PRIVATE_TARGETS") {
        Ok(text) => text
            .parse::<bool>()
            .context("LEDGER_NOTIFY_ALLOW_PRIVATE_TARGETS is true or false")?,
        Err(_) => false,
    };
    Ok(ledger_notify::UrlPolicy {
        allow_private_targets: allow,
    })
}

/// The notification sender's options: the defaults (5 s first retry, doubling to an hour,
/// for 3 days), or `LEDGER_NOTIFY_RETRY_BASE_MS` for a faster first retry (tests, demos).
/// How long delivered and failed notification deliveries are kept: `LEDGER_NOTIFY_RETENTION_DAYS`
/// (30 by default, at least 3, the retry window).
pub fn notify_retention() -> anyhow::Result<std::time::Duration> {
    use ledger_notify::retention::{DEFAULT_RETENTION, MIN_RETENTION};
    let Ok(text) = std::env::var("LEDGER_NOTIFY_RETENTION_DAYS") else {
        return Ok(DEFAULT_RETENTION);
    };
    let days: u64 = text
        .parse()
        .context("LEDGER_NOTIFY_RETENTION_DAYS is a whole number of days")?;
    let retention = std::time::Duration::from_secs(days.saturating_mul(24 * 3_600));
    anyhow::ensure!(
        retention >= MIN_RETENTION && days <= 36_500,
        "LEDGER_NOTIFY_RETENTION_DAYS is between 3 (the retry window) and 36500 days"
    );
    Ok(retention)
}

pub fn notify_sender_options() -> anyhow::Result<ledger_notify::SenderOptions> {
    let mut options = ledger_notify::SenderOptions {
        policy: notify_url_policy()?,
        ..ledger_notify::SenderOptions::default()
    };
    if let Ok(text) = std::env::var("LEDGER_NOTIFY_RETRY_BASE_MS") {
        let millis: u64 = text
            .parse()
            .context("LEDGER_NOTIFY_RETRY_BASE_MS is a number of milliseconds")?;
        options.base_backoff = std::time::Duration::from_millis(millis.clamp(1, 3_600_000));
    }
    Ok(options)
}

/// `LEDGER_READ_REPLICA_URLS` (comma-separated standbys) and the bounds of reading from them:
/// `LEDGER_READ_REPLICA_MAX_LAG` (seconds), `LEDGER_READ_REPLICA_WAIT_MS` and
/// `LEDGER_READ_REPLICA_CHECK_INTERVAL_MS`. A malformed URL is refused here, naming the
/// variable, rather than on the first read.
fn read_replica_settings() -> anyhow::Result<ReplicaSettings> {
    let mut settings = ReplicaSettings::default();
    if let Ok(text) = std::env::var("LEDGER_READ_REPLICA_URLS") {
        settings.urls = text
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        for (index, url) in settings.urls.iter().enumerate() {
            url.parse::<sqlx::postgres::PgConnectOptions>()
                .map_err(|_| {
                    anyhow::anyhow!(
                        "LEDGER_READ_REPLICA_URLS: URL number {} is not a PostgreSQL URL",
                        index + 1
                    )
                })?;
        }
    }
    let number = |name: &str, low: u64, high: u64| -> anyhow::Result<Option<u64>> {
        match std::env::var(name) {
            Ok(text) => {
                let value: u64 = text
                    .trim()
                    .parse()
                    .with_context(|| format!("{name} is a whole number"))?;
                anyhow::ensure!(
                    (low..=high).contains(&value),
                    "{name} must be between {low} and {high}"
                );
                Ok(Some(value))
            }
            Err(_) => Ok(None),
        }
    };
    if let Some(seconds) = number("LEDGER_READ_REPLICA_MAX_LAG", 1, 3_600)? {
        settings.max_lag = Duration::from_secs(seconds);
    }
    if let Some(millis) = number("LEDGER_READ_REPLICA_WAIT_MS", 0, 10_000)? {
        settings.replay_wait = Duration::from_millis(millis);
    }
    if let Some(millis) = number("LEDGER_READ_REPLICA_CHECK_INTERVAL_MS", 50, 60_000)? {
        settings.check_interval = Duration::from_millis(millis);
    }
    Ok(settings)
}
