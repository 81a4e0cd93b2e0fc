//! The reconciliation read model: each run with its summary, the verdict on each payout it
//! judged, and every exception it found with the report's and the ledger's side and, once
//! finance has looked at it, who resolved it and why.
//!
//! Run rows are upserted from the folded run state (its counts are the core's); payouts and
//! exceptions are facts of single events (the state keeps only their ids and outcomes), so
//! they are inserted from the events, and resolutions update the exception they name.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use ledger_core::payment::SettledItemKind;
use ledger_core::reconciliation::{
    ExceptionClass, PayoutOutcome, PayoutReconciled, ReconciliationEvent, ReconciliationException,
    ReconciliationExceptionResolved, ReconciliationSource, RunStatus,
};
use ledger_core::text::ShortText;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::read_rows;
use crate::batch::{Batch, BatchEvent};
use crate::error::{parse_stored, to_stored, ProjectionError};
use crate::stream_states::DomainEvent;

pub(crate) async fn apply(
    connection: &mut PgConnection,
    batch: &Batch,
    after: u64,
) -> Result<(), ProjectionError> {
    let mut touched: BTreeMap<Uuid, u64> = BTreeMap::new();
    let mut completed_at: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    let mut exceptions = ExceptionRows::default();
    let mut payouts = PayoutRows::default();
    let mut resolutions = ResolutionRows::default();
    for event in batch.events_after(after) {
        let DomainEvent::Reconciliation(reconciliation) = &event.event else {
            continue;
        };
        touched.insert(event.stream_id, event.position);
        // A run's first event starts it, so its state after the batch knows the environment
        // of every later event of the run.
        let Some(environment) = batch
            .reconciliations
            .get(&event.stream_id)
            .and_then(|state| state.run.as_ref())
            .map(|run| run.started.environment)
        else {
            continue;
        };
        match reconciliation {
            ReconciliationEvent::ReconciliationRunStarted(_) => {}
            ReconciliationEvent::ReconciliationExceptionsFound(found) => {
                for (ordinal, exception) in found.exceptions.iter().enumerate() {
                    exceptions.push(event, environment, ordinal, exception)?;
                }
            }
            ReconciliationEvent::PayoutReconciled(payout) => {
                payouts.push(event, environment, payout)?;
            }
            ReconciliationEvent::ReconciliationRunCompleted(completed) => {
                completed_at.insert(event.stream_id, completed.completed_at);
            }
            ReconciliationEvent::ReconciliationExceptionResolved(resolved) => {
                resolutions.push(event.stream_id, resolved);
            }
        }
    }
    write_runs(connection, batch, &touched, &completed_at).await?;
    exceptions.write(connection).await?;
    payouts.write(connection).await?;
    // After the inserts: an exception may be found and resolved within one batch.
    resolutions.write(connection).await
}

