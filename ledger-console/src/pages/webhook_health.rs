//! Webhook health: how Stripe's deliveries fared per hour (the last 48) or per day (the last
//! 14), from `webhook_deliveries` and `webhook_parked` (ledger-stripe's `webhooks::health`):
//! success rate, duplicates and redeliveries, processing time, what is still parked; charts
//! drawn on the server, each beside its table, which is also a CSV download.
//!
//! Values past a threshold stand out (a warning sign and the `alert` class, not colour alone).
//! The thresholds are the constants below, printed on the page so nobody has to guess them.
//! Who sees it: the roles that may read webhook deliveries in the API
//! (`Permission::ReadOrdersAndDisputes`: support, finance, auditor, admin).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Duration, DurationRound, Utc};
use ledger_api::auth::Permission;
use ledger_stripe::webhooks::health::{self, HealthBucket};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::html;
use crate::charts::{bar_chart, line_chart, Chart, Series};
use crate::csv_download::{csv_response, wants_csv};
use crate::current::{Current, Frame};
use crate::error::ConsoleError;
use crate::ConsoleState;

/// A bucket whose share of events that reached a final outcome is below this stands out.
pub const MIN_SUCCESS_PERCENT: i64 = 99;
/// A bucket whose mean time from receipt to outcome is above this stands out.
pub const MAX_MEAN_PROCESSING_MS: i64 = 1_000;
/// A bucket with more redeliveries than this share of its events stands out (Stripe resends
/// what it did not see answered in time).
pub const MAX_REDELIVERY_PERCENT: i64 = 5;
/// Any conflict, rejection or expiry stands out: each waits for a person.
pub const MAX_FAILED: i64 = 0;
/// The parked backlog stands out when its oldest event has waited longer than this.
pub const MAX_PARKED_MINUTES: i64 = 60;

