//! `ledger verify`: the full audit, reporting every discrepancy found rather than stopping at
//! the first.
//!
//! 1. The hash chain, recomputed over every stored event (ledger-store).
//! 2. Every stream folded from nothing through ledger-core, in position order with a bounded
//!    cache of states as the projector keeps: each event must decode and follow its
//!    predecessor, and each payment must satisfy `ledger_core::payment::invariants::check`
//!    after every event.
//! 3. The journal of that fold: every entry balanced, and the trial balance zero per currency;
//!    and each stream's row, whose kept state reads trust instead of folding, against that
//!    fold (`kept_states`).
//! 4. The read models: the live projections are compared with a fresh build into a scratch
//!    schema up to the same checkpoints, which is dropped afterwards
//!    (`projection_compare_tables`): each pair of tables by its row count and a sum of seeded
//!    row hashes, and a pair that differs row by row (`EXCEPT` both ways).
//!
//! All of it is fed by one read of the log, a pipeline of four tasks: the reader fetches the
//! next page while the chain check hashes the one before, the refold decodes and folds the one
//! before that, and a writer applies the refold's batches to the scratch build
//! (`scratch_feed`: the build does not read, decode or fold the log again). The comparison
//! follows, once the build has reached the live checkpoints. The wall times are in
//! [`VerificationReport::durations`]. The pipeline holds at most five pages, two of the
//! build's batches and a bounded state cache: memory does not grow with the log.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use ledger_core::journal::TrialBalance;
use ledger_core::payment::invariants;
use ledger_store::{ChainCheck, ChainVerification, EventStore, LogHead, RecordedEvent};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::batch::BatchEvent;
use crate::checkpoint;
use crate::error::{from_stored, to_stored, ProjectionError};
use crate::projection::{tables_of, Projection};
use crate::projector::{Projector, ProjectorOptions};
use crate::schema::{create_schema, drop_schema, prepare_build, SchemaName};
use crate::stream_states::{decode, StreamNeed, StreamState, StreamStates};

mod kept_states;
mod scratch_feed;
use kept_states::{KeptStates, PageEnd};
use scratch_feed::{ScratchFeed, Targets};

/// Most events the refold reads per page (the options' batch size, if smaller).
const VERIFY_PAGE_SIZE: usize = 10_000;
/// Differing rows reported per table and side.
const MAX_ROWS_REPORTED: i32 = 50;

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum Discrepancy {
    /// The hash chain breaks at this position.
    ChainBroken { position: u64, reason: String },
    /// A stored event that does not decode, or does not follow its stream's previous event.
    BadEvent { position: u64, reason: String },
    /// A payment breaks a domain invariant after the event at `position`.
    InvariantBroken {
        stream_id: Uuid,
        position: u64,
        violation: String,
    },
    /// A journal entry whose postings do not balance.
    UnbalancedEntry { position: u64 },
    /// The trial balance of a currency is not zero.
    TrialBalanceNotZero { currency: String, total: Decimal },
    /// The head an auditor kept from an earlier export is not in the chain: no event at its
    /// position, or one with another hash.
    KeptHeadNotInChain { kept: LogHead, found: String },
    /// A stream's row keeps a state, version, times or last position that the fold of its
    /// events does not make (`stream_id` nil: rows the fold never met, counted).
    KeptStateDiffers { stream_id: Uuid, reason: String },
    /// A read-model row that the fresh fold does not have (`only_in` = `live`), or that the
    /// live read model lacks (`only_in` = `fresh fold`).
    ReadModelRow {
        table: String,
        only_in: String,
        row: Value,
    },
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discrepancy::ChainBroken { position, reason } => {
                write!(
                    formatter,
                    "hash chain broken at position {position}: {reason}"
                )
            }
            Discrepancy::BadEvent { position, reason } => {
                write!(formatter, "event at position {position}: {reason}")
            }
            Discrepancy::InvariantBroken {
                stream_id,
                position,
                violation,
            } => write!(
                formatter,
                "payment {stream_id} after position {position}: {violation}"
            ),
            Discrepancy::UnbalancedEntry { position } => {
                write!(
                    formatter,
                    "journal entry of position {position} does not balance"
                )
            }
            Discrepancy::TrialBalanceNotZero { currency, total } => {
                write!(
                    formatter,
                    "trial balance in {currency} is {total}, not zero"
                )
            }
            Discrepancy::KeptHeadNotInChain { kept, found } => write!(
                formatter,
                "the head kept from an earlier export ({kept}) is not in the chain: {found}"
            ),
            Discrepancy::KeptStateDiffers { stream_id, reason } => {
                write!(formatter, "stream {stream_id}: {reason}")
            }
            Discrepancy::ReadModelRow {
                table,
                only_in,
                row,
            } => write!(formatter, "{table}: row only in the {only_in}: {row}"),
        }
    }
}