async fn write_runs(
    connection: &mut PgConnection,
    batch: &Batch,
    touched: &BTreeMap<Uuid, u64>,
    completed_at: &HashMap<Uuid, DateTime<Utc>>,
) -> Result<(), ProjectionError> {
    let mut ids = Vec::new();
    let mut environments = Vec::new();
    let mut sources = Vec::new();
    let mut file_names = Vec::new();
    let mut file_hashes = Vec::new();
    let mut started_by = Vec::new();
    let mut started_at = Vec::new();
    let mut availability_days = Vec::new();
    let mut statuses = Vec::new();
    let mut completed = Vec::new();
    let mut lines = Vec::new();
    let mut matched_lines = Vec::new();
    let mut exception_counts = Vec::new();
    let mut unresolved = Vec::new();
    let mut proven = Vec::new();
    let mut unproven = Vec::new();
    let mut batches_recorded = Vec::new();
    let mut versions = Vec::new();
    let mut positions = Vec::new();
    for (run_id, position) in touched {
        let Some(state) = batch.reconciliations.get(run_id) else {
            continue;
        };
        let Some(run) = &state.run else {
            continue;
        };
        let started = &run.started;
        ids.push(*run_id);
        environments.push(started.environment.as_str().to_owned());
        sources.push(started.source.as_str().to_owned());
        file_names.push(started.file_name.as_ref().map(text));
        file_hashes.push(started.file_sha256.clone());
        started_by.push(text(&started.started_by));
        started_at.push(started.started_at);
        availability_days.push(i32::try_from(started.availability_days).unwrap_or(i32::MAX));
        statuses.push(run.status.as_str().to_owned());
        completed.push(completed_at.get(run_id).copied());
        lines.push(run.summary.as_ref().map(|s| count(s.lines)));
        matched_lines.push(run.summary.as_ref().map(|s| count(s.matched_lines)));
        exception_counts.push(count(run.exceptions.len() as u64));
        unresolved.push(count(run.unresolved_exceptions().len() as u64));
        proven.push(count(run.payouts_with(PayoutOutcome::Proven)));
        unproven.push(count(run.payouts_with(PayoutOutcome::Unproven)));
        batches_recorded.push(count(run.batches_recorded));
        versions.push(to_stored(state.version)?);
        positions.push(to_stored(*position)?);
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"INSERT INTO projection_reconciliation_runs (run_id, environment, source, file_name,
               file_sha256, started_by, started_at, availability_days, status, completed_at,
               lines, matched_lines, exceptions, unresolved_exceptions, payouts_proven,
               payouts_unproven, batches_recorded, version, last_position)
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
               $6::text[], $7::timestamptz[], $8::int[], $9::text[], $10::timestamptz[],
               $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[],
               $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[])
           ON CONFLICT (run_id) DO UPDATE SET
               status = EXCLUDED.status,
               completed_at = COALESCE(EXCLUDED.completed_at,
                   projection_reconciliation_runs.completed_at),
               lines = EXCLUDED.lines,
               matched_lines = EXCLUDED.matched_lines,
               exceptions = EXCLUDED.exceptions,
               unresolved_exceptions = EXCLUDED.unresolved_exceptions,
               payouts_proven = EXCLUDED.payouts_proven,
               payouts_unproven = EXCLUDED.payouts_unproven,
               batches_recorded = EXCLUDED.batches_recorded,
               version = EXCLUDED.version,
               last_position = EXCLUDED.last_position"#,
        &ids,
        &environments,
        &sources,
        &file_names as &[Option<String>],
        &file_hashes,
        &started_by,
        &started_at,
        &availability_days,
        &statuses,
        &completed as &[Option<DateTime<Utc>>],
        &lines as &[Option<i64>],
        &matched_lines as &[Option<i64>],
        &exception_counts,
        &unresolved,
        &proven,
        &unproven,
        &batches_recorded,
        &versions,
        &positions,
    )
    .execute(connection)
    .await?;
    Ok(())
}

fn text(value: &ShortText) -> String {
    value.as_str().to_owned()
}

/// Counts are far below `i64::MAX`; saturating keeps a corrupt count visible, not fatal.
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One `UNNEST` insert of the exceptions a batch found.
#[derive(Default)]
struct ExceptionRows {
    exception_ids: Vec<Uuid>,
    run_ids: Vec<Uuid>,
    environments: Vec<String>,
    classes: Vec<String>,
    details: Vec<String>,
    line_numbers: Vec<Option<i64>>,
    payout_ids: Vec<Option<String>>,
    payment_ids: Vec<Option<Uuid>>,
    item_kinds: Vec<Option<String>>,
    item_ids: Vec<Option<String>>,
    report_balance_transaction_ids: Vec<Option<String>>,
    report_reporting_categories: Vec<Option<String>>,
    report_currencies: Vec<Option<String>>,
    report_gross: Vec<Option<String>>,
    report_fees: Vec<Option<String>>,
    report_net: Vec<Option<String>>,
    report_available_on: Vec<Option<String>>,
    ledger_currencies: Vec<Option<String>>,
    ledger_amounts: Vec<Option<Decimal>>,
    ledger_fees: Vec<Option<Decimal>>,
    ledger_batch_ids: Vec<Option<Uuid>>,
    ledger_recorded_at: Vec<Option<DateTime<Utc>>>,
    found_at: Vec<DateTime<Utc>>,
    found_positions: Vec<i64>,
    ordinals: Vec<i32>,
}

