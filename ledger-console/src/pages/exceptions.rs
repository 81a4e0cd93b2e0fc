//! The exceptions queue: reconciliation exceptions (open ones by default, filterable by class
//! and state; resolved with a reason through the same command path as the API's
//! `resolveReconciliationException`) and settlement exceptions (captures unsettled past a few
//! days, reserves withheld), with counts per class.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use ledger_api::auth::Permission;
use ledger_api::error::ApiError;
use ledger_api::graphql::mutation::reconciliation::{
    resolve_reconciliation_exception, ResolveReconciliationExceptionInput,
};
use ledger_core::reconciliation::ExceptionClass;
use ledger_projections::read_models::{reconciliation, settlement};
use serde::Deserialize;
use uuid::Uuid;

use super::html;
use super::payments::{money, time};
use crate::current::{Current, Frame};
use crate::error::ConsoleError;
use crate::ConsoleState;

/// Exceptions one page lists at most, per kind.
pub const PAGE_LIMIT: usize = 200;
/// A capture unsettled for longer than this is a settlement exception.
const UNSETTLED_AFTER_DAYS: i32 = 3;
/// The longest resolution reason accepted (the command's own limit applies too).
const MAX_REASON_CHARS: usize = 1000;

#[derive(Deserialize, Default)]
pub struct ExceptionsQuery {
    class: Option<String>,
    state: Option<String>,
}

pub struct ExceptionLine {
    pub id: String,
    pub class: &'static str,
    pub detail: String,
    pub payout_id: String,
    pub payment_id: Option<String>,
    pub report: String,
    pub ledger: String,
    pub found_at: String,
    pub resolution: Option<String>,
}

pub struct SettlementLine {
    pub kind: String,
    pub merchant_id: String,
    pub amount: String,
    pub subject_id: String,
    pub since: String,
}

#[derive(Template)]
#[template(path = "exceptions.html")]
struct ExceptionsPage {
    frame: Frame,
    classes: Vec<&'static str>,
    class: String,
    state: &'static str,
    counts: Vec<(&'static str, usize)>,
    exceptions: Vec<ExceptionLine>,
    may_resolve: bool,
    settlement: Vec<SettlementLine>,
    limit: usize,
}

pub async fn page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<ExceptionsQuery>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadReconciliations, "the exceptions queue")?;
    let class = match query.class.as_deref().unwrap_or("") {
        "" => None,
        text => Some(text.parse::<ExceptionClass>().map_err(|_| {
            ConsoleError::BadInput(format!("{text:?} is not a class of exception"))
        })?),
    };
    let (shown_state, resolved) = match query.state.as_deref().unwrap_or("open") {
        "open" => ("open", Some(false)),
        "resolved" => ("resolved", Some(true)),
        "all" => ("all", None),
        other => {
            return Err(ConsoleError::BadInput(format!(
                "show open, resolved or all exceptions, not {other:?}"
            )))
        }
    };
    let environment = current.principal.environment;
    let filter = reconciliation::ExceptionFilter {
        class,
        resolved,
        ..reconciliation::ExceptionFilter::default()
    };
    let rows = reconciliation::list_exceptions(&state.pool, environment, &filter, None, PAGE_LIMIT)
        .await?;
    let mut counts = BTreeMap::new();
    for row in &rows {
        *counts.entry(row.class.as_str()).or_insert(0) += 1;
    }
    let exceptions = rows
        .iter()
        .map(|row| ExceptionLine {
            id: row.exception_id.to_string(),
            class: row.class.as_str(),
            detail: row.detail.clone(),
            payout_id: row.payout_id.clone().unwrap_or_default(),
            payment_id: row.payment_id.map(|id| id.to_string()),
            report: match (&row.report_gross, &row.report_fee, &row.report_currency) {
                (None, None, _) => String::new(),
                (gross, fee, currency) => format!(
                    "gross {} fee {} {}",
                    gross.as_deref().unwrap_or("–"),
                    fee.as_deref().unwrap_or("–"),
                    currency.as_deref().unwrap_or("").to_uppercase()
                ),
            },
            ledger: match (&row.ledger_amount, &row.ledger_currency) {
                (Some(amount), Some(currency)) => format!(
                    "amount {}{}",
                    money(*amount, currency),
                    row.ledger_fee
                        .map(|fee| format!(", fee {}", money(fee, currency)))
                        .unwrap_or_default()
                ),
                _ => String::new(),
            },
            found_at: time(row.found_at),
            resolution: row.resolved_at.map(|at| {
                format!(
                    "{} by {}: {}",
                    time(at),
                    row.resolved_by.as_deref().unwrap_or("?"),
                    row.resolution_reason.as_deref().unwrap_or("")
                )
            }),
        })
        .collect();
    let settlement = if current.may(Permission::ReadSettlements) {
        settlement::settlement_exceptions(
            &state.pool,
            environment,
            chrono::Utc::now(),
            UNSETTLED_AFTER_DAYS,
            None,
            i64::try_from(PAGE_LIMIT).unwrap_or(0),
        )
        .await?
        .iter()
        .map(|row| SettlementLine {
            kind: row.kind.clone(),
            merchant_id: row.merchant_id.clone(),
            amount: money(row.amount, &row.currency),
            subject_id: row.subject_id.to_string(),
            since: time(row.since),
        })
        .collect()
    } else {
        Vec::new()
    };
    html(&ExceptionsPage {
        frame: current.frame("exceptions"),
        classes: ExceptionClass::ALL
            .iter()
            .map(|class| class.as_str())
            .collect(),
        class: class
            .map(|class| class.as_str().to_owned())
            .unwrap_or_default(),
        state: shown_state,
        counts: counts.into_iter().collect(),
        exceptions,
        may_resolve: current.may(Permission::RunReconciliation),
        settlement,
        limit: PAGE_LIMIT,
    })
}

#[derive(Deserialize)]
pub struct ResolveForm {
    csrf: Option<String>,
    reason: Option<String>,
}

/// Resolves one reconciliation exception with the reason given, through the command handler:
/// the event records the key that signed in as who resolved it.
pub async fn resolve(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.check_csrf(form.csrf.as_deref())?;
    current.require(Permission::RunReconciliation, "how to resolve exceptions")?;
    let exception_id = Uuid::parse_str(&id)
        .map_err(|_| ConsoleError::BadInput(format!("{id:?} is not an exception id")))?;
    let reason = form.reason.unwrap_or_default().trim().to_owned();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ConsoleError::BadInput(format!(
            "say why the exception needs nothing more, in 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    let input = ResolveReconciliationExceptionInput {
        // One resolution per exception: a resubmitted form replays it.
        idempotency_key: format!("console-resolve-{exception_id}"),
        exception_id,
        reason,
    };
    resolve_reconciliation_exception(&state.pool, &state.handler, &current.principal, input)
        .await
        .map_err(|error| match error {
            ApiError::NotFound(message) => ConsoleError::NotFound(message),
            ApiError::Forbidden(message) => ConsoleError::Forbidden(message),
            other => ConsoleError::BadInput(other.to_string()),
        })?;
    Ok(Redirect::to("/console/exceptions?state=resolved").into_response())
}
