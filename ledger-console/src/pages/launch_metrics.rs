//! Launch metrics of one merchant, per day (UTC) and currency, from the metrics read model
//! (`projection_merchant_daily_metrics`, `projection_merchant_daily_declines`) and the
//! settlement read model (batches and their payouts): authorization rate, declines by the
//! playbook's failure categories (each stored decline code looked up in
//! `ledger_core::playbook`, so page and playbook cannot disagree), capture, refund and dispute rates, time from capture to settlement
//! and from settlement to payout, payout status. Charts for one currency at a time, each
//! beside the tables (all currencies) they are drawn from; every table is a CSV download.
//!
//! Who sees it: the roles that may read merchant metrics in the API
//! (`Permission::ReadBalances`: finance, auditor, admin).

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{Duration, NaiveDate, Utc};
use ledger_api::auth::Permission;
use ledger_core::playbook::{self, FailureCategory};
use ledger_projections::read_models::metrics::{
    self, DailyDeclines, DailyMetrics, NO_DECLINE_CODE,
};
use ledger_projections::read_models::settlement::{self, DailyPayouts};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::html;
use super::webhook_health::{one_decimal, percent, plot};
use crate::charts::{bar_chart, line_chart, Chart, Series};
use crate::csv_download::{csv_response, wants_csv};
use crate::current::{Current, Frame};
use crate::error::ConsoleError;
use crate::ConsoleState;

const MAX_MERCHANT_CHARS: usize = 200;
/// Days shown unless asked otherwise, and the most one page shows.
pub const DEFAULT_DAYS: i64 = 30;
pub const MAX_DAYS: i64 = 92;
/// How a batch without a payout yet is named in the payout status table.
const NO_PAYOUT: &str = "NOT_PAID_OUT";

#[derive(Deserialize, Default)]
pub struct MetricsQuery {
    merchant: Option<String>,
    currency: Option<String>,
    days: Option<String>,
    /// The last day shown (`YYYY-MM-DD`, UTC); today when absent.
    to: Option<String>,
    format: Option<String>,
    table: Option<String>,
}

/// One day and currency of the merchant, as the table shows it.
pub struct DayLine {
    pub day: String,
    pub currency: String,
    pub initiated: i64,
    pub approved: i64,
    pub declined: i64,
    pub authorization_percent: Option<Decimal>,
    pub captures: i64,
    pub capture_percent: Option<Decimal>,
    pub refunds: i64,
    pub refund_percent: Option<Decimal>,
    pub disputes: i64,
    pub dispute_percent: Option<Decimal>,
    pub settled: i64,
    pub settlement_hours: Option<Decimal>,
}

impl DayLine {
    fn of(row: &DailyMetrics) -> DayLine {
        DayLine {
            day: row.day.to_string(),
            currency: row.currency.clone(),
            initiated: row.payments_initiated,
            approved: row.authorizations_approved,
            declined: row.authorizations_declined,
            authorization_percent: percent(
                row.authorizations_approved,
                row.authorizations_approved + row.authorizations_declined,
            ),
            captures: row.captures,
            capture_percent: percent(row.captures, row.authorizations_approved),
            refunds: row.refunds_succeeded,
            refund_percent: percent(row.refunds_succeeded, row.captures),
            disputes: row.disputes_opened,
            dispute_percent: percent(row.disputes_opened, row.captures),
            settled: row.settled_captures,
            settlement_hours: hours(row.settlement_seconds_total, row.settled_captures),
        }
    }

    fn csv_row(&self) -> Vec<String> {
        vec![
            self.day.clone(),
            self.currency.clone(),
            self.initiated.to_string(),
            self.approved.to_string(),
            self.declined.to_string(),
            text(self.authorization_percent),
            self.captures.to_string(),
            text(self.capture_percent),
            self.refunds.to_string(),
            text(self.refund_percent),
            self.disputes.to_string(),
            text(self.dispute_percent),
            self.settled.to_string(),
            text(self.settlement_hours),
        ]
    }
}