impl ExceptionRows {
    fn push(
        &mut self,
        event: &BatchEvent,
        environment: Environment,
        ordinal: usize,
        exception: &ReconciliationException,
    ) -> Result<(), ProjectionError> {
        let report = exception.report.as_ref();
        let report_field =
            |field: fn(&ledger_core::reconciliation::ReportSide) -> &Option<ShortText>| {
                report.and_then(|report| field(report).as_ref().map(text))
            };
        let ledger = exception.ledger.as_ref();
        self.exception_ids.push(exception.exception_id.as_uuid());
        self.run_ids.push(event.stream_id);
        self.environments.push(environment.as_str().to_owned());
        self.classes.push(exception.class.as_str().to_owned());
        self.details.push(text(&exception.detail));
        self.line_numbers
            .push(exception.line_number.map(to_stored).transpose()?);
        self.payout_ids.push(
            exception
                .payout_id
                .as_ref()
                .map(|payout| payout.as_str().to_owned()),
        );
        self.payment_ids
            .push(exception.payment_id.map(|payment| payment.as_uuid()));
        self.item_kinds.push(
            exception
                .item
                .as_ref()
                .map(|item| item.item_kind().as_str().to_owned()),
        );
        self.item_ids.push(
            exception
                .item
                .as_ref()
                .map(|item| item.item_id().to_owned()),
        );
        self.report_balance_transaction_ids
            .push(report_field(|report| &report.balance_transaction_id));
        self.report_reporting_categories
            .push(report_field(|report| &report.reporting_category));
        self.report_currencies
            .push(report_field(|report| &report.currency));
        self.report_gross.push(report_field(|report| &report.gross));
        self.report_fees.push(report_field(|report| &report.fee));
        self.report_net.push(report_field(|report| &report.net));
        self.report_available_on
            .push(report_field(|report| &report.available_on));
        self.ledger_currencies
            .push(ledger.map(|ledger| ledger.currency.code().to_owned()));
        self.ledger_amounts
            .push(ledger.map(|ledger| ledger.amount.amount()));
        self.ledger_fees
            .push(ledger.and_then(|ledger| ledger.fee).map(|fee| fee.amount()));
        self.ledger_batch_ids.push(
            ledger
                .and_then(|ledger| ledger.batch_id)
                .map(|batch| batch.as_uuid()),
        );
        self.ledger_recorded_at
            .push(ledger.and_then(|ledger| ledger.recorded_at));
        self.found_at.push(event.recorded_at);
        self.found_positions.push(to_stored(event.position)?);
        self.ordinals
            .push(i32::try_from(ordinal).unwrap_or(i32::MAX));
        Ok(())
    }

