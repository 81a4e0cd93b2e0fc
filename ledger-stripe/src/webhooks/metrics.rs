//! Webhook health in `/metrics`. The names are stable: dashboards and alerts use them.
//!
//! - `ledger_webhook_deliveries_total{outcome}`: every delivery answered, by outcome
//!   (`applied`, `duplicate`, `ignored`, `parked`, `conflict`, `rejected`, `expired`) and `error` for
//!   deliveries the ledger failed to record (answered 5xx, Stripe retries).
//! - `ledger_webhook_rejections_total{code}`: refused deliveries by [`crate::gateway::StripeError`]
//!   code (`no_secret_matched`, `timestamp_outside_tolerance`, …).
//! - `ledger_webhook_parked_retries_total{outcome}`: retries of parked events, by outcome.
//! - `ledger_webhook_parked_expired_total`: parked events given up on after their age limit
//!   (each one's delivery is `expired`; support must look at every one).
//! - `ledger_webhook_processing_seconds`: time from the request to the answer (histogram).

use std::time::Duration;

use super::outcome::DeliveryOutcome;

pub const DELIVERIES_TOTAL: &str = "ledger_webhook_deliveries_total";
pub const REJECTIONS_TOTAL: &str = "ledger_webhook_rejections_total";
pub const PARKED_RETRIES_TOTAL: &str = "ledger_webhook_parked_retries_total";
pub const PARKED_EXPIRED_TOTAL: &str = "ledger_webhook_parked_expired_total";
pub const PROCESSING_SECONDS: &str = "ledger_webhook_processing_seconds";

/// The `outcome` label of deliveries that failed with a 5xx.
pub const ERROR_OUTCOME: &str = "error";

/// Registers descriptions with the installed recorder; call once after installing it.
pub fn describe() {
    metrics::describe_counter!(DELIVERIES_TOTAL, "Stripe webhook deliveries by outcome");
    metrics::describe_counter!(
        REJECTIONS_TOTAL,
        "Refused Stripe webhook deliveries by code"
    );
    metrics::describe_counter!(
        PARKED_RETRIES_TOTAL,
        "Retries of parked Stripe events by outcome"
    );
    metrics::describe_counter!(
        PARKED_EXPIRED_TOTAL,
        "Parked Stripe events expired after their age limit, never applied"
    );
    metrics::describe_histogram!(
        PROCESSING_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer a Stripe webhook delivery"
    );
}

pub(super) fn delivery(outcome: DeliveryOutcome, elapsed: Duration) {
    metrics::counter!(DELIVERIES_TOTAL, "outcome" => outcome.as_str()).increment(1);
    metrics::histogram!(PROCESSING_SECONDS).record(elapsed.as_secs_f64());
}

/// A delivery the ledger failed to record (answered 5xx; Stripe delivers it again).
pub(super) fn failure(elapsed: Duration) {
    metrics::counter!(DELIVERIES_TOTAL, "outcome" => ERROR_OUTCOME).increment(1);
    metrics::histogram!(PROCESSING_SECONDS).record(elapsed.as_secs_f64());
}

/// Why a delivery was refused (counted under `outcome="rejected"` too).
pub(super) fn rejection(code: &'static str) {
    metrics::counter!(REJECTIONS_TOTAL, "code" => code).increment(1);
}

pub(super) fn parked_retry(outcome: DeliveryOutcome) {
    metrics::counter!(PARKED_RETRIES_TOTAL, "outcome" => outcome.as_str()).increment(1);
}

/// A parked event expired (see [`crate::gateway::parked`]).
pub(super) fn parked_expired() {
    metrics::counter!(PARKED_EXPIRED_TOTAL).increment(1);
}
