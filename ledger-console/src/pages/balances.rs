//! Balances per merchant and currency, now or as of the end of any past day: the merchant's
//! money by where it is (pending, settled, in transit, paid out, reserved) and its journal
//! accounts, from the journal's read model (its running balances now, its postings up to the
//! day's last log position for a past day). Only roles that may read balances (finance,
//! auditor, admin) see it; both tables download as CSV behind the same check.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{NaiveDate, Utc};
use ledger_api::auth::Permission;
use ledger_projections::read_models::journal;
use ledger_projections::rebuild::{balances_as_of, AsOf};
use ledger_projections::ProjectionError;
use serde::Deserialize;

use super::html;
use super::payments::money;
use crate::csv_download::{csv_response, wants_csv};
use crate::current::{Current, Frame};
use crate::error::ConsoleError;
use crate::ConsoleState;

const MAX_MERCHANT_CHARS: usize = 200;

#[derive(Deserialize, Default)]
pub struct BalancesQuery {
    merchant: Option<String>,
    /// `YYYY-MM-DD`: balances at the end of that day (UTC); empty means now.
    as_of: Option<String>,
    /// `summary` or `accounts`, with `format=csv`.
    table: Option<String>,
    format: Option<String>,
}

pub struct BalanceLine {
    pub merchant_id: String,
    pub currency: String,
    pub account: String,
    pub balance: String,
}

pub struct SummaryLine {
    pub currency: String,
    pub pending: String,
    pub settled: String,
    pub in_transit: String,
    pub paid_out: String,
    pub reserved: String,
}

#[derive(Template)]
#[template(path = "balances.html")]
struct BalancesPage {
    frame: Frame,
    merchant: String,
    as_of: String,
    today: String,
    summary: Vec<SummaryLine>,
    lines: Vec<BalanceLine>,
    /// This view's query string, for the CSV links.
    filters: String,
}

pub async fn page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<BalancesQuery>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadBalances, "balances")?;
    let csv = wants_csv(query.format.as_deref())?;
    let merchant = query.merchant.unwrap_or_default().trim().to_owned();
    if merchant.chars().count() > MAX_MERCHANT_CHARS {
        return Err(ConsoleError::BadInput(format!(
            "a merchant id has at most {MAX_MERCHANT_CHARS} characters"
        )));
    }
    let today = Utc::now().date_naive();
    let as_of = match query.as_of.as_deref().map(str::trim).unwrap_or("") {
        "" => None,
        text => {
            let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                ConsoleError::BadInput(format!("{text:?} is not a date (YYYY-MM-DD)"))
            })?;
            if day > today {
                return Err(ConsoleError::BadInput(format!(
                    "{day} has not happened yet: choose today or a past day"
                )));
            }
            Some(day)
        }
    };
    // One merchant at a time: the whole table could be any size.
    let balances = match (merchant.is_empty(), as_of) {
        (true, _) => Vec::new(),
        (false, None) => {
            journal::balances(&state.pool, current.principal.environment, Some(&merchant)).await?
        }
        (false, Some(day)) => {
            // Everything recorded up to the day's end (UTC): the last instant before the next.
            let end = day
                .succ_opt()
                .and_then(|next| next.and_hms_opt(0, 0, 0))
                .map(|midnight| midnight.and_utc() - chrono::Duration::microseconds(1))
                .ok_or_else(|| ConsoleError::BadInput(format!("{day} is out of range")))?;
            balances_as_of(
                &state.pool,
                current.principal.environment,
                Some(&merchant),
                AsOf::Time(end),
            )
            .await
            .map_err(|error| match error {
                ProjectionError::NotYetProjected { .. } => ConsoleError::BadInput(
                    "the journal has not reached that day's end yet: try again in a moment".into(),
                ),
                other => other.into(),
            })?
        }
    };
    let summary: Vec<SummaryLine> = journal::merchant_summary(&balances)
        .into_iter()
        .map(|row| SummaryLine {
            pending: money(row.pending, &row.currency),
            settled: money(row.settled, &row.currency),
            in_transit: money(row.in_transit, &row.currency),
            paid_out: money(row.paid_out, &row.currency),
            reserved: money(row.reserved, &row.currency),
            currency: row.currency,
        })
        .collect();
    let lines: Vec<BalanceLine> = balances
        .iter()
        .map(|balance| BalanceLine {
            merchant_id: balance.merchant_id.clone(),
            currency: balance.currency.clone(),
            account: balance.account.to_string(),
            balance: balance.balance.to_string(),
        })
        .collect();
    let as_of = as_of.map(|day| day.to_string()).unwrap_or_default();
    if csv {
        let day = if as_of.is_empty() {
            "now"
        } else {
            as_of.as_str()
        };
        return match query.table.as_deref().unwrap_or("") {
            "summary" => csv_response(
                &format!("balances-{}-{day}.csv", file_safe(&merchant)),
                &[
                    "merchant",
                    "currency",
                    "pending",
                    "settled",
                    "in_transit",
                    "paid_out",
                    "reserved",
                ],
                summary.into_iter().map(|line| {
                    vec![
                        merchant.clone(),
                        line.currency,
                        line.pending,
                        line.settled,
                        line.in_transit,
                        line.paid_out,
                        line.reserved,
                    ]
                }),
            ),
            "accounts" => csv_response(
                &format!("journal-accounts-{}-{day}.csv", file_safe(&merchant)),
                &["merchant", "currency", "account", "balance"],
                lines
                    .into_iter()
                    .map(|line| vec![line.merchant_id, line.currency, line.account, line.balance]),
            ),
            other => Err(ConsoleError::BadInput(format!(
                "download the summary or the accounts, not {other:?}"
            ))),
        };
    }
    let filters = super::exceptions::query_string(&[
        ("merchant", merchant.clone()),
        ("as_of", as_of.clone()),
    ]);
    html(&BalancesPage {
        frame: current.frame("balances"),
        merchant,
        as_of,
        today: today.to_string(),
        summary,
        lines,
        filters,
    })
}

/// A merchant id as part of a download's file name: letters, digits, `-` and `_` only.
fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}
