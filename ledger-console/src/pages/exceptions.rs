//! The exceptions queue, one section per class of problem, each from its own read model:
//! reconciliation exceptions (open ones by default, by class and state; resolved with a reason
//! through the same command path as the API's `resolveReconciliationException`), settlement
//! exceptions (captures unsettled past a few days, reserves withheld, failed or late payouts),
//! webhook deliveries a person must look at (parked, in conflict, rejected, expired) and
//! disputes whose evidence is due soon. Counts per class head the page; merchant and currency
//! narrow every section that knows them; long lists page by keyset cursor, and each section
//! downloads as CSV (`format=csv`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Duration, Utc};
use ledger_api::auth::Permission;
use ledger_api::error::ApiError;
use ledger_api::graphql::mutation::reconciliation::{
    resolve_reconciliation_exception, ResolveReconciliationExceptionInput,
};
use ledger_core::reconciliation::ExceptionClass;
use ledger_projections::read_models::{disputes, reconciliation, settlement};
use ledger_stripe::webhooks::{
    problem_counts, problem_deliveries, DeliveryOutcome, ProblemFilter, PROBLEM_OUTCOMES,
};
use serde::Deserialize;
use uuid::Uuid;

use super::html;
use super::payments::{money, time};
use crate::csv_download::{csv_response, wants_csv};
use crate::current::{Current, Frame};
use crate::error::ConsoleError;
use crate::ConsoleState;

/// Rows one section shows per page.
pub const PAGE_SIZE: usize = 50;
/// Rows one CSV download holds at most (the read models' largest page).
pub const CSV_ROWS: usize = 500;
/// A capture unsettled for longer than this is a settlement exception.
const UNSETTLED_AFTER_DAYS: i32 = 3;
/// A dispute whose evidence is due within this many days (or overdue) is in the queue.
pub const EVIDENCE_DUE_DAYS: i64 = 7;
/// The longest resolution reason accepted (the command's own limit applies too).
const MAX_REASON_CHARS: usize = 1000;
const MAX_MERCHANT_CHARS: usize = 200;
const MAX_CURSOR_CHARS: usize = 600;

#[derive(Deserialize, Default)]
pub struct ExceptionsQuery {
    kind: Option<String>,
    class: Option<String>,
    state: Option<String>,
    outcome: Option<String>,
    merchant: Option<String>,
    currency: Option<String>,
    after: Option<String>,
    format: Option<String>,
}

/// The sections of the queue; `All` shows the first page of each.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    All,
    Reconciliation,
    Settlement,
    Webhook,
    Dispute,
}

