//! Reconciliation: the runs of imported payout reports, newest first (paged), and one run with
//! its payouts' verdicts and its exceptions, the report's side next to the ledger's. Read from
//! the reconciliation read models; each table downloads as CSV (`format=csv`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use ledger_api::auth::Permission;
use ledger_projections::read_models::reconciliation::{self, ExceptionFilter, RunFilter};
use serde::Deserialize;
use uuid::Uuid;

use super::exceptions::{ledger_side, query_string, report_side};
use super::html;
use super::payments::{money, time};
use crate::csv_download::{csv_response, wants_csv};
use crate::current::{Current, Frame};
use crate::error::ConsoleError;
use crate::ConsoleState;

/// Runs, or one run's exceptions, per page.
pub const PAGE_SIZE: usize = 50;
/// Rows one CSV download holds at most (the read model's largest page).
pub const CSV_ROWS: usize = 500;
const MAX_CURSOR_CHARS: usize = 200;

#[derive(Deserialize, Default)]
pub struct PageQuery {
    after: Option<String>,
    format: Option<String>,
}

pub struct RunLine {
    pub id: String,
    pub file_name: String,
    pub status: &'static str,
    pub started_by: String,
    pub started_at: String,
    pub lines: String,
    pub matched_lines: String,
    pub exceptions: i64,
    pub unresolved_exceptions: i64,
    pub payouts_proven: i64,
    pub payouts_unproven: i64,
}

impl From<&reconciliation::ReconciliationRunRow> for RunLine {
    fn from(row: &reconciliation::ReconciliationRunRow) -> Self {
        let count = |value: Option<i64>| value.map(|value| value.to_string()).unwrap_or_default();
        RunLine {
            id: row.run_id.to_string(),
            file_name: row.file_name.clone().unwrap_or_default(),
            status: row.status.as_str(),
            started_by: row.started_by.clone(),
            started_at: time(row.started_at),
            lines: count(row.lines),
            matched_lines: count(row.matched_lines),
            exceptions: row.exceptions,
            unresolved_exceptions: row.unresolved_exceptions,
            payouts_proven: row.payouts_proven,
            payouts_unproven: row.payouts_unproven,
        }
    }
}

impl RunLine {
    fn cells(self) -> Vec<String> {
        vec![
            self.id,
            self.file_name,
            self.status.to_owned(),
            self.started_by,
            self.started_at,
            self.lines,
            self.matched_lines,
            self.exceptions.to_string(),
            self.unresolved_exceptions.to_string(),
            self.payouts_proven.to_string(),
            self.payouts_unproven.to_string(),
        ]
    }
}

const RUN_COLUMNS: [&str; 11] = [
    "run",
    "file",
    "status",
    "started_by",
    "started_at",
    "lines",
    "matched_lines",
    "exceptions",
    "unresolved_exceptions",
    "payouts_proven",
    "payouts_unproven",
];

#[derive(Template)]
#[template(path = "reconciliation.html")]
struct RunsPage {
    frame: Frame,
    runs: Vec<RunLine>,
    next: Option<String>,
}

fn bad_cursor() -> ConsoleError {
    ConsoleError::BadInput("that page link is not one the console made".into())
}

fn checked_cursor(after: Option<String>) -> Result<Option<String>, ConsoleError> {
    match after.filter(|after| !after.is_empty()) {
        Some(after) if after.len() > MAX_CURSOR_CHARS => Err(bad_cursor()),
        other => Ok(other),
    }
}

/// `/console/reconciliation`: the runs, newest first.
pub async fn runs(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadReconciliations, "reconciliation runs")?;
    let csv = wants_csv(query.format.as_deref())?;
    let after = match checked_cursor(query.after)? {
        Some(cursor) => {
            let (at, id) = cursor.split_once('~').ok_or_else(bad_cursor)?;
            Some((
                DateTime::parse_from_rfc3339(at)
                    .map_err(|_| bad_cursor())?
                    .with_timezone(&Utc),
                Uuid::parse_str(id).map_err(|_| bad_cursor())?,
            ))
        }
        None => None,
    };
    let size = if csv { CSV_ROWS } else { PAGE_SIZE };
    let mut rows = reconciliation::list_runs(
        &state.pool,
        current.principal.environment,
        &RunFilter::default(),
        after,
        size + 1,
    )
    .await?;
    let more = rows.len() > size;
    rows.truncate(size);
    if csv {
        return csv_response(
            "reconciliation-runs.csv",
            &RUN_COLUMNS,
            rows.iter().map(|row| RunLine::from(row).cells()),
        );
    }
    let next = more.then(|| rows.last()).flatten().map(|row| {
        let cursor = format!("{}~{}", row.started_at.to_rfc3339(), row.run_id);
        format!(
            "/console/reconciliation?{}",
            query_string(&[("after", cursor)])
        )
    });
    html(&RunsPage {
        frame: current.frame("reconciliation"),
        runs: rows.iter().map(RunLine::from).collect(),
        next,
    })
}

pub struct VerdictLine {
    pub payout_id: String,
    pub batch_id: String,
    pub outcome: &'static str,
    pub line_count: i64,
    pub exception_count: i64,
    pub gross: String,
    pub fees: String,
    pub net: String,
    pub ledger_amount: String,
    pub batch_recorded: bool,
}

pub struct SideBySide {
    pub id: String,
    pub class: &'static str,
    pub detail: String,
    pub line_number: String,
    pub payout_id: String,
    pub payment_id: Option<String>,
    pub item: String,
    pub report: String,
    pub ledger: String,
    pub resolution: String,
}

