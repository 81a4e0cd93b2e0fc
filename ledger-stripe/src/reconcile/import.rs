//! One import of Stripe's payout report: a reconciliation run.
//!
//! 1. The file's SHA-256 names the run (with the environment): the same file is the same run,
//!    so a second import records nothing and answers with the first one's summary, and an
//!    interrupted import is resumed by importing the file again.
//! 2. The read models are brought up to the log's head: lines are matched against them.
//! 3. The file is streamed: readable lines go to the staging table a chunk at a time, bad
//!    ones become `invalid_row` exceptions at once.
//! 4. Payout by payout, each line is classified by `ledger_core::reconciliation`; a payout
//!    whose lines all match is recorded as a settlement batch and its payout through the
//!    settlement rules (idempotently), unless the ledger already holds it.
//! 5. What the ledger holds unsettled past its expected availability, and no payout of the
//!    report took, becomes `missing_from_payout`.
//! 6. The run closes with its summary; the staged lines are dropped.
//!
//! Memory holds one page of lines, one payout's batch items (at most a batch's limit) and a
//! few hundred pending exceptions, whatever the file's length.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;

use chrono::{DateTime, Utc};
use ledger_core::ids::{
    CaptureId, DisputeId, Environment, MerchantId, PaymentId, PayoutId, ReconciliationExceptionId,
    ReconciliationRunId, RefundId, SettlementBatchId,
};
use ledger_core::payment::decide::AUTOMATIC_CAPTURE_ID;
use ledger_core::payment::SettledItem;
use ledger_core::reconciliation::{
    classify_line, payout_total_exception, ExceptionClass, LedgerSide, LineVerdict, PayoutOutcome,
    PayoutReconciled, ReconciliationCommand, ReconciliationException, ReconciliationRunStarted,
    ReconciliationRunState, ReconciliationSource, ReportCategory, ReportLine, ReportSide,
    RunStatus, RunSummary,
};
use ledger_core::settlement::{
    BatchItem, PayoutStatus, PayoutUpdate, RecordPayout, RecordSettlementBatch, SettlementCommand,
    MAX_SETTLEMENT_ITEMS,
};
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money, PositiveMoney};
use ledger_projections::{Projection, Projector, ProjectorOptions, SchemaName};
use ledger_store::commands::{CommandContext, CommandHandler, Idempotency};
use ledger_store::StoreError;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ReconcileError;
use super::ledger_view::{self, ItemKey, LedgerRecord, CAPTURE, DISPUTE, REFUND};
use super::report::{self, InvalidRow, ReportReader, ReportRow, Row, PARTIAL_CAPTURE_REVERSAL};
use super::staging::{self, STAGE_CHUNK};

/// The longest file name a run keeps.
const MAX_FILE_NAME_CHARS: usize = 200;
/// Exceptions held before they are recorded.
const EXCEPTION_FLUSH: usize = 500;
/// Lines matched per page of a payout.
const LINE_PAGE: i64 = 1_000;
/// Payouts listed per page.
const PAYOUT_PAGE: i64 = 200;
/// Progress is reported after this many lines.
const PROGRESS_EVERY: u64 = 10_000;
/// Events per batch when the importer brings the read models up to date: a run's own
/// exception events are large, and the default batch would hold thousands of them at once.
const CATCH_UP_BATCH: usize = 200;

async fn catch_up_read_models(pool: &PgPool) -> Result<(), ReconcileError> {
    let options = ProjectorOptions {
        batch_size: CATCH_UP_BATCH,
        ..ProjectorOptions::default()
    };
    // One batch at a time (`run_batch`), not `catch_up`, whose reader folds ahead: a run's
    // state holds every finding, and each batch in flight would hold another copy of it.
    let mut projector = Projector::new(pool.clone(), SchemaName::live(), &Projection::ALL, options);
    while projector.run_batch(None).await?.is_some() {}
    Ok(())
}

/// Who imports what, and how patient the gateway is allowed to be.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub environment: Environment,
    pub file_name: Option<String>,
    pub actor_id: String,
    pub actor_role: String,
    /// Days after a capture by which the gateway should have paid it out.
    pub availability_days: u32,
    pub now: DateTime<Utc>,
    /// The caller's idempotency key, claimed with the run's first event: the same key sent
    /// with another file is refused.
    pub idempotency: Option<Idempotency>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImportOutcome {
    pub run_id: ReconciliationRunId,
    /// The file had been imported before: nothing new was recorded.
    pub already_imported: bool,
    pub summary: RunSummary,
    /// The log position after the run's last event.
    pub position: u64,
}