impl Kind {
    fn parse(text: Option<&str>) -> Result<Kind, ConsoleError> {
        match text.unwrap_or("") {
            "" | "all" => Ok(Kind::All),
            "reconciliation" => Ok(Kind::Reconciliation),
            "settlement" => Ok(Kind::Settlement),
            "webhook" => Ok(Kind::Webhook),
            "dispute" => Ok(Kind::Dispute),
            other => Err(ConsoleError::BadInput(format!(
                "show reconciliation, settlement, webhook or dispute exceptions, not {other:?}"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::All => "all",
            Kind::Reconciliation => "reconciliation",
            Kind::Settlement => "settlement",
            Kind::Webhook => "webhook",
            Kind::Dispute => "dispute",
        }
    }

    fn shows(self, section: Kind) -> bool {
        self == Kind::All || self == section
    }
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
    /// The payment, for an unsettled capture.
    pub payment_id: Option<String>,
    pub item_id: String,
    pub since: String,
}

pub struct WebhookLine {
    pub stripe_event_id: String,
    pub event_type: String,
    pub outcome: &'static str,
    pub detail: String,
    pub payment_intent_id: String,
    pub payment_id: Option<String>,
    pub delivery_count: u32,
    pub last_received_at: String,
}

pub struct DisputeLine {
    pub dispute_id: String,
    pub payment_id: String,
    pub merchant_id: String,
    pub amount: String,
    pub reason: String,
    pub evidence_due_by: String,
    pub evidence_count: i32,
}

/// One section's rows and the link to its next page, if there is one.
pub struct Section<T> {
    pub rows: Vec<T>,
    pub next: Option<String>,
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Section {
            rows: Vec::new(),
            next: None,
        }
    }
}

#[derive(Template)]
#[template(path = "exceptions.html")]
struct ExceptionsPage {
    frame: Frame,
    kind: &'static str,
    classes: Vec<&'static str>,
    class: String,
    state: &'static str,
    outcomes: Vec<&'static str>,
    outcome: String,
    merchant: String,
    currency: String,
    counts: Vec<(String, i64)>,
    exceptions: Option<Section<ExceptionLine>>,
    may_resolve: bool,
    settlement: Option<Section<SettlementLine>>,
    webhooks: Option<Section<WebhookLine>>,
    disputes: Option<Section<DisputeLine>>,
    page_size: usize,
    due_days: i64,
    /// The query string of this view without its cursor, for the section links.
    filters: String,
}

/// What the request asks for, checked.
struct Wanted {
    kind: Kind,
    class: Option<ExceptionClass>,
    state: &'static str,
    resolved: Option<bool>,
    outcome: Option<DeliveryOutcome>,
    merchant: Option<String>,
    currency: Option<String>,
    after: Option<String>,
    csv: bool,
}

impl Wanted {
    fn of(query: ExceptionsQuery) -> Result<Wanted, ConsoleError> {
        let kind = Kind::parse(query.kind.as_deref())?;
        let class = match query.class.as_deref().unwrap_or("") {
            "" => None,
            text => Some(text.parse::<ExceptionClass>().map_err(|_| {
                ConsoleError::BadInput(format!("{text:?} is not a class of exception"))
            })?),
        };
        let (state, resolved) = match query.state.as_deref().unwrap_or("open") {
            "" | "open" => ("open", Some(false)),
            "resolved" => ("resolved", Some(true)),
            "all" => ("all", None),
            other => {
                return Err(ConsoleError::BadInput(format!(
                    "show open, resolved or all exceptions, not {other:?}"
                )))
            }
        };
        let outcome = match query.outcome.as_deref().unwrap_or("") {
            "" => None,
            text => Some(
                text.parse::<DeliveryOutcome>()
                    .ok()
                    .filter(|outcome| PROBLEM_OUTCOMES.contains(outcome))
                    .ok_or_else(|| {
                        ConsoleError::BadInput(format!(
                            "{text:?} is not parked, conflict, rejected or expired"
                        ))
                    })?,
            ),
        };
        let merchant = query.merchant.unwrap_or_default().trim().to_owned();
        if merchant.chars().count() > MAX_MERCHANT_CHARS {
            return Err(ConsoleError::BadInput(format!(
                "a merchant id has at most {MAX_MERCHANT_CHARS} characters"
            )));
        }
        let currency = match query.currency.unwrap_or_default().trim() {
            "" => None,
            text => Some(
                ledger_core::currency::Currency::parse(&text.to_uppercase())
                    .map_err(|_| {
                        ConsoleError::BadInput(format!("{text:?} is not an ISO 4217 currency"))
                    })?
                    .code()
                    .to_owned(),
            ),
        };
        let after = query.after.filter(|after| !after.is_empty());
        if after
            .as_ref()
            .is_some_and(|after| after.len() > MAX_CURSOR_CHARS)
        {
            return Err(ConsoleError::BadInput("that page link is too long".into()));
        }
        if after.is_some() && kind == Kind::All {
            return Err(ConsoleError::BadInput(
                "a next page belongs to one section: choose its kind".into(),
            ));
        }
        Ok(Wanted {
            kind,
            class,
            state,
            resolved,
            outcome,
            merchant: (!merchant.is_empty()).then_some(merchant),
            currency,
            after,
            csv: wants_csv(query.format.as_deref())?,
        })
    }

    /// This view's query string without kind, cursor or format (already URL-safe: every
    /// value is encoded).
    fn filters(&self) -> String {
        let mut pairs = Vec::new();
        if let Some(class) = self.class {
            pairs.push(("class", class.as_str().to_owned()));
        }
        pairs.push(("state", self.state.to_owned()));
        if let Some(outcome) = self.outcome {
            pairs.push(("outcome", outcome.as_str().to_owned()));
        }
        if let Some(merchant) = &self.merchant {
            pairs.push(("merchant", merchant.clone()));
        }
        if let Some(currency) = &self.currency {
            pairs.push(("currency", currency.clone()));
        }
        query_string(&pairs)
    }

    fn page_size(&self) -> usize {
        if self.csv {
            CSV_ROWS
        } else {
            PAGE_SIZE
        }
    }

    /// The cursor, for the section it belongs to only.
    fn after(&self, section: Kind) -> Option<&str> {
        (self.kind == section)
            .then_some(self.after.as_deref())
            .flatten()
    }
}

/// `a=1&b=x+y`, each value form-encoded (by `url`'s `form_urlencoded`).
pub(crate) fn query_string(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(name, value)| (*name, value.as_str())))
        .finish()
}