const DAILY_HEADER: [&str; 14] = [
    "day",
    "currency",
    "payments_initiated",
    "authorizations_approved",
    "authorizations_declined",
    "authorization_percent",
    "captures",
    "capture_percent",
    "refunds_succeeded",
    "refund_percent",
    "disputes_opened",
    "dispute_percent",
    "settled_captures",
    "mean_hours_capture_to_settlement",
];

pub struct DeclineLine {
    pub day: String,
    /// The playbook's failure category of the code.
    pub category: &'static str,
    pub code: String,
    /// Hard, soft or processing: whether a retry may help.
    pub decline: &'static str,
    pub declines: i64,
}

/// The playbook's failure category of a stored decline code (a decline without a code is the
/// generic decline's).
fn failure_category(code: &str) -> FailureCategory {
    let code = (code != NO_DECLINE_CODE).then_some(code);
    playbook::advice_or_fallback(code).category
}

pub struct PayoutLine {
    pub day: String,
    pub currency: String,
    pub status: &'static str,
    pub batches: i64,
    pub paid: i64,
    pub payout_hours: Option<Decimal>,
}

impl PayoutLine {
    fn of(row: &DailyPayouts) -> PayoutLine {
        PayoutLine {
            day: row.day.to_string(),
            currency: row.currency.clone(),
            status: row
                .payout_status
                .map_or(NO_PAYOUT, |status| status.as_str()),
            batches: row.batches,
            paid: row.paid,
            payout_hours: hours(row.paid_seconds_total, row.paid),
        }
    }
}

/// Mean hours of `seconds` over `count`, to one decimal; none of nothing.
fn hours(seconds: i64, count: i64) -> Option<Decimal> {
    (count > 0)
        .then(|| one_decimal(Decimal::from(seconds) / Decimal::from(count) / Decimal::from(3600)))
}

