//! The sandbox's own failures (start-up and configuration); what its API answers a client is
//! [`crate::api_error::ApiError`], in Stripe's shape.

/// Why the sandbox could not start or be configured.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("could not listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    #[error("unknown chaos profile `{0}`: expected none, delays, duplicates, reorder, drop-first or hostile")]
    UnknownChaosProfile(String),
    #[error("the webhook secret must start with `whsec_` and hold printable ASCII only")]
    InvalidWebhookSecret,
    #[error("webhook URL `{url}` is not an http(s) URL")]
    InvalidWebhookUrl { url: String },
    #[error("the payout delay is at most {max} days")]
    PayoutDelayTooLong { max: u32 },
    #[error("`{event_type}` is not an event type: give types such as payment_intent.succeeded, or * for all")]
    InvalidEventType { event_type: String },
    #[error("`*` enables every event type: give it alone, not beside other types")]
    WildcardWithOtherEvents,
    #[error("an endpoint needs at least one enabled event type (or * for all)")]
    NoEnabledEvents,
    #[error("at most {max} enabled event types per endpoint")]
    TooManyEnabledEvents { max: usize },
    #[error("at most {max} webhook URLs")]
    TooManyWebhookUrls { max: usize },
    #[error("could not build the webhook client: {0}")]
    Client(reqwest::Error),
    // The scenario runner's (`scenarios`).
    #[error("could not read scenario {path}: {source}")]
    ScenarioUnreadable {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("scenario {path}: {message}")]
    ScenarioInvalid {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("no scenario files (*.toml) found")]
    NoScenarios,
    #[error("at most {max} scenario files at once")]
    TooManyScenarios { max: usize },
}