fn bad_cursor() -> ConsoleError {
    ConsoleError::BadInput("that page link is not one the console made".into())
}

/// Splits rows fetched one past the page into the page and whether more follow.
fn page_of<T>(mut rows: Vec<T>, size: usize) -> (Vec<T>, bool) {
    let more = rows.len() > size;
    rows.truncate(size);
    (rows, more)
}

pub async fn page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<ExceptionsQuery>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadReconciliations, "the exceptions queue")?;
    let wanted = Wanted::of(query)?;
    if wanted.csv && wanted.kind == Kind::All {
        return Err(ConsoleError::BadInput(
            "a CSV download is of one section: choose its kind".into(),
        ));
    }
    let environment = current.principal.environment;
    let size = wanted.page_size();
    let filters = wanted.filters();
    let next_link = |section: Kind, cursor: String| {
        format!(
            "/console/exceptions?{}&{filters}",
            query_string(&[("kind", section.as_str().to_owned()), ("after", cursor)])
        )
    };
    let now = Utc::now();
    let due_before = now + Duration::days(EVIDENCE_DUE_DAYS);
    let may_disputes = current.may(Permission::ReadOrdersAndDisputes);

    let exceptions = if wanted.kind.shows(Kind::Reconciliation) {
        let after = match wanted.after(Kind::Reconciliation) {
            Some(cursor) => {
                let (position, ordinal) = cursor.split_once(':').ok_or_else(bad_cursor)?;
                Some((
                    position.parse().map_err(|_| bad_cursor())?,
                    ordinal.parse().map_err(|_| bad_cursor())?,
                ))
            }
            None => None,
        };
        let filter = reconciliation::ExceptionFilter {
            class: wanted.class,
            resolved: wanted.resolved,
            ..reconciliation::ExceptionFilter::default()
        };
        let rows =
            reconciliation::list_exceptions(&state.pool, environment, &filter, after, size + 1)
                .await?;
        let (rows, more) = page_of(rows, size);
        let next = more.then(|| rows.last()).flatten().map(|row| {
            next_link(
                Kind::Reconciliation,
                format!("{}:{}", row.found_position, row.ordinal),
            )
        });
        Some(Section {
            rows: rows.iter().map(exception_line).collect(),
            next,
        })
    } else {
        None
    };

    // Settlement exceptions come from a union of four read models: no cursor, the first
    // page only, which says so when it is full.
    let settlement =
        if wanted.kind.shows(Kind::Settlement) && current.may(Permission::ReadSettlements) {
            let rows = settlement::settlement_exceptions_in(
                &state.pool,
                environment,
                now,
                UNSETTLED_AFTER_DAYS,
                wanted.merchant.as_deref(),
                wanted.currency.as_deref(),
                i64::try_from(size).unwrap_or(0),
            )
            .await?;
            Some(Section {
                rows: rows
                    .iter()
                    .map(|row| SettlementLine {
                        kind: row.kind.clone(),
                        merchant_id: row.merchant_id.clone(),
                        amount: money(row.amount, &row.currency),
                        subject_id: row.subject_id.to_string(),
                        payment_id: (row.kind == "CAPTURE_NOT_SETTLED")
                            .then(|| row.subject_id.to_string()),
                        item_id: row.item_id.clone().unwrap_or_default(),
                        since: time(row.since),
                    })
                    .collect(),
                next: None,
            })
        } else {
            None
        };

    let webhooks = if wanted.kind.shows(Kind::Webhook) && may_disputes {
        let after = match wanted.after(Kind::Webhook) {
            Some(cursor) => {
                let (at, event) = cursor.split_once('~').ok_or_else(bad_cursor)?;
                let at = DateTime::parse_from_rfc3339(at).map_err(|_| bad_cursor())?;
                Some((at.with_timezone(&Utc), event.to_owned()))
            }
            None => None,
        };
        let filter = ProblemFilter {
            outcome: wanted.outcome,
            merchant_id: wanted.merchant.clone(),
            currency: wanted.currency.clone(),
        };
        let limit = u32::try_from(size + 1).unwrap_or(0);
        let rows = problem_deliveries(&state.pool, environment, &filter, after, limit)
            .await
            .map_err(|error| ConsoleError::Internal(error.to_string()))?;
        let (rows, more) = page_of(rows, size);
        let next = more.then(|| rows.last()).flatten().map(|row| {
            next_link(
                Kind::Webhook,
                format!(
                    "{}~{}",
                    row.last_received_at.to_rfc3339(),
                    row.stripe_event_id
                ),
            )
        });
        Some(Section {
            rows: rows
                .iter()
                .map(|row| WebhookLine {
                    stripe_event_id: row.stripe_event_id.clone(),
                    event_type: row.event_type.clone(),
                    outcome: row.outcome.as_str(),
                    detail: row.detail.clone().unwrap_or_default(),
                    payment_intent_id: row.payment_intent_id.clone().unwrap_or_default(),
                    payment_id: row.payment_id.map(|id| id.as_uuid().to_string()),
                    delivery_count: row.delivery_count,
                    last_received_at: time(row.last_received_at),
                })
                .collect(),
            next,
        })
    } else {
        None
    };

    let dispute_filter = disputes::EvidenceDueFilter {
        due_before,
        merchant_id: wanted.merchant.clone(),
        currency: wanted.currency.clone(),
    };
    let disputes = if wanted.kind.shows(Kind::Dispute) && may_disputes {
        let after = match wanted.after(Kind::Dispute) {
            Some(cursor) => {
                let mut parts = cursor.splitn(3, '~');
                let (Some(at), Some(payment), Some(dispute)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad_cursor());
                };
                Some((
                    DateTime::parse_from_rfc3339(at)
                        .map_err(|_| bad_cursor())?
                        .with_timezone(&Utc),
                    Uuid::parse_str(payment).map_err(|_| bad_cursor())?,
                    dispute.to_owned(),
                ))
            }
            None => None,
        };
        let rows =
            disputes::evidence_due(&state.pool, environment, &dispute_filter, after, size + 1)
                .await?;
        let (rows, more) = page_of(rows, size);
        let next = more.then(|| rows.last()).flatten().and_then(|row| {
            row.evidence_due_by.map(|due| {
                next_link(
                    Kind::Dispute,
                    format!("{}~{}~{}", due.to_rfc3339(), row.payment_id, row.dispute_id),
                )
            })
        });
        Some(Section {
            rows: rows
                .iter()
                .map(|row| DisputeLine {
                    dispute_id: row.dispute_id.clone(),
                    payment_id: row.payment_id.to_string(),
                    merchant_id: row.merchant_id.clone(),
                    amount: money(row.amount, &row.currency),
                    reason: row.reason.clone(),
                    evidence_due_by: row.evidence_due_by.map(time).unwrap_or_default(),
                    evidence_count: row.evidence_count,
                })
                .collect(),
            next,
        })
    } else {
        None
    };

    if wanted.csv {
        return csv_of(wanted.kind, exceptions, settlement, webhooks, disputes);
    }

    // Counts per class over the whole environment (state applies to reconciliation).
    let mut counts: Vec<(String, i64)> =
        reconciliation::exception_counts(&state.pool, environment, wanted.resolved)
            .await?
            .into_iter()
            .map(|(class, count)| (format!("reconciliation: {}", class.as_str()), count))
            .collect();
    if let Some(section) = &settlement {
        let shown = i64::try_from(section.rows.len()).unwrap_or(i64::MAX);
        counts.push(("settlement (listed)".to_owned(), shown));
    }
    if may_disputes {
        let problems = problem_counts(&state.pool, environment)
            .await
            .map_err(|error| ConsoleError::Internal(error.to_string()))?;
        counts.extend(
            problems
                .into_iter()
                .map(|(outcome, count)| (format!("webhook: {}", outcome.as_str()), count)),
        );
        let due = disputes::evidence_due_count(&state.pool, environment, &dispute_filter).await?;
        counts.push(("dispute: evidence due soon".to_owned(), due));
    }

    html(&ExceptionsPage {
        frame: current.frame("exceptions"),
        kind: wanted.kind.as_str(),
        classes: ExceptionClass::ALL
            .iter()
            .map(|class| class.as_str())
            .collect(),
        class: wanted
            .class
            .map(|class| class.as_str().to_owned())
            .unwrap_or_default(),
        state: wanted.state,
        outcomes: PROBLEM_OUTCOMES
            .iter()
            .map(|outcome| outcome.as_str())
            .collect(),
        outcome: wanted
            .outcome
            .map(|outcome| outcome.as_str().to_owned())
            .unwrap_or_default(),
        merchant: wanted.merchant.clone().unwrap_or_default(),
        currency: wanted.currency.clone().unwrap_or_default(),
        counts,
        exceptions,
        may_resolve: current.may(Permission::RunReconciliation),
        settlement,
        webhooks,
        disputes,
        page_size: PAGE_SIZE,
        due_days: EVIDENCE_DUE_DAYS,
        filters,
    })
}