fn text(value: Option<Decimal>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "launch_metrics.html")]
struct MetricsPage {
    frame: Frame,
    merchant: String,
    days: i64,
    from: String,
    to: String,
    currencies: Vec<String>,
    currency: String,
    daily: Vec<DayLine>,
    declines: Vec<DeclineLine>,
    decline_totals: Vec<(&'static str, i64)>,
    payouts: Vec<PayoutLine>,
    charts: Vec<(&'static str, String)>,
    csv_base: String,
}

fn bad(message: String) -> ConsoleError {
    ConsoleError::BadInput(message)
}

pub async fn page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<MetricsQuery>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadBalances, "launch metrics")?;
    let merchant = query.merchant.unwrap_or_default().trim().to_owned();
    if merchant.chars().count() > MAX_MERCHANT_CHARS {
        return Err(bad(format!(
            "a merchant id has at most {MAX_MERCHANT_CHARS} characters"
        )));
    }
    let days = match query.days.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_DAYS,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|days| (1..=MAX_DAYS).contains(days))
            .ok_or_else(|| bad(format!("show 1 to {MAX_DAYS} days, not {text:?}")))?,
    };
    let to = match query.to.as_deref().map(str::trim) {
        None | Some("") => Utc::now().date_naive(),
        Some(text) => text
            .parse::<NaiveDate>()
            .map_err(|_| bad(format!("{text:?} is not a day (YYYY-MM-DD)")))?,
    };
    let from = to
        .checked_sub_signed(Duration::days(days - 1))
        .ok_or_else(|| bad(format!("{to} is too early a day")))?;
    let frame = current.frame("launch-metrics");
    if merchant.is_empty() {
        return html(&MetricsPage {
            frame,
            merchant,
            days,
            from: from.to_string(),
            to: to.to_string(),
            currencies: Vec::new(),
            currency: String::new(),
            daily: Vec::new(),
            declines: Vec::new(),
            decline_totals: Vec::new(),
            payouts: Vec::new(),
            charts: Vec::new(),
            csv_base: String::new(),
        });
    }
    let environment = current.principal.environment;
    let pool = &state.pool;
    let daily_rows = metrics::merchant_metrics(pool, environment, &merchant, from, to).await?;
    let decline_rows = metrics::daily_decline_codes(pool, environment, &merchant, from, to).await?;
    let payout_rows = settlement::daily_payouts(pool, environment, &merchant, from, to).await?;

    let daily: Vec<DayLine> = daily_rows.iter().map(DayLine::of).collect();
    let declines: Vec<DeclineLine> = decline_rows
        .iter()
        .map(|row| DeclineLine {
            day: row.day.to_string(),
            category: failure_category(&row.decline_code).as_str(),
            code: row.decline_code.clone(),
            decline: row.category.as_str(),
            declines: row.declines,
        })
        .collect();
    let payouts: Vec<PayoutLine> = payout_rows.iter().map(PayoutLine::of).collect();

    if wants_csv(query.format.as_deref())? {
        return match query.table.as_deref().unwrap_or("daily") {
            "daily" => csv_response(
                "launch-metrics-daily.csv",
                &DAILY_HEADER,
                daily.iter().map(DayLine::csv_row),
            ),
            "declines" => csv_response(
                "launch-metrics-declines.csv",
                &[
                    "day",
                    "failure_category",
                    "decline_code",
                    "decline_category",
                    "declines",
                ],
                declines.iter().map(|line| {
                    vec![
                        line.day.clone(),
                        line.category.to_owned(),
                        line.code.clone(),
                        line.decline.to_owned(),
                        line.declines.to_string(),
                    ]
                }),
            ),
            "payouts" => csv_response(
                "launch-metrics-payouts.csv",
                &[
                    "day",
                    "currency",
                    "payout_status",
                    "batches",
                    "paid",
                    "mean_hours_settlement_to_payout",
                ],
                payouts.iter().map(|line| {
                    vec![
                        line.day.clone(),
                        line.currency.clone(),
                        line.status.to_owned(),
                        line.batches.to_string(),
                        line.paid.to_string(),
                        text(line.payout_hours),
                    ]
                }),
            ),
            other => Err(bad(format!(
                "the tables are daily, declines and payouts, not {other:?}"
            ))),
        };
    }

    let currencies: Vec<String> = daily_rows
        .iter()
        .map(|row| row.currency.clone())
        .chain(payout_rows.iter().map(|row| row.currency.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let currency = match query.currency.as_deref().map(str::trim) {
        Some(code) if !code.is_empty() => {
            let code = code.to_uppercase();
            if !currencies.contains(&code) {
                return Err(bad(format!(
                    "{merchant} has no figures in {code:?} in these days"
                )));
            }
            code
        }
        _ => currencies.first().cloned().unwrap_or_default(),
    };
    let charts = draw_charts(
        from,
        days,
        &currency,
        &daily_rows,
        &decline_rows,
        &payout_rows,
    )?;
    let mut decline_totals: BTreeMap<&'static str, i64> = BTreeMap::new();
    for line in &declines {
        *decline_totals.entry(line.category).or_insert(0) += line.declines;
    }
    let csv_base = format!(
        "/console/launch-metrics?merchant={}&days={days}&to={to}&format=csv",
        url::form_urlencoded::byte_serialize(merchant.as_bytes()).collect::<String>()
    );
    html(&MetricsPage {
        frame,
        merchant,
        days,
        from: from.to_string(),
        to: to.to_string(),
        currencies,
        currency,
        daily,
        declines,
        decline_totals: decline_totals.into_iter().collect(),
        payouts,
        charts,
        csv_base,
    })
}

fn draw_charts(
    from: NaiveDate,
    days: i64,
    currency: &str,
    daily: &[DailyMetrics],
    declines: &[DailyDeclines],
    payouts: &[DailyPayouts],
) -> Result<Vec<(&'static str, String)>, ConsoleError> {
    let dates: Vec<NaiveDate> = (0..days).map(|day| from + Duration::days(day)).collect();
    let labels: Vec<String> = dates
        .iter()
        .map(|day| day.format("%m-%d").to_string())
        .collect();
    let of_day = |date: &NaiveDate| {
        daily
            .iter()
            .find(|row| row.day == *date && row.currency == currency)
    };
    let rate = |label: &str, pick: fn(&DailyMetrics) -> Option<Decimal>| Series {
        label: label.to_owned(),
        values: dates
            .iter()
            .map(|date| plot(of_day(date).and_then(pick)))
            .collect(),
    };
    let rates_title = format!("Rates per day, {currency} (%)");
    let rates = line_chart(&Chart {
        title: &rates_title,
        y_label: "%",
        x_labels: &labels,
        series: vec![
            rate("authorization", |row| {
                percent(
                    row.authorizations_approved,
                    row.authorizations_approved + row.authorizations_declined,
                )
            }),
            rate("capture", |row| {
                percent(row.captures, row.authorizations_approved)
            }),
            rate("refund", |row| percent(row.refunds_succeeded, row.captures)),
            rate("dispute", |row| percent(row.disputes_opened, row.captures)),
        ],
        threshold: None,
    })?;
    let categories: BTreeSet<&'static str> = declines
        .iter()
        .map(|row| failure_category(&row.decline_code).as_str())
        .collect();
    let declines_chart = bar_chart(&Chart {
        title: "Declines per day by playbook category (all currencies)",
        y_label: "declines",
        x_labels: &labels,
        series: categories
            .iter()
            .map(|category| Series {
                label: (*category).to_owned(),
                values: dates
                    .iter()
                    .map(|date| {
                        let count: i64 = declines
                            .iter()
                            .filter(|row| {
                                row.day == *date
                                    && failure_category(&row.decline_code).as_str() == *category
                            })
                            .map(|row| row.declines)
                            .sum();
                        (count > 0).then_some(count as f64)
                    })
                    .collect(),
            })
            .collect(),
        threshold: None,
    })?;
    let payouts_of = |date: &NaiveDate| {
        let date = *date;
        payouts
            .iter()
            .filter(move |row| row.day == date && row.currency == currency)
    };
    let times_title = format!("Mean hours per day, {currency}");
    let times = line_chart(&Chart {
        title: &times_title,
        y_label: "hours",
        x_labels: &labels,
        series: vec![
            rate("capture to settlement", |row| {
                hours(row.settlement_seconds_total, row.settled_captures)
            }),
            Series {
                label: "settlement to payout".into(),
                values: dates
                    .iter()
                    .map(|date| {
                        let (seconds, paid) = payouts_of(date).fold((0, 0), |sum, row| {
                            (sum.0 + row.paid_seconds_total, sum.1 + row.paid)
                        });
                        plot(hours(seconds, paid))
                    })
                    .collect(),
            },
        ],
        threshold: None,
    })?;
    let statuses: BTreeSet<&'static str> = payouts
        .iter()
        .filter(|row| row.currency == currency)
        .map(|row| {
            row.payout_status
                .map_or(NO_PAYOUT, |status| status.as_str())
        })
        .collect();
    let status_title = format!("Settlement batches per day by payout status, {currency}");
    let status_chart = bar_chart(&Chart {
        title: &status_title,
        y_label: "batches",
        x_labels: &labels,
        series: statuses
            .iter()
            .map(|status| Series {
                label: (*status).to_owned(),
                values: dates
                    .iter()
                    .map(|date| {
                        let count: i64 = payouts_of(date)
                            .filter(|row| {
                                row.payout_status
                                    .map_or(NO_PAYOUT, |status| status.as_str())
                                    == *status
                            })
                            .map(|row| row.batches)
                            .sum();
                        (count > 0).then_some(count as f64)
                    })
                    .collect(),
            })
            .collect(),
        threshold: None,
    })?;
    Ok(vec![
        ("chart-rates", rates),
        ("chart-declines", declines_chart),
        ("chart-times", times),
        ("chart-payouts", status_chart),
    ])
}