impl fmt::Display for VerificationReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chain = match &self.chain.first_broken {
            None => format!("intact ({} events)", self.chain.events_checked),
            Some(broken) => format!("BROKEN at position {}", broken.position),
        };
        writeln!(formatter, "hash chain: {chain}")?;
        writeln!(
            formatter,
            "streams folded: {} ({} events)",
            self.streams_folded, self.events_folded
        )?;
        writeln!(
            formatter,
            "kept stream states compared with the fold: {}",
            self.kept_states_compared
        )?;
        writeln!(
            formatter,
            "read models' fresh build: {} events from the refold, {} read from the log again",
            self.events_built_from_refold, self.events_built_from_log
        )?;
        for (currency, total) in &self.trial_balance_totals {
            writeln!(formatter, "trial balance {currency}: {total}")?;
        }
        for (projection, position) in &self.compared_at {
            writeln!(
                formatter,
                "read model {projection} compared at position {position}"
            )?;
        }
        if self.discrepancies.is_empty() {
            return writeln!(formatter, "no discrepancies");
        }
        writeln!(formatter, "{} discrepancies:", self.discrepancies.len())?;
        for discrepancy in &self.discrepancies {
            writeln!(formatter, "- {discrepancy}")?;
        }
        Ok(())
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationReport {
    pub chain: ChainVerification,
    pub events_folded: u64,
    pub streams_folded: u64,
    /// Stream rows whose kept state was compared with the fold (see `kept_states`); a row
    /// written again while verification ran may count twice.
    pub kept_states_compared: u64,
    /// Events the fresh build of the read models took from the refold's pages rather than
    /// reading the log again: all of them up to the live checkpoints, unless the refold found
    /// something wrong in a page or the live projections moved on (`scratch_feed`).
    pub events_built_from_refold: u64,
    /// Events the fresh build read from the log itself, summed over the groups of projections
    /// at one checkpoint: 0 when the refold fed it everything.
    pub events_built_from_log: u64,
    /// Per currency; all zero when the books balance.
    pub trial_balance_totals: BTreeMap<String, Decimal>,
    /// The checkpoint each live projection was compared at.
    pub compared_at: BTreeMap<String, u64>,
    pub discrepancies: Vec<Discrepancy>,
    /// How long each part took.
    pub durations: PassDurations,
}

/// The wall time of each part of [`verify`], each from its start: the chain, the refold and
/// the build share one read of the log and end about together; the comparison follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PassDurations {
    /// The hash chain.
    pub chain: Duration,
    /// The refold with its invariants and journal.
    pub fold: Duration,
    /// The fresh build of the read models and their comparison with the live ones: the
    /// whole verification.
    pub read_models: Duration,
    /// Of `read_models`, the comparison itself, with the live checkpoints locked.
    pub comparison: Duration,
}

impl VerificationReport {
    pub fn is_clean(&self) -> bool {
        self.discrepancies.is_empty()
    }
}

/// Runs every check (see the module docs).
#[tracing::instrument(skip_all)]
pub async fn verify(
    store: &EventStore,
    options: ProjectorOptions,
) -> Result<VerificationReport, ProjectionError> {
    let pool = store.pool();
    let started = Instant::now();
    let scratch = SchemaName::unique("projection_verify");
    let tables = tables_of(&Projection::ALL);
    let mut connection = pool.acquire().await?;
    create_schema(&mut connection, &scratch, &tables).await?;
    prepare_build(&mut connection, &scratch, &tables).await?;
    let checked = check_all(store, options, &scratch, &tables).await;
    drop_schema(&mut connection, &scratch).await?;
    let (
        CheckedLog {
            chain,
            chain_time,
            folded,
            fold_time,
        },
        fed,
        Compared {
            compared_at,
            rows,
            comparison,
            built_from_log,
        },
    ) = checked?;
    let read_models = started.elapsed();
    let mut discrepancies = Vec::new();
    if let Some(broken) = &chain.first_broken {
        discrepancies.push(Discrepancy::ChainBroken {
            position: broken.position,
            reason: broken.reason.clone(),
        });
    }
    discrepancies.extend(folded.discrepancies);
    let totals: BTreeMap<String, Decimal> = folded
        .trial_balance
        .totals_by_currency()
        .into_iter()
        .map(|(currency, total)| (currency.code().to_owned(), total))
        .collect();
    for (currency, total) in &totals {
        if !total.is_zero() {
            discrepancies.push(Discrepancy::TrialBalanceNotZero {
                currency: currency.clone(),
                total: *total,
            });
        }
    }
    discrepancies.extend(rows);
    Ok(VerificationReport {
        chain,
        events_folded: folded.events,
        streams_folded: folded.streams,
        kept_states_compared: folded.kept_states_compared,
        events_built_from_refold: fed,
        events_built_from_log: built_from_log,
        trial_balance_totals: totals,
        compared_at,
        discrepancies,
        durations: PassDurations {
            chain: chain_time,
            fold: fold_time,
            read_models,
            comparison,
        },
    })
}