#[derive(Deserialize, Default)]
pub struct HealthQuery {
    by: Option<String>,
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    fn parse(text: Option<&str>) -> Result<Granularity, ConsoleError> {
        match text.unwrap_or("hour") {
            "hour" => Ok(Granularity::Hour),
            "day" => Ok(Granularity::Day),
            other => Err(ConsoleError::BadInput(format!(
                "show webhook health by hour or day, not {other:?}"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    fn step(self) -> Duration {
        match self {
            Granularity::Hour => Duration::hours(1),
            Granularity::Day => Duration::days(1),
        }
    }

    /// How many buckets the page shows, the current one included.
    fn buckets(self) -> i32 {
        match self {
            Granularity::Hour => 48,
            Granularity::Day => 14,
        }
    }

    fn label(self, start: DateTime<Utc>) -> String {
        match self {
            Granularity::Hour => start.format("%Y-%m-%d %H:00").to_string(),
            Granularity::Day => start.format("%Y-%m-%d").to_string(),
        }
    }
}

/// One bucket as the table shows it; `*_alert` marks a value past its threshold.
pub struct HealthLine {
    pub label: String,
    pub events: i64,
    pub succeeded: i64,
    pub success_percent: Option<Decimal>,
    pub success_alert: bool,
    pub duplicates: i64,
    pub redeliveries: i64,
    pub redelivery_alert: bool,
    pub parked: i64,
    pub failed: i64,
    pub failed_alert: bool,
    pub mean_processing_ms: Option<i64>,
    pub max_processing_ms: Option<i64>,
    pub processing_alert: bool,
}

impl HealthLine {
    fn of(label: String, bucket: Option<&HealthBucket>) -> HealthLine {
        let Some(bucket) = bucket else {
            return HealthLine {
                label,
                events: 0,
                succeeded: 0,
                success_percent: None,
                success_alert: false,
                duplicates: 0,
                redeliveries: 0,
                redelivery_alert: false,
                parked: 0,
                failed: 0,
                failed_alert: false,
                mean_processing_ms: None,
                max_processing_ms: None,
                processing_alert: false,
            };
        };
        let success_percent = percent(bucket.succeeded, bucket.events);
        HealthLine {
            label,
            events: bucket.events,
            succeeded: bucket.succeeded,
            success_alert: success_percent
                .is_some_and(|value| value < Decimal::from(MIN_SUCCESS_PERCENT)),
            success_percent,
            duplicates: bucket.duplicates,
            redeliveries: bucket.redeliveries,
            redelivery_alert: percent(bucket.redeliveries, bucket.events)
                .is_some_and(|value| value > Decimal::from(MAX_REDELIVERY_PERCENT)),
            parked: bucket.parked,
            failed: bucket.failed,
            failed_alert: bucket.failed > MAX_FAILED,
            mean_processing_ms: Some(bucket.mean_processing_ms),
            max_processing_ms: Some(bucket.max_processing_ms),
            processing_alert: bucket.mean_processing_ms > MAX_MEAN_PROCESSING_MS,
        }
    }

    fn alert(&self) -> bool {
        self.success_alert || self.redelivery_alert || self.failed_alert || self.processing_alert
    }

    fn csv_row(&self) -> Vec<String> {
        let optional = |value: Option<String>| value.unwrap_or_default();
        vec![
            self.label.clone(),
            self.events.to_string(),
            self.succeeded.to_string(),
            optional(self.success_percent.map(|value| value.to_string())),
            self.duplicates.to_string(),
            self.redeliveries.to_string(),
            self.parked.to_string(),
            self.failed.to_string(),
            optional(self.mean_processing_ms.map(|value| value.to_string())),
            optional(self.max_processing_ms.map(|value| value.to_string())),
        ]
    }
}

const CSV_HEADER: [&str; 10] = [
    "bucket_start_utc",
    "events",
    "succeeded",
    "success_percent",
    "duplicates",
    "redeliveries",
    "still_parked",
    "failed",
    "mean_processing_ms",
    "max_processing_ms",
];

/// `part * 100 / whole`, to one decimal; none of nothing.
pub(crate) fn percent(part: i64, whole: i64) -> Option<Decimal> {
    (whole > 0)
        .then(|| one_decimal(Decimal::from(part) * Decimal::from(100) / Decimal::from(whole)))
}

/// Rounded to, and always shown with, one decimal ("75.0", not "75").
pub(crate) fn one_decimal(value: Decimal) -> Decimal {
    let mut value = value.round_dp(1);
    value.rescale(1);
    value
}

pub(crate) fn plot(value: Option<Decimal>) -> Option<f64> {
    value.and_then(|value| value.to_f64())
}

#[derive(Template)]
#[template(path = "webhook_health.html")]
struct HealthPage {
    frame: Frame,
    by: &'static str,
    lines: Vec<HealthLine>,
    alerts: usize,
    parked_count: i64,
    parked_oldest: String,
    parked_alert: bool,
    success_chart: String,
    volume_chart: String,
    processing_chart: String,
    min_success_percent: i64,
    max_mean_processing_ms: i64,
    max_redelivery_percent: i64,
    max_parked_minutes: i64,
}

pub async fn page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<HealthQuery>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadOrdersAndDisputes, "webhook health")?;
    let granularity = Granularity::parse(query.by.as_deref())?;
    let environment = current.principal.environment;
    let now = Utc::now();
    let current_bucket = now
        .duration_trunc(granularity.step())
        .map_err(|error| ConsoleError::Internal(format!("the current bucket: {error}")))?;
    let from = current_bucket - granularity.step() * (granularity.buckets() - 1);
    let buckets = health::delivery_health(
        &state.pool,
        environment,
        from,
        now,
        granularity.step().num_seconds(),
    )
    .await
    .map_err(|error| ConsoleError::Internal(error.to_string()))?;
    let lines: Vec<HealthLine> = (0..granularity.buckets())
        .map(|index| {
            let start = from + granularity.step() * index;
            HealthLine::of(
                granularity.label(start),
                buckets.iter().find(|bucket| bucket.start == start),
            )
        })
        .collect();
    if wants_csv(query.format.as_deref())? {
        return csv_response(
            &format!("webhook-health-by-{}.csv", granularity.as_str()),
            &CSV_HEADER,
            lines.iter().map(HealthLine::csv_row),
        );
    }
    let backlog = health::parked_backlog(&state.pool, environment)
        .await
        .map_err(|error| ConsoleError::Internal(error.to_string()))?;
    let labels: Vec<String> = lines.iter().map(|line| line.label.clone()).collect();
    let success_chart = line_chart(&Chart {
        title: "Delivery success rate (%)",
        y_label: "% reaching a final outcome",
        x_labels: &labels,
        series: vec![Series {
            label: "success rate".into(),
            values: lines
                .iter()
                .map(|line| plot(line.success_percent))
                .collect(),
        }],
        threshold: Some(MIN_SUCCESS_PERCENT as f64),
    })?;
    let counts = |pick: fn(&HealthLine) -> i64| -> Vec<Option<f64>> {
        lines
            .iter()
            .map(|line| (line.events > 0).then(|| pick(line) as f64))
            .collect()
    };
    let volume_chart = bar_chart(&Chart {
        title: "Events, redeliveries, duplicates, still parked, failed",
        y_label: "events",
        x_labels: &labels,
        series: vec![
            Series {
                label: "events".into(),
                values: counts(|line| line.events),
            },
            Series {
                label: "redeliveries".into(),
                values: counts(|line| line.redeliveries),
            },
            Series {
                label: "duplicates".into(),
                values: counts(|line| line.duplicates),
            },
            Series {
                label: "still parked".into(),
                values: counts(|line| line.parked),
            },
            Series {
                label: "failed".into(),
                values: counts(|line| line.failed),
            },
        ],
        threshold: None,
    })?;
    let processing_chart = line_chart(&Chart {
        title: "Processing time, receipt to outcome (ms)",
        y_label: "milliseconds",
        x_labels: &labels,
        series: vec![
            Series {
                label: "mean".into(),
                values: lines
                    .iter()
                    .map(|line| line.mean_processing_ms.map(|value| value as f64))
                    .collect(),
            },
            Series {
                label: "max".into(),
                values: lines
                    .iter()
                    .map(|line| line.max_processing_ms.map(|value| value as f64))
                    .collect(),
            },
        ],
        threshold: Some(MAX_MEAN_PROCESSING_MS as f64),
    })?;
    let parked_alert = backlog
        .oldest_parked_at
        .is_some_and(|oldest| now - oldest > Duration::minutes(MAX_PARKED_MINUTES));
    html(&HealthPage {
        frame: current.frame("webhook-health"),
        by: granularity.as_str(),
        alerts: lines.iter().filter(|line| line.alert()).count(),
        lines,
        parked_count: backlog.count,
        parked_oldest: backlog
            .oldest_parked_at
            .map(super::payments::time)
            .unwrap_or_default(),
        parked_alert,
        success_chart,
        volume_chart,
        processing_chart,
        min_success_percent: MIN_SUCCESS_PERCENT,
        max_mean_processing_ms: MAX_MEAN_PROCESSING_MS,
        max_redelivery_percent: MAX_REDELIVERY_PERCENT,
        max_parked_minutes: MAX_PARKED_MINUTES,
    })
}