    async fn write(&self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.exception_ids.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            r#"INSERT INTO projection_reconciliation_exceptions (exception_id, run_id,
                   environment, class, detail, line_number, payout_id, payment_id, item_kind,
                   item_id, report_balance_transaction_id, report_reporting_category,
                   report_currency, report_gross, report_fee, report_net, report_available_on,
                   ledger_currency, ledger_amount, ledger_fee, ledger_batch_id,
                   ledger_recorded_at, found_at, found_position, ordinal)
               SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                   $6::bigint[], $7::text[], $8::uuid[], $9::text[], $10::text[], $11::text[],
                   $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
                   $17::text[], $18::text[], $19::numeric[], $20::numeric[], $21::uuid[],
                   $22::timestamptz[], $23::timestamptz[], $24::bigint[], $25::int[])
               ON CONFLICT (exception_id) DO NOTHING"#,
            &self.exception_ids,
            &self.run_ids,
            &self.environments,
            &self.classes,
            &self.details,
            &self.line_numbers as &[Option<i64>],
            &self.payout_ids as &[Option<String>],
            &self.payment_ids as &[Option<Uuid>],
            &self.item_kinds as &[Option<String>],
            &self.item_ids as &[Option<String>],
            &self.report_balance_transaction_ids as &[Option<String>],
            &self.report_reporting_categories as &[Option<String>],
            &self.report_currencies as &[Option<String>],
            &self.report_gross as &[Option<String>],
            &self.report_fees as &[Option<String>],
            &self.report_net as &[Option<String>],
            &self.report_available_on as &[Option<String>],
            &self.ledger_currencies as &[Option<String>],
            &self.ledger_amounts as &[Option<Decimal>],
            &self.ledger_fees as &[Option<Decimal>],
            &self.ledger_batch_ids as &[Option<Uuid>],
            &self.ledger_recorded_at as &[Option<DateTime<Utc>>],
            &self.found_at,
            &self.found_positions,
            &self.ordinals,
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// One `UNNEST` insert of the payout verdicts of a batch.
#[derive(Default)]
struct PayoutRows {
    run_ids: Vec<Uuid>,
    payout_ids: Vec<String>,
    environments: Vec<String>,
    batch_ids: Vec<Uuid>,
    currencies: Vec<String>,
    line_counts: Vec<i64>,
    exception_counts: Vec<i64>,
    gross: Vec<Decimal>,
    fees: Vec<Decimal>,
    net: Vec<Decimal>,
    ledger_amounts: Vec<Option<Decimal>>,
    outcomes: Vec<String>,
    batches_recorded: Vec<bool>,
    reconciled_at: Vec<DateTime<Utc>>,
    positions: Vec<i64>,
}

impl PayoutRows {
    fn push(
        &mut self,
        event: &BatchEvent,
        environment: Environment,
        payout: &PayoutReconciled,
    ) -> Result<(), ProjectionError> {
        self.run_ids.push(event.stream_id);
        self.payout_ids.push(payout.payout_id.as_str().to_owned());
        self.environments.push(environment.as_str().to_owned());
        self.batch_ids.push(payout.batch_id.as_uuid());
        self.currencies.push(payout.currency.code().to_owned());
        self.line_counts.push(count(payout.line_count));
        self.exception_counts.push(count(payout.exception_count));
        self.gross.push(payout.gross.amount());
        self.fees.push(payout.fees.amount());
        self.net.push(payout.net.amount());
        self.ledger_amounts
            .push(payout.ledger_amount.map(|amount| amount.amount()));
        self.outcomes.push(payout.outcome.as_str().to_owned());
        self.batches_recorded.push(payout.batch_recorded);
        self.reconciled_at.push(event.recorded_at);
        self.positions.push(to_stored(event.position)?);
        Ok(())
    }

    async fn write(&self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.run_ids.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            r#"INSERT INTO projection_reconciliation_payouts (run_id, payout_id, environment,
                   batch_id, currency, line_count, exception_count, gross, fees, net,
                   ledger_amount, outcome, batch_recorded, reconciled_at, position)
               SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[],
                   $6::bigint[], $7::bigint[], $8::numeric[], $9::numeric[], $10::numeric[],
                   $11::numeric[], $12::text[], $13::bool[], $14::timestamptz[], $15::bigint[])
               ON CONFLICT (run_id, payout_id) DO NOTHING"#,
            &self.run_ids,
            &self.payout_ids,
            &self.environments,
            &self.batch_ids,
            &self.currencies,
            &self.line_counts,
            &self.exception_counts,
            &self.gross,
            &self.fees,
            &self.net,
            &self.ledger_amounts as &[Option<Decimal>],
            &self.outcomes,
            &self.batches_recorded,
            &self.reconciled_at,
            &self.positions,
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// The resolutions of a batch, applied to the exceptions they name.
#[derive(Default)]
struct ResolutionRows {
    exception_ids: Vec<Uuid>,
    run_ids: Vec<Uuid>,
    resolved_at: Vec<DateTime<Utc>>,
    resolved_by: Vec<String>,
    reasons: Vec<String>,
}