/// One recorded `ledger verify` run (table `chain_verifications`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRecord {
    pub verified_at: chrono::DateTime<chrono::Utc>,
    pub through_position: u64,
    pub events_checked: u64,
    pub discrepancies: u64,
    pub first_discrepancy: Option<String>,
    pub expected_head: Option<String>,
}

/// Records a verification's outcome, for the console's audit page.
#[tracing::instrument(skip_all)]
pub async fn record_verification(
    pool: &PgPool,
    report: &VerificationReport,
    expected_head: Option<LogHead>,
) -> Result<(), ProjectionError> {
    let first: Option<String> = report
        .discrepancies
        .first()
        .map(|discrepancy| discrepancy.to_string().chars().take(2000).collect());
    sqlx::query!(
        r#"INSERT INTO chain_verifications
               (through_position, events_checked, discrepancies, first_discrepancy, expected_head)
           VALUES ($1, $2, $3, $4, $5)"#,
        to_stored(report.chain.last_intact_position)?,
        to_stored(report.chain.events_checked)?,
        to_stored(report.discrepancies.len() as u64)?,
        first,
        expected_head.map(|head| head.to_string()),
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The latest recorded verification, if any was.
#[tracing::instrument(skip_all)]
pub async fn last_verification(
    pool: &PgPool,
) -> Result<Option<VerificationRecord>, ProjectionError> {
    let row = sqlx::query!(
        r#"SELECT verified_at, through_position, events_checked, discrepancies,
                  first_discrepancy, expected_head
           FROM chain_verifications ORDER BY id DESC LIMIT 1"#
    )
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(VerificationRecord {
            verified_at: row.verified_at,
            through_position: from_stored(row.through_position)?,
            events_checked: from_stored(row.events_checked)?,
            discrepancies: from_stored(row.discrepancies)?,
            first_discrepancy: row.first_discrepancy,
            expected_head: row.expected_head,
        })
    })
    .transpose()
}

/// Whether a head kept from an earlier export (`ledger verify --expect-head`) is still in the
/// chain: the event at its position carries its hash. With the chain intact, that proves
/// nothing the auditor saw was rewritten or cut since.
pub async fn check_kept_head(
    store: &EventStore,
    kept: LogHead,
) -> Result<Option<Discrepancy>, ProjectionError> {
    let page = store.read_all(kept.last_position, 1).await?;
    let found = match page.first() {
        Some(event) if event.position == kept.last_position && event.hash == kept.last_hash => {
            return Ok(None)
        }
        Some(event) if event.position == kept.last_position => format!(
            "the event at position {} has hash {}",
            event.position,
            hex::encode(event.hash)
        ),
        _ => format!("the log holds no event at position {}", kept.last_position),
    };
    Ok(Some(Discrepancy::KeptHeadNotInChain { kept, found }))
}

/// A pass of [`verify`] on a task of its own, stopped if `verify` returns (an error of
/// another pass) before it is joined.
struct Task<T>(tokio::task::JoinHandle<T>);