#[derive(Template)]
#[template(path = "reconciliation_run.html")]
struct RunPage {
    frame: Frame,
    run: RunLine,
    file_sha256: String,
    payouts: Vec<VerdictLine>,
    exceptions: Vec<SideBySide>,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct RunQuery {
    after: Option<String>,
    /// `payouts` or `exceptions`, with `format=csv`.
    table: Option<String>,
    format: Option<String>,
}

/// `/console/reconciliation/{run}`: one run, its payouts' verdicts and its exceptions.
pub async fn run(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadReconciliations, "reconciliation runs")?;
    let csv = wants_csv(query.format.as_deref())?;
    let run_id = Uuid::parse_str(&id)
        .map_err(|_| ConsoleError::BadInput(format!("{id:?} is not a run id (a UUID)")))?;
    let environment = current.principal.environment;
    let run = reconciliation::run(&state.pool, environment, run_id)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("no run {run_id} in this environment")))?;
    let after = match checked_cursor(query.after)? {
        Some(cursor) => {
            let (position, ordinal) = cursor.split_once(':').ok_or_else(bad_cursor)?;
            Some((
                position.parse().map_err(|_| bad_cursor())?,
                ordinal.parse().map_err(|_| bad_cursor())?,
            ))
        }
        None => None,
    };
    let size = if csv { CSV_ROWS } else { PAGE_SIZE };
    // A run judges as many payouts as its report has (a handful a day): all of them.
    let payouts: Vec<VerdictLine> = reconciliation::payouts_of(&state.pool, environment, &[run_id])
        .await?
        .iter()
        .map(|payout| VerdictLine {
            payout_id: payout.payout_id.clone(),
            batch_id: payout.batch_id.to_string(),
            outcome: payout.outcome.as_str(),
            line_count: payout.line_count,
            exception_count: payout.exception_count,
            gross: money(payout.gross, &payout.currency),
            fees: money(payout.fees, &payout.currency),
            net: money(payout.net, &payout.currency),
            ledger_amount: payout
                .ledger_amount
                .map(|amount| money(amount, &payout.currency))
                .unwrap_or_default(),
            batch_recorded: payout.batch_recorded,
        })
        .collect();
    let filter = ExceptionFilter {
        run_id: Some(run_id),
        ..ExceptionFilter::default()
    };
    let mut rows =
        reconciliation::list_exceptions(&state.pool, environment, &filter, after, size + 1).await?;
    let more = rows.len() > size;
    rows.truncate(size);
    let exceptions: Vec<SideBySide> = rows
        .iter()
        .map(|row| SideBySide {
            id: row.exception_id.to_string(),
            class: row.class.as_str(),
            detail: row.detail.clone(),
            line_number: row
                .line_number
                .map(|line| line.to_string())
                .unwrap_or_default(),
            payout_id: row.payout_id.clone().unwrap_or_default(),
            payment_id: row.payment_id.map(|id| id.to_string()),
            item: match (&row.item_kind, &row.item_id) {
                (Some(kind), Some(item)) => format!("{} {item}", kind.as_str()),
                _ => String::new(),
            },
            report: report_side(row),
            ledger: ledger_side(row),
            resolution: row
                .resolved_at
                .map(|at| {
                    format!(
                        "{} by {}: {}",
                        time(at),
                        row.resolved_by.as_deref().unwrap_or("?"),
                        row.resolution_reason.as_deref().unwrap_or("")
                    )
                })
                .unwrap_or_default(),
        })
        .collect();
    if csv {
        return match query.table.as_deref().unwrap_or("") {
            "payouts" => csv_response(
                &format!("reconciliation-{run_id}-payouts.csv"),
                &[
                    "payout",
                    "batch",
                    "verdict",
                    "lines",
                    "exceptions",
                    "gross",
                    "fees",
                    "net",
                    "ledger_amount",
                    "batch_recorded",
                ],
                payouts.into_iter().map(|line| {
                    vec![
                        line.payout_id,
                        line.batch_id,
                        line.outcome.to_owned(),
                        line.line_count.to_string(),
                        line.exception_count.to_string(),
                        line.gross,
                        line.fees,
                        line.net,
                        line.ledger_amount,
                        line.batch_recorded.to_string(),
                    ]
                }),
            ),
            "exceptions" => csv_response(
                &format!("reconciliation-{run_id}-exceptions.csv"),
                &[
                    "exception",
                    "class",
                    "detail",
                    "line",
                    "payout",
                    "payment",
                    "item",
                    "report",
                    "ledger",
                    "resolution",
                ],
                exceptions.into_iter().map(|line| {
                    vec![
                        line.id,
                        line.class.to_owned(),
                        line.detail,
                        line.line_number,
                        line.payout_id,
                        line.payment_id.unwrap_or_default(),
                        line.item,
                        line.report,
                        line.ledger,
                        line.resolution,
                    ]
                }),
            ),
            other => Err(ConsoleError::BadInput(format!(
                "download the run's payouts or exceptions, not {other:?}"
            ))),
        };
    }
    let next = more.then(|| rows.last()).flatten().map(|row| {
        format!(
            "/console/reconciliation/{run_id}?{}",
            query_string(&[("after", format!("{}:{}", row.found_position, row.ordinal))])
        )
    });
    html(&RunPage {
        frame: current.frame("reconciliation"),
        file_sha256: run.file_sha256.clone(),
        run: RunLine::from(&run),
        payouts,
        exceptions,
        next,
    })
}