fn exception_line(row: &reconciliation::ReconciliationExceptionRow) -> ExceptionLine {
    ExceptionLine {
        id: row.exception_id.to_string(),
        class: row.class.as_str(),
        detail: row.detail.clone(),
        payout_id: row.payout_id.clone().unwrap_or_default(),
        payment_id: row.payment_id.map(|id| id.to_string()),
        report: report_side(row),
        ledger: ledger_side(row),
        found_at: time(row.found_at),
        resolution: row.resolved_at.map(|at| {
            format!(
                "{} by {}: {}",
                time(at),
                row.resolved_by.as_deref().unwrap_or("?"),
                row.resolution_reason.as_deref().unwrap_or("")
            )
        }),
    }
}

/// What the payout report said, as the file wrote it.
pub(crate) fn report_side(row: &reconciliation::ReconciliationExceptionRow) -> String {
    match (&row.report_gross, &row.report_fee, &row.report_currency) {
        (None, None, _) => String::new(),
        (gross, fee, currency) => format!(
            "gross {} fee {} {}",
            gross.as_deref().unwrap_or("–"),
            fee.as_deref().unwrap_or("–"),
            currency.as_deref().unwrap_or("").to_uppercase()
        ),
    }
}

/// What the ledger knew of the same item.
pub(crate) fn ledger_side(row: &reconciliation::ReconciliationExceptionRow) -> String {
    match (&row.ledger_amount, &row.ledger_currency) {
        (Some(amount), Some(currency)) => format!(
            "amount {}{}",
            money(*amount, currency),
            row.ledger_fee
                .map(|fee| format!(", fee {}", money(fee, currency)))
                .unwrap_or_default()
        ),
        _ => String::new(),
    }
}