impl<T: Send + 'static> Task<T> {
    fn spawn(future: impl std::future::Future<Output = T> + Send + 'static) -> Self {
        Task(tokio::spawn(future))
    }

    async fn join(mut self) -> Result<T, ProjectionError> {
        match (&mut self.0).await {
            Ok(value) => Ok(value),
            // A panic in a pass is a bug: it goes on as the panic it was.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(ProjectionError::TaskStopped(error.to_string())),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Folded {
    events: u64,
    streams: u64,
    kept_states_compared: u64,
    trial_balance: TrialBalance,
    discrepancies: Vec<Discrepancy>,
}

/// What [`check_log`] found, and how long its two checks took.
struct CheckedLog {
    chain: ChainVerification,
    chain_time: Duration,
    folded: Folded,
    fold_time: Duration,
}

/// A page of the log as the pipeline passes it on: the first error ends it.
type Page = Result<Vec<RecordedEvent>, ProjectionError>;

/// Checks the log and builds the scratch read models from it, then compares them with the
/// live ones. Also returns how many events the build took from the refold (`scratch_feed`).
async fn check_all(
    store: &EventStore,
    options: ProjectorOptions,
    scratch: &SchemaName,
    tables: &[String],
) -> Result<(CheckedLog, u64, Compared), ProjectionError> {
    let pool = store.pool();
    let live = {
        let mut connection = pool.acquire().await?;
        checkpoint::read_all(&mut connection).await?
    };
    let targets = Targets::of(&live)?;
    let (feed, build) = ScratchFeed::start(pool, scratch, &targets, options);
    let checked = check_log(
        store.clone(),
        options.batch_size.clamp(1, VERIFY_PAGE_SIZE),
        options.state_cache_capacity,
        targets.boundaries(),
        feed,
    )
    .await?;
    let fed = build.join().await??;
    // Whatever the feed did not build (the live projections moved on, or the refold found a
    // page with something wrong), the comparison's catch-up builds from the log.
    let compared = compare_with_scratch(pool, scratch, tables, options).await?;
    Ok((checked, fed, compared))
}

/// Checks the chain and refolds every stream from one read of the log (see the module docs),
/// feeding the refold's pages to the scratch build. Pages end at every `boundaries` position.
async fn check_log(
    store: EventStore,
    page_size: usize,
    capacity: usize,
    boundaries: BTreeSet<u64>,
    feed: ScratchFeed,
) -> Result<CheckedLog, ProjectionError> {
    let started = Instant::now();
    let chain = store.start_chain_check().await?;
    let (pages, _reader) = spawn_log_reader(store.clone(), page_size, boundaries);
    let (checked_pages, chain) = spawn_chain_check(chain, pages, started);
    let folded = fold_streams(store.pool().clone(), checked_pages, capacity, feed).await;
    let fold_time = started.elapsed();
    // The chain check has passed on every page: it is done, or stopped by an error.
    let (chain, chain_time) = chain.join().await?;
    let folded = folded?;
    let chain = store.finish_chain_check(chain).await?;
    Ok(CheckedLog {
        chain,
        chain_time,
        folded,
        fold_time,
    })
}

/// Reads the log in position order on a task of its own, a page ahead of the checks: the
/// server finds the next page while this process checks the ones before. At most one page
/// waits in the channel, so memory does not grow with the log.
fn spawn_log_reader(
    store: EventStore,
    page_size: usize,
    boundaries: BTreeSet<u64>,
) -> (mpsc::Receiver<Page>, Task<()>) {
    let (sender, receiver) = mpsc::channel(1);
    let reader = Task::spawn(async move {
        let mut next = 1;
        loop {
            let Ok(slot) = sender.reserve().await else {
                return;
            };
            let limit = match boundaries.range(next..).next() {
                Some(boundary) => {
                    page_size.min(usize::try_from(boundary - next + 1).unwrap_or(usize::MAX))
                }
                None => page_size,
            };
            match store.read_all(next, limit).await {
                Ok(page) => {
                    let Some(last) = page.last() else {
                        return;
                    };
                    next = last.position + 1;
                    slot.send(Ok(page));
                }
                Err(error) => {
                    slot.send(Err(error.into()));
                    return;
                }
            }
        }
    });
    (receiver, reader)
}

/// Checks each page's links on a task of its own, then passes the page on to the refold;
/// returns the check, and how long it took, once the last page is passed on.
fn spawn_chain_check(
    mut chain: ChainCheck,
    mut pages: mpsc::Receiver<Page>,
    started: Instant,
) -> (mpsc::Receiver<Page>, Task<(ChainCheck, Duration)>) {
    let (sender, receiver) = mpsc::channel(1);
    let check = Task::spawn(async move {
        while let Some(page) = pages.recv().await {
            if let Ok(events) = &page {
                chain.check(events);
            }
            let failed = page.is_err();
            if sender.send(page).await.is_err() || failed {
                break;
            }
        }
        (chain, started.elapsed())
    });
    (receiver, check)
}

/// Folds every stream from nothing in position order, as the projector does: the log comes
/// in the order it is stored, a page at a time, and a stream's state is kept between its
/// events in a bounded cache (`capacity` states); one the cache let go is
/// folded again from its earlier events, which were checked when they were first met.
/// (Reading the log in `(stream, version)` order instead held one state at a time, but fetched
/// every event from a random place in the table: at ten million events that pass took twice
/// as long as either of the others.)
async fn fold_streams(
    pool: PgPool,
    mut pages: mpsc::Receiver<Page>,
    capacity: usize,
    mut feed: ScratchFeed,
) -> Result<Folded, ProjectionError> {
    let mut fold = StreamFold {
        folded: Folded {
            events: 0,
            streams: 0,
            kept_states_compared: 0,
            trial_balance: TrialBalance::default(),
            discrepancies: Vec::new(),
        },
        states: StreamStates::new(capacity),
        poisoned: HashSet::new(),
    };
    let mut kept_states = KeptStates::default();
    let mut folded_to = 0;
    let mut connection = pool.acquire().await?;
    while let Some(rows) = pages.recv().await {
        let rows = rows?;
        let Some(first) = rows.first() else {
            continue;
        };
        let page_start = first.position;
        let mut needed = HashSet::new();
        let mut needs = Vec::new();
        for row in &rows {
            if !fold.poisoned.contains(&row.stream_id) && needed.insert(row.stream_id) {
                needs.push(StreamNeed {
                    stream_id: row.stream_id,
                    first_version: row.stream_version,
                });
            }
        }
        fold.states
            .prepare(&mut connection, &needs, page_start)
            .await?;
        let mut page_ends = HashMap::with_capacity(needs.len());
        let poisoned_before = fold.poisoned.len();
        let mut checked = Vec::with_capacity(if feed.is_feeding() { rows.len() } else { 0 });
        for row in rows {
            let (stream_id, position, occurred_at) = (row.stream_id, row.position, row.occurred_at);
            let event = fold.check(row);
            if let Some(event) = event.filter(|_| feed.is_feeding()) {
                checked.push(event);
            }
            folded_to = position;
            page_ends.insert(
                stream_id,
                PageEnd {
                    position: folded_to,
                    occurred_at,
                },
            );
        }
        if fold.poisoned.len() > poisoned_before {
            feed.stop();
        }
        feed.add_page(checked, &needs, &fold.states).await;
        // A stream stopped at a bad event has no fold to hold its row to; it is reported.
        page_ends.retain(|stream_id, _| !fold.poisoned.contains(stream_id));
        kept_states
            .check_page(
                &mut connection,
                &fold.states,
                &page_ends,
                folded_to,
                &mut fold.folded.discrepancies,
            )
            .await?;
        fold.states.evict(&HashSet::new());
    }
    let skipped = fold.poisoned.len() as u64;
    fold.folded.kept_states_compared = kept_states.compared();
    kept_states
        .finish(
            &mut connection,
            folded_to,
            skipped,
            &mut fold.folded.discrepancies,
        )
        .await?;
    Ok(fold.folded)
}

/// The refold's progress: what it found, the states it keeps, and the streams it stopped
/// folding.
struct StreamFold {
    folded: Folded,
    states: StreamStates,
    /// Streams with a bad event: their later events prove nothing more and are skipped.
    poisoned: HashSet<Uuid>,
}

impl StreamFold {
    /// Checks one event against its stream's state before it, then folds it in; returns it
    /// decoded, with its journal entry, unless its stream is stopped.
    fn check(&mut self, row: RecordedEvent) -> Option<BatchEvent> {
        self.folded.events += 1;
        let (position, version) = (row.position, row.stream_version);
        if version == 1 {
            self.folded.streams += 1;
        }
        if self.poisoned.contains(&row.stream_id) {
            return None;
        }
        let event = match decode(
            position,
            row.stream_type.as_str(),
            &row.event_type,
            row.schema_version,
            row.payload,
        ) {
            Ok(event) => event,
            Err(error) => {
                self.poison(
                    row.stream_id,
                    Discrepancy::BadEvent {
                        position,
                        reason: error.to_string(),
                    },
                );
                return None;
            }
        };
        let before = self.states.version(&row.stream_id);
        if before + 1 != version {
            self.poison(
                row.stream_id,
                Discrepancy::BadEvent {
                    position,
                    reason: format!("stream version {version} follows version {before}"),
                },
            );
            return None;
        }
        let entry = self
            .states
            .fold(row.stream_id, position, row.occurred_at, &event, |state| {
                state.journal_entry(&event)
            });
        let entry = match entry {
            Ok(Some(entry)) => {
                if !entry.is_balanced() {
                    self.folded
                        .discrepancies
                        .push(Discrepancy::UnbalancedEntry { position });
                }
                self.folded.trial_balance.post(&entry);
                Some(entry)
            }
            Ok(None) => None,
            Err(error) => {
                self.poison(
                    row.stream_id,
                    Discrepancy::InvariantBroken {
                        stream_id: row.stream_id,
                        position,
                        violation: format!("its journal entry overflows: {error}"),
                    },
                );
                return None;
            }
        };
        if let Some(StreamState::Payment(payment)) = self.states.get(&row.stream_id) {
            if let Err(violation) = invariants::check(payment) {
                self.poison(
                    row.stream_id,
                    Discrepancy::InvariantBroken {
                        stream_id: row.stream_id,
                        position,
                        violation: violation.to_string(),
                    },
                );
                return None;
            }
        }
        Some(BatchEvent {
            position,
            event_id: row.event_id,
            stream_id: row.stream_id,
            event_type: row.event_type,
            occurred_at: row.occurred_at,
            recorded_at: row.recorded_at,
            event,
            entry,
            state_after: None,
        })
    }

    fn poison(&mut self, stream_id: Uuid, discrepancy: Discrepancy) {
        self.folded.discrepancies.push(discrepancy);
        self.poisoned.insert(stream_id);
    }
}

/// What the comparison found, and at which checkpoints.
struct Compared {
    compared_at: BTreeMap<String, u64>,
    rows: Vec<Discrepancy>,
    /// How long the comparison took.
    comparison: Duration,
    /// Events the build applied from its own read of the log, summed over its projections'
    /// groups: what the refold's pages did not feed it.
    built_from_log: u64,
}

async fn compare_with_scratch(
    pool: &PgPool,
    scratch: &SchemaName,
    tables: &[String],
    options: ProjectorOptions,
) -> Result<Compared, ProjectionError> {
    // The scratch build first catches up, unlocked, with what the live projections did while
    // the log was checked. Then their checkpoints are locked, so that they wait, and the
    // little they did meanwhile is built too. (Waiting instead for the live projections to
    // stand still between a build and the lock, five times at most, failed most verifications
    // of a ledger taking traffic: its projector moves every second.)
    let live = {
        let mut connection = pool.acquire().await?;
        checkpoint::read_all(&mut connection).await?
    };
    let mut built_from_log = build_scratch_to(pool, scratch, &live, options).await?;
    // Comparing every row of a long log's read models takes longer than the statement
    // timeout.
    let mut transaction = ledger_store::begin_unbounded_transaction(pool).await?;
    let names: Vec<String> = live.keys().cloned().collect();
    let locked = checkpoint::lock(&mut transaction, &names).await?;
    if locked != live {
        built_from_log += build_scratch_to(pool, scratch, &locked, options).await?;
    }
    let started = Instant::now();
    let rows = sqlx::query!(
        r#"SELECT table_name AS "table_name!", only_in AS "only_in!", row_data AS "row_data!"
           FROM projection_compare_tables('public', $1, $2, $3)"#,
        scratch.as_str(),
        tables,
        MAX_ROWS_REPORTED,
    )
    .fetch_all(&mut *transaction)
    .await?;
    let comparison = started.elapsed();
    transaction.rollback().await?;
    let discrepancies = rows
        .into_iter()
        .map(|row| Discrepancy::ReadModelRow {
            table: row.table_name,
            only_in: if row.only_in == "public" {
                "live".to_owned()
            } else {
                "fresh fold".to_owned()
            },
            row: row.row_data,
        })
        .collect();
    Ok(Compared {
        compared_at: locked,
        rows: discrepancies,
        comparison,
        built_from_log,
    })
}

/// Brings each scratch projection to the live checkpoint of the same projection, reading the
/// log from the scratch checkpoint on; returns the events applied.
async fn build_scratch_to(
    pool: &PgPool,
    scratch: &SchemaName,
    live: &BTreeMap<String, u64>,
    options: ProjectorOptions,
) -> Result<u64, ProjectionError> {
    let mut applied = 0;
    for (position, projections) in Targets::of(live)?.groups() {
        let mut projector =
            Projector::for_build(pool.clone(), scratch.clone(), projections, options);
        applied += projector.catch_up(Some(*position)).await?;
    }
    Ok(applied)
}
