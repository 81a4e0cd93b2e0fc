//! One import of Stripe's payout report: a reconciliation run. This module is the order of the
//! steps; each step is a module of its own.
//!
//! 1. The file's SHA-256 names the run (with the environment): the same file is the same run,
//!    so a second import records nothing and answers with the first one's summary, and an
//!    interrupted import is resumed by importing the file again ([`super::run_stream`]).
//! 2. The read models are brought up to the log's head: lines are matched against them.
//! 3. The file is streamed: readable lines go to the staging table a chunk at a time, bad
//!    ones become `invalid_row` exceptions at once ([`super::report`], [`super::staging`]).
//! 4. Payout by payout, each line is matched ([`super::payout`], [`super::matching`]); a
//!    payout whose lines all match is recorded as a settlement batch and its payout through the
//!    settlement rules (idempotently), unless the ledger already holds it
//!    ([`super::settlements`]).
//! 5. What the ledger holds unsettled past its expected availability, and no payout of the
//!    report took, becomes `missing_from_payout` ([`super::missing`]).
//! 6. The run closes with its summary; the staged lines are dropped.
//!
//! Memory holds one page of lines, one payout's batch items (at most a batch's limit) and a
//! few hundred pending exceptions, whatever the file's length.

use std::io::Read;

use chrono::{DateTime, Utc};
use ledger_core::ids::{Environment, ReconciliationRunId};
use ledger_core::reconciliation::RunSummary;
use ledger_projections::{Projection, Projector, ProjectorOptions, SchemaName};
use ledger_store::commands::{CommandHandler, Idempotency};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ReconcileError;
use super::matching::findings::invalid_row;
use super::matching::RunTally;
use super::missing::find_missing_from_payouts;
use super::payout::reconcile_payout;
use super::report::{ReportReader, Row};
use super::run_stream::RunStream;
use super::staging::{self, STAGE_CHUNK};

/// Payouts listed per page.
const PAYOUT_PAGE: i64 = 200;
/// Progress is reported after this many lines.
const PROGRESS_EVERY: u64 = 10_000;
/// Events per batch when the importer brings the read models up to date: a run's own
/// exception events are large, and the default batch would hold thousands of them at once.
const CATCH_UP_BATCH: usize = 200;

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
    let mut run = RunStream::open(handler, request, run_id, &sha256).await?;
    if let Some(outcome) = run.finished() {
        return Ok(outcome);
    }
    let pool = handler.store().pool().clone();
    catch_up_read_models(&pool).await?;
    let lines = stage_file(&mut run, &pool, reader, progress).await?;

    let mut tally = RunTally::default();
    let mut after = String::new();
    loop {
        let payouts = staging::payouts_after(&pool, run_id.as_uuid(), &after, PAYOUT_PAGE).await?;
        let Some(last) = payouts.last() else { break };
        after = last.clone();
        for payout_id in payouts {
            reconcile_payout(&mut run, &mut tally, &pool, &payout_id).await?;
            progress(Progress::Matched {
                lines: tally.lines_matched_or_not,
                payouts: tally.payouts,
            });
        }
    }

    // The batches just recorded must be in the read models, or their items would look unpaid.
    catch_up_read_models(&pool).await?;
    find_missing_from_payouts(&mut run, &tally, &pool).await?;
    run.flush().await?;
    let outcome = run.complete(lines, tally.matched_lines).await?;
    staging::discard(&pool, run_id.as_uuid()).await?;
    progress(Progress::Done);
    Ok(outcome)
}

/// Streams the file into the staging table a chunk at a time; unreadable rows become findings
/// at once. Answers how many lines the file had.
async fn stage_file<R: Read>(
    run: &mut RunStream<'_>,
    pool: &PgPool,
    reader: ReportReader<R>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, ReconcileError> {
    let run_id = run.run_id;
    let mut lines = 0u64;
    let mut chunk = Vec::with_capacity(STAGE_CHUNK);
    for row in reader {
        lines += 1;
        match row? {
            Row::Readable(row) => chunk.push(row),
            Row::Invalid(row) => run.found(invalid_row(run_id, row)).await?,
        }
        if chunk.len() >= STAGE_CHUNK {
            staging::stage(pool, run_id.as_uuid(), &chunk).await?;
            chunk.clear();
        }
        if lines % PROGRESS_EVERY == 0 {
            progress(Progress::Read { lines });
        }
    }
    staging::stage(pool, run_id.as_uuid(), &chunk).await?;
    progress(Progress::Read { lines });
    Ok(lines)
}

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