/// One section as CSV.
fn csv_of(
    kind: Kind,
    exceptions: Option<Section<ExceptionLine>>,
    settlement: Option<Section<SettlementLine>>,
    webhooks: Option<Section<WebhookLine>>,
    disputes: Option<Section<DisputeLine>>,
) -> Result<Response, ConsoleError> {
    let missing = || ConsoleError::Forbidden("this key's role may not see that section".into());
    match kind {
        Kind::Reconciliation => csv_response(
            "reconciliation-exceptions.csv",
            &[
                "exception",
                "class",
                "detail",
                "payout",
                "payment",
                "report",
                "ledger",
                "found",
                "resolution",
            ],
            exceptions
                .ok_or_else(missing)?
                .rows
                .into_iter()
                .map(|line| {
                    vec![
                        line.id,
                        line.class.to_owned(),
                        line.detail,
                        line.payout_id,
                        line.payment_id.unwrap_or_default(),
                        line.report,
                        line.ledger,
                        line.found_at,
                        line.resolution.unwrap_or_default(),
                    ]
                }),
        ),
        Kind::Settlement => csv_response(
            "settlement-exceptions.csv",
            &["kind", "merchant", "amount", "subject", "item", "since"],
            settlement
                .ok_or_else(missing)?
                .rows
                .into_iter()
                .map(|line| {
                    vec![
                        line.kind,
                        line.merchant_id,
                        line.amount,
                        line.subject_id,
                        line.item_id,
                        line.since,
                    ]
                }),
        ),
        Kind::Webhook => csv_response(
            "webhook-deliveries.csv",
            &[
                "stripe_event",
                "type",
                "outcome",
                "detail",
                "payment_intent",
                "payment",
                "deliveries",
                "last_received",
            ],
            webhooks.ok_or_else(missing)?.rows.into_iter().map(|line| {
                vec![
                    line.stripe_event_id,
                    line.event_type,
                    line.outcome.to_owned(),
                    line.detail,
                    line.payment_intent_id,
                    line.payment_id.unwrap_or_default(),
                    line.delivery_count.to_string(),
                    line.last_received_at,
                ]
            }),
        ),
        Kind::Dispute => csv_response(
            "disputes-evidence-due.csv",
            &[
                "dispute",
                "payment",
                "merchant",
                "amount",
                "reason",
                "evidence_due_by",
                "evidence_count",
            ],
            disputes.ok_or_else(missing)?.rows.into_iter().map(|line| {
                vec![
                    line.dispute_id,
                    line.payment_id,
                    line.merchant_id,
                    line.amount,
                    line.reason,
                    line.evidence_due_by,
                    line.evidence_count.to_string(),
                ]
            }),
        ),
        Kind::All => Err(ConsoleError::BadInput(
            "a CSV download is of one section: choose its kind".into(),
        )),
    }
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