impl ResolutionRows {
    fn push(&mut self, run_id: Uuid, resolved: &ReconciliationExceptionResolved) {
        self.exception_ids.push(resolved.exception_id.as_uuid());
        self.run_ids.push(run_id);
        self.resolved_at.push(resolved.resolved_at);
        self.resolved_by.push(text(&resolved.resolved_by));
        self.reasons.push(text(&resolved.reason));
    }

    async fn write(&self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.exception_ids.is_empty() {
            return Ok(());
        }
        // The core resolves an exception once, and only one of the run's own; the conditions
        // keep the row right even if the log somehow said otherwise.
        sqlx::query!(
            r#"UPDATE projection_reconciliation_exceptions e SET
                   resolved_at = r.resolved_at,
                   resolved_by = r.resolved_by,
                   resolution_reason = r.reason
               FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[])
                   AS r(exception_id, run_id, resolved_at, resolved_by, reason)
               WHERE e.exception_id = r.exception_id AND e.run_id = r.run_id
                 AND e.resolved_at IS NULL"#,
            &self.exception_ids,
            &self.run_ids,
            &self.resolved_at,
            &self.resolved_by,
            &self.reasons,
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReconciliationRunRow {
    pub run_id: Uuid,
    pub environment: Environment,
    pub source: ReconciliationSource,
    pub file_name: Option<String>,
    pub file_sha256: String,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub availability_days: i32,
    pub status: RunStatus,
    pub completed_at: Option<DateTime<Utc>>,
    pub lines: Option<i64>,
    pub matched_lines: Option<i64>,
    pub exceptions: i64,
    pub unresolved_exceptions: i64,
    pub payouts_proven: i64,
    pub payouts_unproven: i64,
    pub batches_recorded: i64,
    pub version: i64,
    pub last_position: i64,
}

struct StoredRun {
    run_id: Uuid,
    environment: String,
    source: String,
    file_name: Option<String>,
    file_sha256: String,
    started_by: String,
    started_at: DateTime<Utc>,
    availability_days: i32,
    status: String,
    completed_at: Option<DateTime<Utc>>,
    lines: Option<i64>,
    matched_lines: Option<i64>,
    exceptions: i64,
    unresolved_exceptions: i64,
    payouts_proven: i64,
    payouts_unproven: i64,
    batches_recorded: i64,
    version: i64,
    last_position: i64,
}

impl TryFrom<StoredRun> for ReconciliationRunRow {
    type Error = ProjectionError;

    fn try_from(row: StoredRun) -> Result<Self, ProjectionError> {
        Ok(ReconciliationRunRow {
            run_id: row.run_id,
            environment: parse_stored(&row.environment)?,
            source: parse_stored(&row.source)?,
            file_name: row.file_name,
            file_sha256: row.file_sha256,
            started_by: row.started_by,
            started_at: row.started_at,
            availability_days: row.availability_days,
            status: parse_stored(&row.status)?,
            completed_at: row.completed_at,
            lines: row.lines,
            matched_lines: row.matched_lines,
            exceptions: row.exceptions,
            unresolved_exceptions: row.unresolved_exceptions,
            payouts_proven: row.payouts_proven,
            payouts_unproven: row.payouts_unproven,
            batches_recorded: row.batches_recorded,
            version: row.version,
            last_position: row.last_position,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReconciliationPayoutRow {
    pub run_id: Uuid,
    pub payout_id: String,
    pub environment: Environment,
    pub batch_id: Uuid,
    pub currency: String,
    pub line_count: i64,
    pub exception_count: i64,
    pub gross: Decimal,
    pub fees: Decimal,
    pub net: Decimal,
    pub ledger_amount: Option<Decimal>,
    pub outcome: PayoutOutcome,
    pub batch_recorded: bool,
    pub reconciled_at: DateTime<Utc>,
    pub position: i64,
}

struct StoredPayout {
    run_id: Uuid,
    payout_id: String,
    environment: String,
    batch_id: Uuid,
    currency: String,
    line_count: i64,
    exception_count: i64,
    gross: Decimal,
    fees: Decimal,
    net: Decimal,
    ledger_amount: Option<Decimal>,
    outcome: String,
    batch_recorded: bool,
    reconciled_at: DateTime<Utc>,
    position: i64,
}

impl TryFrom<StoredPayout> for ReconciliationPayoutRow {
    type Error = ProjectionError;

    fn try_from(row: StoredPayout) -> Result<Self, ProjectionError> {
        Ok(ReconciliationPayoutRow {
            run_id: row.run_id,
            payout_id: row.payout_id,
            environment: parse_stored(&row.environment)?,
            batch_id: row.batch_id,
            currency: row.currency,
            line_count: row.line_count,
            exception_count: row.exception_count,
            gross: row.gross,
            fees: row.fees,
            net: row.net,
            ledger_amount: row.ledger_amount,
            outcome: parse_stored(&row.outcome)?,
            batch_recorded: row.batch_recorded,
            reconciled_at: row.reconciled_at,
            position: row.position,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReconciliationExceptionRow {
    pub exception_id: Uuid,
    pub run_id: Uuid,
    pub environment: Environment,
    pub class: ExceptionClass,
    pub detail: String,
    pub line_number: Option<i64>,
    pub payout_id: Option<String>,
    pub payment_id: Option<Uuid>,
    pub item_kind: Option<SettledItemKind>,
    pub item_id: Option<String>,
    pub report_balance_transaction_id: Option<String>,
    pub report_reporting_category: Option<String>,
    pub report_currency: Option<String>,
    pub report_gross: Option<String>,
    pub report_fee: Option<String>,
    pub report_net: Option<String>,
    pub report_available_on: Option<String>,
    pub ledger_currency: Option<String>,
    pub ledger_amount: Option<Decimal>,
    pub ledger_fee: Option<Decimal>,
    pub ledger_batch_id: Option<Uuid>,
    pub ledger_recorded_at: Option<DateTime<Utc>>,
    pub found_at: DateTime<Utc>,
    pub found_position: i64,
    pub ordinal: i32,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolution_reason: Option<String>,
}

struct StoredException {
    exception_id: Uuid,
    run_id: Uuid,
    environment: String,
    class: String,
    detail: String,
    line_number: Option<i64>,
    payout_id: Option<String>,
    payment_id: Option<Uuid>,
    item_kind: Option<String>,
    item_id: Option<String>,
    report_balance_transaction_id: Option<String>,
    report_reporting_category: Option<String>,
    report_currency: Option<String>,
    report_gross: Option<String>,
    report_fee: Option<String>,
    report_net: Option<String>,
    report_available_on: Option<String>,
    ledger_currency: Option<String>,
    ledger_amount: Option<Decimal>,
    ledger_fee: Option<Decimal>,
    ledger_batch_id: Option<Uuid>,
    ledger_recorded_at: Option<DateTime<Utc>>,
    found_at: DateTime<Utc>,
    found_position: i64,
    ordinal: i32,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
    resolution_reason: Option<String>,
}

impl TryFrom<StoredException> for ReconciliationExceptionRow {
    type Error = ProjectionError;

    fn try_from(row: StoredException) -> Result<Self, ProjectionError> {
        Ok(ReconciliationExceptionRow {
            exception_id: row.exception_id,
            run_id: row.run_id,
            environment: parse_stored(&row.environment)?,
            class: parse_stored(&row.class)?,
            detail: row.detail,
            line_number: row.line_number,
            payout_id: row.payout_id,
            payment_id: row.payment_id,
            item_kind: row.item_kind.as_deref().map(parse_stored).transpose()?,
            item_id: row.item_id,
            report_balance_transaction_id: row.report_balance_transaction_id,
            report_reporting_category: row.report_reporting_category,
            report_currency: row.report_currency,
            report_gross: row.report_gross,
            report_fee: row.report_fee,
            report_net: row.report_net,
            report_available_on: row.report_available_on,
            ledger_currency: row.ledger_currency,
            ledger_amount: row.ledger_amount,
            ledger_fee: row.ledger_fee,
            ledger_batch_id: row.ledger_batch_id,
            ledger_recorded_at: row.ledger_recorded_at,
            found_at: row.found_at,
            found_position: row.found_position,
            ordinal: row.ordinal,
            resolved_at: row.resolved_at,
            resolved_by: row.resolved_by,
            resolution_reason: row.resolution_reason,
        })
    }
}

/// Largest page of runs or exceptions one query returns.
pub const MAX_RECONCILIATION_PAGE: usize = 500;

/// Filters of the runs list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
}

/// The runs cursor: `(started_at, run_id)` of the previous page's last run.
pub type RunCursor = (DateTime<Utc>, Uuid);

/// One page of an environment's runs, newest first, after the cursor; at most `limit`
/// (capped at [`MAX_RECONCILIATION_PAGE`]).
#[tracing::instrument(skip(pool))]
pub async fn list_runs(
    pool: &PgPool,
    environment: Environment,
    filter: &RunFilter,
    after: Option<RunCursor>,
    limit: usize,
) -> Result<Vec<ReconciliationRunRow>, ProjectionError> {
    let limit = i64::try_from(limit.min(MAX_RECONCILIATION_PAGE)).unwrap_or(0);
    let (after_started, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        StoredRun,
        r#"SELECT * FROM projection_reconciliation_runs
           WHERE environment = $1
             AND ($2::text IS NULL OR status = $2)
             AND ($3::timestamptz IS NULL OR (started_at, run_id) < ($3, $4::uuid))
           ORDER BY started_at DESC, run_id DESC
           LIMIT $5"#,
        environment.as_str(),
        filter.status.map(RunStatus::as_str),
        after_started,
        after_id,
        limit,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// One run of the environment, if it exists there.
#[tracing::instrument(skip(pool))]
pub async fn run(
    pool: &PgPool,
    environment: Environment,
    run_id: Uuid,
) -> Result<Option<ReconciliationRunRow>, ProjectionError> {
    let row = sqlx::query_as!(
        StoredRun,
        r#"SELECT * FROM projection_reconciliation_runs
           WHERE environment = $1 AND run_id = $2"#,
        environment.as_str(),
        run_id,
    )
    .fetch_optional(pool)
    .await?;
    row.map(TryFrom::try_from).transpose()
}

/// The payout verdicts of many runs at once, in the order the runs judged them.
#[tracing::instrument(skip(pool))]
pub async fn payouts_of(
    pool: &PgPool,
    environment: Environment,
    run_ids: &[Uuid],
) -> Result<Vec<ReconciliationPayoutRow>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredPayout,
        r#"SELECT * FROM projection_reconciliation_payouts
           WHERE environment = $1 AND run_id = ANY($2::uuid[])
           ORDER BY run_id, position, payout_id"#,
        environment.as_str(),
        run_ids,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// Filters of the exceptions list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct ExceptionFilter {
    pub run_id: Option<Uuid>,
    pub class: Option<ExceptionClass>,
    pub resolved: Option<bool>,
    pub payout_id: Option<String>,
    pub payment_id: Option<Uuid>,
}

/// The exceptions cursor: `(found_position, ordinal)` of the previous page's last exception.
pub type ExceptionCursor = (i64, i32);

/// One page of an environment's exceptions in the order they were found (oldest first, and
/// within a run in report order), after the cursor; at most `limit` (capped at
/// [`MAX_RECONCILIATION_PAGE`]).
#[tracing::instrument(skip(pool))]
pub async fn list_exceptions(
    pool: &PgPool,
    environment: Environment,
    filter: &ExceptionFilter,
    after: Option<ExceptionCursor>,
    limit: usize,
) -> Result<Vec<ReconciliationExceptionRow>, ProjectionError> {
    let limit = i64::try_from(limit.min(MAX_RECONCILIATION_PAGE)).unwrap_or(0);
    let (after_position, after_ordinal) = after.unzip();
    // `resolved` is spelled as two plain conditions so that a custom plan reduces it to
    // `resolved_at IS NULL`, which the partial index of unresolved exceptions serves.
    let rows = sqlx::query_as!(
        StoredException,
        r#"SELECT * FROM projection_reconciliation_exceptions
           WHERE environment = $1
             AND ($2::uuid IS NULL OR run_id = $2)
             AND ($3::text IS NULL OR class = $3)
             AND ($4::bool IS NULL
                  OR ($4 AND resolved_at IS NOT NULL)
                  OR (NOT $4 AND resolved_at IS NULL))
             AND ($5::text IS NULL OR payout_id = $5)
             AND ($6::uuid IS NULL OR payment_id = $6)
             AND ($7::bigint IS NULL OR (found_position, ordinal) > ($7, $8::int))
           ORDER BY found_position, ordinal
           LIMIT $9"#,
        environment.as_str(),
        filter.run_id,
        filter.class.map(ExceptionClass::as_str),
        filter.resolved,
        filter.payout_id,
        filter.payment_id,
        after_position,
        after_ordinal,
        limit,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// How many exceptions of each class an environment has, open, resolved or (`None`) both;
/// classes with none are absent.
#[tracing::instrument(skip(pool))]
pub async fn exception_counts(
    pool: &PgPool,
    environment: Environment,
    resolved: Option<bool>,
) -> Result<Vec<(ExceptionClass, i64)>, ProjectionError> {
    let rows = sqlx::query!(
        r#"SELECT class, count(*) AS "count!" FROM projection_reconciliation_exceptions
           WHERE environment = $1
             AND ($2::bool IS NULL
                  OR ($2 AND resolved_at IS NOT NULL)
                  OR (NOT $2 AND resolved_at IS NULL))
           GROUP BY class ORDER BY class"#,
        environment.as_str(),
        resolved,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| Ok((parse_stored(&row.class)?, row.count)))
        .collect()
}

/// One exception of the environment, if it exists there.
#[tracing::instrument(skip(pool))]
pub async fn exception(
    pool: &PgPool,
    environment: Environment,
    exception_id: Uuid,
) -> Result<Option<ReconciliationExceptionRow>, ProjectionError> {
    let row = sqlx::query_as!(
        StoredException,
        r#"SELECT * FROM projection_reconciliation_exceptions
           WHERE environment = $1 AND exception_id = $2"#,
        environment.as_str(),
        exception_id,
    )
    .fetch_optional(pool)
    .await?;
    row.map(TryFrom::try_from).transpose()
}

/// The latest verdict (highest log position) on each of these payouts, for the settlement
/// exceptions view; payouts no run judged are absent.
#[tracing::instrument(skip(pool))]
pub async fn latest_verdicts_by_payout(
    pool: &PgPool,
    environment: Environment,
    payout_ids: &[String],
) -> Result<Vec<ReconciliationPayoutRow>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredPayout,
        r#"SELECT DISTINCT ON (payout_id) * FROM projection_reconciliation_payouts
           WHERE environment = $1 AND payout_id = ANY($2::text[])
           ORDER BY payout_id, position DESC"#,
        environment.as_str(),
        payout_ids,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// The latest verdict on a payout of each of these settlement batches.
#[tracing::instrument(skip(pool))]
pub async fn latest_verdicts_by_batch(
    pool: &PgPool,
    environment: Environment,
    batch_ids: &[Uuid],
) -> Result<Vec<ReconciliationPayoutRow>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredPayout,
        r#"SELECT DISTINCT ON (batch_id) * FROM projection_reconciliation_payouts
           WHERE environment = $1 AND batch_id = ANY($2::uuid[])
           ORDER BY batch_id, position DESC"#,
        environment.as_str(),
        batch_ids,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}