/// Where a long import is, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Read { lines: u64 },
    Matched { lines: u64, payouts: u64 },
    Done,
}

/// The run id of a file: the same bytes in the same environment are the same run.
pub fn run_id_for(environment: Environment, file_sha256: &str) -> ReconciliationRunId {
    ReconciliationRunId::from_uuid(Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!(
            "ledger:reconciliation:stripe_payouts:{}:{file_sha256}",
            environment.as_str()
        )
        .as_bytes(),
    ))
}

/// The batch a Stripe payout settles when the ledger has none for it yet.
pub fn batch_id_for_payout(environment: Environment, payout_id: &str) -> SettlementBatchId {
    SettlementBatchId::from_uuid(Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("ledger:stripe_payout:{}:{payout_id}", environment.as_str()).as_bytes(),
    ))
}

/// SHA-256 of everything `source` yields, read in blocks.
pub fn file_sha256(mut source: impl Read) -> Result<String, ReconcileError> {
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    loop {
        let read = source
            .read(&mut block)
            .map_err(|error| ReconcileError::UnreadableFile(error.to_string()))?;
        if read == 0 {
            break;
        }
        hasher.update(&block[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Imports a report. `open` is called twice: once to hash the file, once to read it.
pub async fn import_stripe_payouts<R, Open>(
    handler: &CommandHandler,
    request: &ImportRequest,
    open: Open,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportOutcome, ReconcileError>
where
    R: Read,
    Open: Fn() -> std::io::Result<R>,
{
    let unreadable = |error: std::io::Error| ReconcileError::UnreadableFile(error.to_string());
    let sha256 = file_sha256(open().map_err(unreadable)?)?;
    // The header is checked before anything is recorded: a wrong file records nothing.
    let reader = ReportReader::new(open().map_err(unreadable)?)?;
    let run_id = run_id_for(request.environment, &sha256);
    let mut run = Run::open(handler, request, run_id, &sha256).await?;
    if let Some(outcome) = run.finished() {
        return Ok(outcome);
    }
    let pool = handler.store().pool().clone();
    catch_up_read_models(&pool).await?;

    let mut lines = 0u64;
    let mut chunk = Vec::with_capacity(STAGE_CHUNK);
    for row in reader {
        lines += 1;
        match row? {
            Row::Readable(row) => chunk.push(row),
            Row::Invalid(row) => run.found(invalid_row(run_id, row)).await?,
        }
        if chunk.len() >= STAGE_CHUNK {
            staging::stage(&pool, run_id.as_uuid(), &chunk).await?;
            chunk.clear();
        }
        if lines % PROGRESS_EVERY == 0 {
            progress(Progress::Read { lines });
        }
    }
    staging::stage(&pool, run_id.as_uuid(), &chunk).await?;
    drop(chunk);
    progress(Progress::Read { lines });

    let mut matcher = Matcher::default();
    let mut after = String::new();
    loop {
        let payouts = staging::payouts_after(&pool, run_id.as_uuid(), &after, PAYOUT_PAGE).await?;
        let Some(last) = payouts.last() else { break };
        after = last.clone();
        for payout_id in payouts {
            reconcile_payout(&mut run, &mut matcher, &pool, &payout_id).await?;
            progress(Progress::Matched {
                lines: matcher.lines_matched_or_not,
                payouts: matcher.payouts,
            });
        }
    }

    catch_up_read_models(&pool).await?;
    find_missing_from_payouts(&mut run, &matcher, &pool).await?;
    run.flush().await?;
    let outcome = run.complete(lines, matcher.matched_lines).await?;
    staging::discard(&pool, run_id.as_uuid()).await?;
    progress(Progress::Done);
    Ok(outcome)
}

/// The run's stream as this import writes it, with findings held until there are enough.
struct Run<'a> {
    handler: &'a CommandHandler,
    request: &'a ImportRequest,
    run_id: ReconciliationRunId,
    state: ReconciliationRunState,
    context: CommandContext,
    pending: Vec<ReconciliationException>,
    position: u64,
}

impl<'a> Run<'a> {
    async fn open(
        handler: &'a CommandHandler,
        request: &'a ImportRequest,
        run_id: ReconciliationRunId,
        sha256: &str,
    ) -> Result<Run<'a>, ReconcileError> {
        let context = CommandContext {
            environment: request.environment,
            actor_id: request.actor_id.clone(),
            actor_role: request.actor_role.clone(),
            correlation_id: run_id.as_uuid(),
            causation_id: None,
            occurred_at: request.now,
            idempotency: None,
        };
        let (state, history) = handler
            .load_with_history::<ReconciliationRunState>(run_id.as_uuid())
            .await?;
        // The run id is made from the environment too: no run of the other one shares it.
        let mut run = Run {
            handler,
            request,
            run_id,
            state,
            context,
            pending: Vec::new(),
            position: history.last().map_or(0, |event| event.position),
        };
        if run.state.run.is_none() {
            let started = ReconciliationRunStarted {
                environment: request.environment,
                source: ReconciliationSource::StripePayouts,
                file_name: request
                    .file_name
                    .as_deref()
                    .and_then(|name| report::bounded_text(name, MAX_FILE_NAME_CHARS)),
                file_sha256: sha256.to_owned(),
                started_by: bounded_text(&request.actor_id),
                started_at: request.now,
                availability_days: request.availability_days,
            };
            run.context.idempotency = request.idempotency.clone();
            let started = run.command(ReconciliationCommand::Start(started)).await;
            run.context.idempotency = None;
            started?;
        }
        Ok(run)
    }

    fn finished(&self) -> Option<ImportOutcome> {
        let run = self.state.run.as_ref()?;
        (run.status == RunStatus::Completed).then(|| ImportOutcome {
            run_id: self.run_id,
            already_imported: true,
            summary: run.summary.clone().unwrap_or_default(),
            position: self.position,
        })
    }

    fn availability_days(&self) -> u32 {
        self.state
            .run
            .as_ref()
            .map_or(self.request.availability_days, |run| {
                run.started.availability_days
            })
    }

    fn started_at(&self) -> DateTime<Utc> {
        self.state
            .run
            .as_ref()
            .map_or(self.request.now, |run| run.started.started_at)
    }

    fn judged(&self, payout_id: &PayoutId) -> bool {
        self.state
            .run
            .as_ref()
            .is_some_and(|run| run.payouts.contains_key(payout_id))
    }

    async fn command(&mut self, command: ReconciliationCommand) -> Result<(), ReconcileError> {
        let state = std::mem::take(&mut self.state);
        let (state, events) = self
            .handler
            .advance_reconciliation(self.run_id, state, &command, &self.context)
            .await?;
        self.state = state;
        if let Some(last) = events.last() {
            self.position = last.position;
        }
        Ok(())
    }

    async fn found(&mut self, exception: ReconciliationException) -> Result<(), ReconcileError> {
        self.pending.push(exception);
        if self.pending.len() >= EXCEPTION_FLUSH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ReconcileError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let exceptions = std::mem::take(&mut self.pending);
        self.command(ReconciliationCommand::RecordExceptions { exceptions })
            .await
    }

    async fn complete(
        mut self,
        lines: u64,
        matched_lines: u64,
    ) -> Result<ImportOutcome, ReconcileError> {
        self.command(ReconciliationCommand::Complete {
            lines,
            matched_lines,
            completed_at: Utc::now(),
        })
        .await?;
        let summary = self
            .state
            .run
            .as_ref()
            .and_then(|run| run.summary.clone())
            .unwrap_or_default();
        Ok(ImportOutcome {
            run_id: self.run_id,
            already_imported: false,
            summary,
            position: self.position,
        })
    }
}

/// What the walk over the payouts learned for the later steps.
#[derive(Default)]
struct Matcher {
    lines_matched_or_not: u64,
    matched_lines: u64,
    payouts: u64,
    /// Merchants and currencies the report is about: the scope of `missing_from_payout`.
    merchants: BTreeSet<String>,
    currencies: BTreeSet<String>,
}

fn bounded_text(text: &str) -> ShortText {
    report::bounded_text(text, ledger_core::text::MAX_TEXT_LENGTH).unwrap_or_else(fallback_text)
}

/// Text that always parses, for the impossible case of an empty description.
fn fallback_text() -> ShortText {
    match ShortText::parse("unspecified") {
        Ok(text) => text,
        Err(_) => unreachable!("a non-empty constant is valid text"),
    }
}

fn exception_id(run_id: ReconciliationRunId, key: &str) -> ReconciliationExceptionId {
    ReconciliationExceptionId::from_uuid(Uuid::new_v5(&run_id.as_uuid(), key.as_bytes()))
}

fn invalid_row(run_id: ReconciliationRunId, row: InvalidRow) -> ReconciliationException {
    ReconciliationException {
        exception_id: exception_id(run_id, &format!("line:{}", row.line_number)),
        class: ExceptionClass::InvalidRow,
        detail: bounded_text(&format!(
            "line {} could not be read: {}",
            row.line_number, row.reason
        )),
        line_number: Some(row.line_number),
        payout_id: row.payout_id,
        payment_id: None,
        item: None,
        report: Some(row.report),
        ledger: None,
    }
}

fn text_of(value: impl ToString) -> Option<ShortText> {
    ShortText::parse(value.to_string()).ok()
}

fn report_side(line: &ReportRow) -> ReportSide {
    ReportSide {
        balance_transaction_id: line.balance_transaction_id.as_deref().and_then(text_of),
        reporting_category: text_of(&line.reporting_category),
        currency: text_of(line.currency.code()),
        gross: text_of(line.gross.amount()),
        fee: text_of(line.fee.amount()),
        net: text_of(line.net.amount()),
        available_on: line
            .available_on
            .and_then(|time| text_of(time.to_rfc3339())),
    }
}

fn ledger_side(record: &LedgerRecord) -> LedgerSide {
    LedgerSide {
        currency: record.item.currency,
        amount: record.item.amount,
        fee: record
            .item
            .settlement
            .as_ref()
            .map(|settled| settled.fee)
            .or(record.item.known_fee),
        batch_id: record
            .item
            .settlement
            .as_ref()
            .map(|settled| settled.batch_id),
        recorded_at: Some(record.recorded_at),
    }
}

/// The ledger payment a line names: the report's metadata column, else the payment a webhook
/// linked the PaymentIntent to, else the UUIDv5 of the PaymentIntent id (as webhooks map it).
fn payment_of(line: &ReportRow, links: &HashMap<String, Uuid>) -> Option<Uuid> {
    line.ledger_payment_id.or_else(|| {
        let intent = line.payment_intent_id.as_deref()?;
        Some(links.get(intent).copied().unwrap_or_else(|| {
            crate::gateway::mapping::payment_id_for_payment_intent(intent).as_uuid()
        }))
    })
}

/// The category and the ledger item a line names, and the key to look the item up by.
fn item_of(
    line: &ReportRow,
    payment: Option<Uuid>,
) -> (ReportCategory, Option<SettledItem>, Option<ItemKey>) {
    let (category, kind, item) = match line.reporting_category.as_str() {
        "charge" => (
            ReportCategory::Charge,
            CAPTURE,
            line.charge_id
                .as_deref()
                .and_then(|id| CaptureId::parse(id).ok())
                .map(SettledItem::Capture),
        ),
        "refund" => (
            ReportCategory::Refund,
            REFUND,
            line.refund_id
                .as_deref()
                .and_then(|id| RefundId::parse(id).ok())
                .map(SettledItem::Refund),
        ),
        "dispute" => (
            ReportCategory::Dispute,
            DISPUTE,
            line.dispute_id
                .as_deref()
                .and_then(|id| DisputeId::parse(id).ok())
                .map(SettledItem::Dispute),
        ),
        other => return (ReportCategory::Other(other.to_owned()), None, None),
    };
    let key = match (payment, &item) {
        (Some(payment), Some(item)) => Some((payment, kind, item.item_id().to_owned())),
        _ => None,
    };
    (category, item, key)
}

/// One payout's running figures.
struct PayoutWork {
    payout_id: PayoutId,
    currency: Currency,
    batch_id: SettlementBatchId,
    knowledge: ledger_view::PayoutKnowledge,
    items: Vec<BatchItem>,
    too_many_items: bool,
    unsettled_matches: u64,
    merchant: Option<String>,
    lines: u64,
    exceptions: u64,
    gross: Money,
    fees: Money,
    net: Money,
}

async fn reconcile_payout(
    run: &mut Run<'_>,
    matcher: &mut Matcher,
    pool: &PgPool,
    payout_text: &str,
) -> Result<(), ReconcileError> {
    let environment = run.request.environment;
    let mut after_line = 0u64;
    let mut work: Option<PayoutWork> = None;
    loop {
        let page = staging::lines_of_payout(
            pool,
            run.run_id.as_uuid(),
            payout_text,
            after_line,
            LINE_PAGE,
        )
        .await?;
        let Some(last) = page.last() else { break };
        after_line = last.line_number;
        if work.is_none() {
            let first = &page[0];
            let knowledge =
                ledger_view::payout_knowledge(pool, environment, payout_text, first.currency)
                    .await?;
            let batch_id = knowledge.batch_id.map_or_else(
                || batch_id_for_payout(environment, payout_text),
                SettlementBatchId::from_uuid,
            );
            work = Some(PayoutWork {
                payout_id: first.payout_id.clone(),
                currency: first.currency,
                batch_id,
                knowledge,
                items: Vec::new(),
                too_many_items: false,
                unsettled_matches: 0,
                merchant: None,
                lines: 0,
                exceptions: 0,
                gross: Money::zero(first.currency),
                fees: Money::zero(first.currency),
                net: Money::zero(first.currency),
            });
        }
        let Some(work) = work.as_mut() else { break };
        let intents: Vec<String> = page
            .iter()
            .filter(|line| line.ledger_payment_id.is_none())
            .filter_map(|line| line.payment_intent_id.clone())
            .collect();
        let links = ledger_view::linked_payments(pool, environment, &intents).await?;
        let payments: Vec<Uuid> = page
            .iter()
            .filter_map(|line| payment_of(line, &links))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let ledger = ledger_view::items_of(pool, environment, &payments).await?;
        let charge_ids: Vec<String> = page
            .iter()
            .filter_map(|line| line.charge_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let reversals =
            staging::reversals(pool, run.run_id.as_uuid(), payout_text, &charge_ids).await?;
        for line in &page {
            let found = Found {
                links: &links,
                ledger: &ledger,
                reversals: &reversals,
            };
            match_line(run, matcher, work, line, found).await?;
        }
    }
    let Some(work) = work else { return Ok(()) };
    finish_payout(run, work).await?;
    matcher.payouts += 1;
    Ok(())
}

/// What was looked up for a page of lines.
#[derive(Clone, Copy)]
struct Found<'a> {
    links: &'a HashMap<String, Uuid>,
    ledger: &'a HashMap<ItemKey, LedgerRecord>,
    reversals: &'a staging::Reversals,
}

/// A charge line's figures with its partial-capture reversals taken off: the capture.
fn net_of_reversals(line: &ReportRow, reversals: &staging::Reversals) -> (Money, Money, Money) {
    let raw = (line.gross, line.fee, line.net);
    let Some((gross, fee, net)) = line
        .charge_id
        .as_ref()
        .filter(|_| line.reporting_category == "charge")
        .and_then(|charge| reversals.sums.get(charge))
    else {
        return raw;
    };
    let add = |amount: Money, reversed: &rust_decimal::Decimal| {
        Money::new(amount.amount() + reversed, amount.currency()).ok()
    };
    match (
        add(line.gross, gross),
        add(line.fee, fee),
        add(line.net, net),
    ) {
        (Some(gross), Some(fee), Some(net)) => (gross, fee, net),
        _ => raw,
    }
}

async fn match_line(
    run: &mut Run<'_>,
    matcher: &mut Matcher,
    work: &mut PayoutWork,
    line: &ReportRow,
    found: Found<'_>,
) -> Result<(), ReconcileError> {
    let Found {
        links,
        ledger,
        reversals,
    } = found;
    matcher.lines_matched_or_not += 1;
    work.lines += 1;
    matcher.currencies.insert(line.currency.code().to_owned());
    if line.reporting_category == PARTIAL_CAPTURE_REVERSAL && line.currency == work.currency {
        let charge_here = line
            .charge_id
            .as_ref()
            .is_some_and(|charge| reversals.charges_with_line.contains(charge));
        if charge_here {
            // Matched as part of its charge's capture, which carries the batch item.
            matcher.matched_lines += 1;
            add_to_totals(work, line);
            return Ok(());
        }
    }
    let (gross, fee, net) = net_of_reversals(line, reversals);
    let payment = payment_of(line, links);
    let (category, mut item, key) = item_of(line, payment);
    let mut record = key.as_ref().and_then(|key| ledger.get(key));
    // An automatically captured payment holds its one capture under the ledger's own id, not
    // the charge's (see `stripe::mapping`): the charge line settles that capture.
    if let (None, Some((payment, CAPTURE, _))) = (record, &key) {
        let automatic = (*payment, CAPTURE, AUTOMATIC_CAPTURE_ID.to_owned());
        if let Some(found) = ledger.get(&automatic) {
            record = Some(found);
            item = CaptureId::parse(AUTOMATIC_CAPTURE_ID)
                .ok()
                .map(SettledItem::Capture);
        }
    }
    let verdict = if line.currency != work.currency {
        LineVerdict::Exception {
            class: ExceptionClass::CurrencyMismatch,
            detail: format!(
                "the payout is in {}, this line in {}",
                work.currency, line.currency
            ),
        }
    } else {
        let report_line = ReportLine {
            line_number: line.line_number,
            payout_id: line.payout_id.clone(),
            category,
            currency: line.currency,
            gross,
            fee,
            net,
            payment_id: payment.map(PaymentId::from_uuid),
            item: item.clone(),
            available_on: line.available_on,
        };
        classify_line(
            &report_line,
            record.map(|record| &record.item),
            work.batch_id,
        )
    };
    add_to_totals(work, line);
    match verdict {
        LineVerdict::Matched { settled } => {
            matcher.matched_lines += 1;
            if let Some(record) = record {
                matcher.merchants.insert(record.merchant_id.clone());
                work.merchant
                    .get_or_insert_with(|| record.merchant_id.clone());
            }
            if settled {
                return Ok(());
            }
            work.unsettled_matches += 1;
            let (Some(payment), Some(item), Ok(gross)) =
                (payment, item, PositiveMoney::new(gross.abs()))
            else {
                return Ok(());
            };
            if work.items.len() >= MAX_SETTLEMENT_ITEMS {
                work.too_many_items = true;
            } else {
                work.items.push(BatchItem {
                    payment_id: PaymentId::from_uuid(payment),
                    item,
                    gross,
                    fee,
                });
            }
        }
        LineVerdict::Exception { class, detail } => {
            work.exceptions += 1;
            run.found(ReconciliationException {
                exception_id: exception_id(run.run_id, &format!("line:{}", line.line_number)),
                class,
                detail: bounded_text(&format!("line {}: {detail}", line.line_number)),
                line_number: Some(line.line_number),
                payout_id: Some(line.payout_id.clone()),
                payment_id: payment.map(PaymentId::from_uuid),
                item,
                report: Some(report_side(line)),
                ledger: record.map(ledger_side),
            })
            .await?;
        }
    }
    Ok(())
}

/// The payout's totals are the report's, line by line, in the payout's currency.
fn add_to_totals(work: &mut PayoutWork, line: &ReportRow) {
    if line.currency != work.currency {
        return;
    }
    let add = |total: Money, amount: Money| total.checked_add(amount).unwrap_or(total);
    work.gross = add(work.gross, line.gross);
    work.fees = add(work.fees, line.fee);
    work.net = add(work.net, line.net);
}

/// Records a payout-level finding and counts it against the payout.
async fn raise(
    run: &mut Run<'_>,
    work: &mut PayoutWork,
    key: &str,
    class: ExceptionClass,
    detail: String,
) -> Result<(), ReconcileError> {
    let exception = payout_exception(run.run_id, work, key, class, detail);
    work.exceptions += 1;
    run.found(exception).await
}

fn payout_exception(
    run_id: ReconciliationRunId,
    work: &PayoutWork,
    key: &str,
    class: ExceptionClass,
    detail: String,
) -> ReconciliationException {
    ReconciliationException {
        exception_id: exception_id(run_id, &format!("payout:{}:{key}", work.payout_id)),
        class,
        detail: bounded_text(&format!("payout {}: {detail}", work.payout_id)),
        line_number: None,
        payout_id: Some(work.payout_id.clone()),
        payment_id: None,
        item: None,
        report: Some(ReportSide {
            currency: text_of(work.currency.code()),
            gross: text_of(work.gross.amount()),
            fee: text_of(work.fees.amount()),
            net: text_of(work.net.amount()),
            ..ReportSide::default()
        }),
        ledger: work
            .knowledge
            .payout_amount
            .or(work.knowledge.batch_net)
            .map(|amount| LedgerSide {
                currency: amount.currency(),
                amount,
                fee: None,
                batch_id: work.knowledge.batch_id.map(SettlementBatchId::from_uuid),
                recorded_at: None,
            }),
    }
}

async fn finish_payout(run: &mut Run<'_>, mut work: PayoutWork) -> Result<(), ReconcileError> {
    if run.judged(&work.payout_id) {
        return Ok(());
    }
    let ledger_amount = work.knowledge.payout_amount.or(work.knowledge.batch_net);
    if let Some(detail) = payout_total_exception(work.net, ledger_amount) {
        raise(
            run,
            &mut work,
            "total",
            ExceptionClass::PayoutTotalMismatch,
            detail,
        )
        .await?;
    }
    let batch_exists = work.knowledge.batch_id.is_some();
    if batch_exists && work.unsettled_matches > 0 {
        let detail = format!(
            "the ledger's batch for this payout lacks {} of the report's lines",
            work.unsettled_matches
        );
        raise(
            run,
            &mut work,
            "lines",
            ExceptionClass::PayoutTotalMismatch,
            detail,
        )
        .await?;
    }
    if work.too_many_items {
        let detail = format!(
            "more than {MAX_SETTLEMENT_ITEMS} lines: too many for one settlement batch; record it in parts by hand"
        );
        raise(run, &mut work, "size", ExceptionClass::BatchRefused, detail).await?;
    }
    let mut batch_recorded = false;
    if work.exceptions == 0 {
        match record_payout(run, &work, batch_exists).await {
            Ok(recorded) => batch_recorded = recorded,
            Err(ReconcileError::Store(StoreError::Rejected(rule))) => {
                let detail = format!(
                    "the ledger refused its settlement batch: {rule} (rule {})",
                    rule.rule()
                );
                raise(
                    run,
                    &mut work,
                    "refused",
                    ExceptionClass::BatchRefused,
                    detail,
                )
                .await?;
            }
            Err(other) => return Err(other),
        }
    }
    let outcome = if work.exceptions == 0 {
        PayoutOutcome::Proven
    } else {
        PayoutOutcome::Unproven
    };
    // Findings first, so that a payout is judged only once its findings are on record.
    run.flush().await?;
    run.command(ReconciliationCommand::RecordPayout(PayoutReconciled {
        payout_id: work.payout_id.clone(),
        batch_id: work.batch_id,
        currency: work.currency,
        line_count: work.lines,
        exception_count: work.exceptions,
        gross: work.gross,
        fees: work.fees,
        net: work.net,
        ledger_amount,
        outcome,
        batch_recorded,
    }))
    .await
}

/// Records a proven payout: its batch when the ledger has none, and the payout as paid. Each
/// command carries an idempotency key of the run, so a resumed import repeats nothing.
async fn record_payout(
    run: &Run<'_>,
    work: &PayoutWork,
    batch_exists: bool,
) -> Result<bool, ReconcileError> {
    let handler = run.handler;
    let context =
        |step: &str, command: &SettlementCommand| -> Result<CommandContext, ReconcileError> {
            let request = serde_json::to_value(command)
                .map_err(|error| ReconcileError::CorruptRow(error.to_string()))?;
            Ok(CommandContext {
                idempotency: Some(Idempotency::for_request(
                    format!("reconciliation:{}:{}:{step}", run.run_id, work.payout_id),
                    &request,
                )?),
                ..run.context.clone()
            })
        };
    let mut recorded = false;
    if !batch_exists {
        let Some(merchant) = work.merchant.as_deref() else {
            return Ok(false);
        };
        let merchant_id = MerchantId::parse(merchant)
            .map_err(|error| ReconcileError::CorruptRow(error.to_string()))?;
        let command = SettlementCommand::RecordBatch(RecordSettlementBatch {
            batch_id: work.batch_id,
            merchant_id,
            environment: run.request.environment,
            currency: work.currency,
            items: work.items.clone(),
            reserve: None,
        });
        handler
            .handle_settlement(work.batch_id, &command, &context("batch", &command)?)
            .await?;
        recorded = true;
    }
    let Ok(amount) = PositiveMoney::new(work.net) else {
        // A payout of nothing (or a debit) moves no money to the bank: the batch is the record.
        return Ok(recorded);
    };
    let status = work.knowledge.payout_status;
    if status.is_none() || !batch_exists {
        let command = SettlementCommand::RecordPayout(RecordPayout {
            payout_id: work.payout_id.clone(),
            amount,
            update: PayoutUpdate::Initiated {
                expected_arrival_date: None,
            },
        });
        handler
            .handle_settlement(work.batch_id, &command, &context("initiated", &command)?)
            .await?;
    }
    if !matches!(status, Some(PayoutStatus::Paid | PayoutStatus::Failed)) {
        let command = SettlementCommand::RecordPayout(RecordPayout {
            payout_id: work.payout_id.clone(),
            amount,
            update: PayoutUpdate::Paid,
        });
        handler
            .handle_settlement(work.batch_id, &command, &context("paid", &command)?)
            .await?;
    }
    Ok(recorded)
}

/// Ledger items past their expected availability that no payout of this report took.
async fn find_missing_from_payouts(
    run: &mut Run<'_>,
    matcher: &Matcher,
    pool: &PgPool,
) -> Result<(), ReconcileError> {
    if matcher.merchants.is_empty() {
        return Ok(());
    }
    let period_end = staging::period_end(pool, run.run_id.as_uuid())
        .await?
        .unwrap_or_else(|| run.started_at());
    let recorded_before = period_end - chrono::Duration::days(i64::from(run.availability_days()));
    let merchants: Vec<String> = matcher.merchants.iter().cloned().collect();
    let currencies: Vec<String> = matcher.currencies.iter().cloned().collect();
    let mut cursor = None;
    loop {
        let page = ledger_view::unsettled_before(
            pool,
            run.request.environment,
            &merchants,
            &currencies,
            recorded_before,
            cursor.clone(),
            LINE_PAGE,
        )
        .await?;
        let Some(last) = page.last() else { break };
        cursor = Some((last.recorded_at, last.payment_id, last.item_id.clone()));
        let ids: Vec<String> = page.iter().map(|item| item.item_id.clone()).collect();
        let reported: BTreeSet<String> =
            staging::reported_item_ids(pool, run.run_id.as_uuid(), &ids)
                .await?
                .into_iter()
                .collect();
        for item in page
            .into_iter()
            .filter(|item| !reported.contains(&item.item_id))
        {
            let settled = match item.kind {
                CAPTURE => CaptureId::parse(item.item_id.clone())
                    .ok()
                    .map(SettledItem::Capture),
                REFUND => RefundId::parse(item.item_id.clone())
                    .ok()
                    .map(SettledItem::Refund),
                _ => DisputeId::parse(item.item_id.clone())
                    .ok()
                    .map(SettledItem::Dispute),
            };
            let exception = ReconciliationException {
                exception_id: exception_id(
                    run.run_id,
                    &format!("ledger:{}:{}:{}", item.payment_id, item.kind, item.item_id),
                ),
                class: ExceptionClass::MissingFromPayout,
                detail: bounded_text(&format!(
                    "the ledger recorded {} {} of {} on {}, expected in a payout within {} days, but no payout of this report includes it",
                    item.kind.to_lowercase(),
                    item.item_id,
                    item.amount,
                    item.recorded_at.format("%Y-%m-%d"),
                    run.availability_days()
                )),
                line_number: None,
                payout_id: None,
                payment_id: Some(PaymentId::from_uuid(item.payment_id)),
                item: settled,
                report: None,
                ledger: Some(LedgerSide {
                    currency: item.currency,
                    amount: item.amount,
                    fee: None,
                    batch_id: None,
                    recorded_at: Some(item.recorded_at),
                }),
            };
            run.found(exception).await?;
        }
    }
    Ok(())
}
