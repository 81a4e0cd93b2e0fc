//! The single writer task: group commit, pipelined.
//!
//! Every append goes through one bounded queue to one task. The task takes what is queued (up
//! to [`MAX_BATCH_REQUESTS`] requests and about [`MAX_BATCH_EVENTS`] events), plans the batch
//! without I/O (`plan`) and writes it with one statement in its own implicit transaction: one
//! round trip, one commit, one fsync for the whole batch (`batch_write`).
//!
//! Pipelining: the writer plans a batch on the state the batches before it will leave (the
//! head they end at, the stream versions and claims they write; see `known`), so it sends it
//! while they are still being written, up to [`PIPELINE_DEPTH`] batches at a time. The
//! statement inserts first and takes the head's lock last, so its inserts run while the batch
//! before it commits, and the server never waits for the writer to plan, encode and send.
//! Every assumption is checked by that statement, in the database: the head it chains onto,
//! the version each of its streams was at, and the unique keys. A batch whose assumptions do
//! not hold writes nothing, and neither does any batch behind it (they chain onto it); the
//! writer then forgets what it knew and writes those batches again, in order, on state read
//! under the lock (`fresh_batch`). A batch that reached the head's lock before the batch
//! before it (their statements run on different connections) is simply sent again.
//!
//! The writer plans ahead only while it writes alone: it starts by reading under the lock,
//! and pipelines once [`PIPELINE_WHEN_ALONE_FOR`] batches in a row found the head where it had
//! left it. A batch that finds another process's events sends it back to reading, so that
//! writers of several processes take turns under the lock instead of refusing each other's
//! pipelined batches.
//!
//! While one batch is being written, the next one gathers: it is sent once as many requests
//! wait as the last batch carried (the callers just answered compose their next request), or
//! when the batch before it finishes. With nothing in flight it lingers up to
//! [`MAX_BATCH_LINGER`] for as many.
//!
//! Ordering: the head row stays locked until the commit, and PostgreSQL makes a transaction
//! visible before it releases its locks, so the batch that writes positions N+1… can only lock
//! the head after the batch that wrote N is committed and visible. A reader therefore never
//! sees position N+1 while N is still invisible, and reading by position skips nothing.
//! Sequences would not give this (they hand out numbers in call order, commits land in
//! another).
//!
//! A conflict or reused key rejects only its own request. Should a batch fail on a constraint
//! no plan can foresee (an event id already in the log), each request is written again
//! alone, so one bad request cannot sink the others.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::batch_write::{write_plan, Refusal};
use crate::connections::ready;
use crate::error::StoreError;
use crate::event::{AppendOutcome, AppendResult, RecordedEvent};
use crate::fresh_batch::write_fresh_batch;
use crate::hash_chain::truncate_to_microseconds;
use crate::known::Known;
use crate::plan::{plan_batch, Decision, Head, Plan};
use crate::validate::PreparedRequest;

/// Requests waiting for the writer; senders wait when it is full (back-pressure).
pub const WRITER_QUEUE_CAPACITY: usize = 4_096;
/// Most requests written in one transaction.
pub const MAX_BATCH_REQUESTS: usize = 512;
/// A batch stops taking requests once it holds this many events.
pub const MAX_BATCH_EVENTS: usize = 4_096;
/// Longest wait for more requests, with nothing in flight, before writing a batch smaller
/// than the previous one.
pub const MAX_BATCH_LINGER: Duration = Duration::from_millis(2);
/// Batches sent and not yet known to be written.
pub const PIPELINE_DEPTH: usize = 2;
/// Batches written under the lock, in a row, with no other process writing, before the
/// writer pipelines again.
pub const PIPELINE_WHEN_ALONE_FOR: usize = 16;

pub(crate) type Reply = oneshot::Sender<Result<AppendOutcome, StoreError>>;

pub(crate) struct Job {
    pub request: PreparedRequest,
    pub reply: Reply,
}

/// Starts the writer; it stops when every sender is dropped.
pub(crate) fn spawn(pool: PgPool) -> (mpsc::Sender<Job>, Arc<WriterCounters>) {
    let (sender, receiver) = mpsc::channel(WRITER_QUEUE_CAPACITY);
    let counters = Arc::new(WriterCounters::default());
    tokio::spawn(run(pool, receiver, Arc::clone(&counters)));
    (sender, counters)
}

/// Counts kept by the writer, for metrics and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    batches: AtomicU64,
    requests: AtomicU64,
    pipelined: AtomicU64,
    written_again: AtomicU64,
}

/// What the writer has done since the store started: how well group commit is batching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStatistics {
    /// Batches written: one commit each, and one more for each written again.
    pub batches: u64,
    /// Append requests answered in them.
    pub requests: u64,
    /// Batches written on the state the batches before them left, without reading it.
    pub pipelined: u64,
    /// Pipelined batches whose assumptions the database refused, written again on state
    /// read under the lock.
    pub written_again: u64,
}

impl WriterCounters {
    pub fn snapshot(&self) -> WriterStatistics {
        WriterStatistics {
            batches: self.batches.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            pipelined: self.pipelined.load(Ordering::Relaxed),
            written_again: self.written_again.load(Ordering::Relaxed),
        }
    }
}

async fn run(pool: PgPool, mut receiver: mpsc::Receiver<Job>, counters: Arc<WriterCounters>) {
    let mut writer = Writer {
        pool,
        counters: Arc::clone(&counters),
        known: None,
        written_head: None,
        alone_for: 0,
        in_flight: VecDeque::with_capacity(PIPELINE_DEPTH),
        idle_connections: Vec::with_capacity(PIPELINE_DEPTH),
    };
    let mut previous_batch_size = 1;
    loop {
        if writer.in_flight.len() >= PIPELINE_DEPTH {
            writer.complete_oldest().await;
            continue;
        }
        let next = match writer.in_flight.front_mut() {
            None => Next::Job(receiver.recv().await),
            Some(oldest) => tokio::select! {
                biased;
                () = oldest.finish() => Next::OldestFinished,
                job = receiver.recv() => Next::Job(job),
            },
        };
        let first = match next {
            Next::OldestFinished => {
                writer.complete_oldest().await;
                continue;
            }
            Next::Job(Some(job)) => job,
            Next::Job(None) => break,
        };
        let mut batch = Vec::with_capacity(previous_batch_size.max(16));
        batch.push(first);
        gather(
            &mut receiver,
            &mut batch,
            previous_batch_size,
            writer.in_flight.front_mut(),
        )
        .await;
        previous_batch_size = batch.len();
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        writer.dispatch(batch).await;
    }
    writer.drain().await;
}

enum Settled {
    Answered,
    SentAgain(InFlight),
    Unwritten(Vec<Job>),
}

enum Next {
    Job(Option<Job>),
    OldestFinished,
}

/// Adds what is queued to the batch, up to the limits. When fewer are waiting than came last
/// time, the callers just answered are likely composing their next request: wait for as
/// many, while the batch in flight is being written, or up to [`MAX_BATCH_LINGER`] with
/// nothing in flight, so one commit serves them all.
async fn gather(
    receiver: &mut mpsc::Receiver<Job>,
    batch: &mut Vec<Job>,
    expected: usize,
    mut running: Option<&mut InFlight>,
) {
    let linger_until = tokio::time::Instant::now() + MAX_BATCH_LINGER;
    let mut event_count: usize = batch.iter().map(|job| job.request.event_count()).sum();
    while batch.len() < MAX_BATCH_REQUESTS && event_count < MAX_BATCH_EVENTS {
        let job = match receiver.try_recv() {
            Ok(job) => job,
            Err(_) if batch.len() < expected => {
                let next = match running.as_deref_mut() {
                    Some(running) if !running.is_finished() => tokio::select! {
                        biased;
                        () = running.finish() => None,
                        job = receiver.recv() => job,
                    },
                    Some(_) => None,
                    None => tokio::time::timeout_at(linger_until, receiver.recv())
                        .await
                        .ok()
                        .flatten(),
                };
                match next {
                    Some(job) => job,
                    None => break,
                }
            }
            Err(_) => break,
        };
        event_count += job.request.event_count();
        batch.push(job);
    }
}

/// A batch sent to the database and not yet answered.
struct InFlight {
    jobs: Vec<Job>,
    statement: Statement,
}

enum Statement {
    /// Being written by a task of its own.
    Running(JoinHandle<Written>),
    Finished(Box<Written>),
}

/// What a batch's statement did, with its plan and, when still usable, its connection.
struct Written {
    plan: Option<Plan>,
    outcome: Result<(), StoreError>,
    connection: Option<(PgConnection, Instant)>,
}

impl InFlight {
    fn is_finished(&self) -> bool {
        !matches!(&self.statement, Statement::Running(task) if !task.is_finished())
    }

    /// Waits until the batch's statement is done; cancel-safe.
    async fn finish(&mut self) {
        if let Statement::Running(task) = &mut self.statement {
            let written = task.await.unwrap_or_else(|error| Written {
                plan: None,
                outcome: Err(StoreError::BatchFailed(format!(
                    "the batch's task failed: {error}"
                ))),
                connection: None,
            });
            self.statement = Statement::Finished(Box::new(written));
        }
    }
}

struct Writer {
    pool: PgPool,
    counters: Arc<WriterCounters>,
    /// What the log holds once every batch in flight is written; `None` when not known.
    known: Option<Known>,
    /// The head after the last batch known to be written, if this writer wrote it.
    written_head: Option<Head>,
    /// Batches in a row written under the lock that found the head where this writer had
    /// left it: no other process wrote meanwhile.
    alone_for: usize,
    in_flight: VecDeque<InFlight>,
    /// Connections kept between batches, detached from the pool (see `connections`).
    idle_connections: Vec<(PgConnection, Instant)>,
}

impl Writer {
    /// Plans the batch on the known state and sends it, or, when that state is not known or
    /// not enough, writes it under the lock once every batch in flight is answered.
    async fn dispatch(&mut self, jobs: Vec<Job>) {
        let planned = {
            let requests: Vec<&PreparedRequest> = jobs.iter().map(|job| &job.request).collect();
            self.known
                .as_ref()
                .filter(|_| self.alone_for >= PIPELINE_WHEN_ALONE_FOR)
                .and_then(|known| known.assume(&requests))
                .and_then(|assumed| {
                    let recorded_at = truncate_to_microseconds(Utc::now());
                    let plan = plan_batch(
                        assumed.head,
                        assumed.streams,
                        &assumed.claims,
                        &requests,
                        recorded_at,
                    );
                    plan.ok()
                })
        };
        // A plan that records nothing (every request rejected or replayed) has no statement
        // to check the state it was decided on: it is decided again on state read.
        let planned = planned.filter(|plan| !plan.events.is_empty());
        let (Some(plan), Some(known)) = (planned, self.known.as_mut()) else {
            self.drain().await;
            self.write_fresh_and_answer(jobs).await;
            return;
        };
        known.advance(&plan);
        let statement = Statement::Running(tokio::spawn(write_pipelined(
            self.pool.clone(),
            self.idle_connections.pop(),
            plan,
        )));
        self.in_flight.push_back(InFlight { jobs, statement });
    }

    /// Answers the oldest batch in flight once its statement is done. If it was not written,
    /// no batch behind it was either (each chains onto the one before): they are all written
    /// again, in order, under the lock.
    async fn complete_oldest(&mut self) {
        let Some(oldest) = self.in_flight.pop_front() else {
            return;
        };
        let unwritten = match self.settle(oldest, true).await {
            Settled::Answered => return,
            Settled::SentAgain(batch) => {
                self.in_flight.push_front(batch);
                return;
            }
            Settled::Unwritten(jobs) => jobs,
        };
        let mut again = vec![unwritten];
        while let Some(next) = self.in_flight.pop_front() {
            if let Settled::Unwritten(jobs) = self.settle(next, false).await {
                again.push(jobs);
            }
        }
        for jobs in again {
            self.counters.written_again.fetch_add(1, Ordering::Relaxed);
            self.write_fresh_and_answer(jobs).await;
        }
    }

    /// Answers a batch if its statement wrote it. A batch that reached the head before the
    /// one before it is sent again when that one was written; otherwise its jobs come back.
    async fn settle(&mut self, mut batch: InFlight, earlier_written: bool) -> Settled {
        batch.finish().await;
        let Statement::Finished(written) = batch.statement else {
            return Settled::Unwritten(batch.jobs);
        };
        let Written {
            plan,
            outcome,
            connection,
        } = *written;
        if let Some(connection) = connection {
            self.idle_connections.push(connection);
        }
        match (outcome, plan) {
            (Ok(()), Some(plan)) => {
                self.counters.pipelined.fetch_add(1, Ordering::Relaxed);
                self.written_head = Some(plan.head);
                answer(&self.pool, batch.jobs, plan).await;
                Settled::Answered
            }
            (Err(error), Some(plan))
                if earlier_written && Refusal::of(&error) == Some(Refusal::Early) =>
            {
                batch.statement = Statement::Running(tokio::spawn(write_pipelined(
                    self.pool.clone(),
                    self.idle_connections.pop(),
                    plan,
                )));
                Settled::SentAgain(batch)
            }
            (Ok(()), None) => Settled::Unwritten(batch.jobs),
            (Err(error), _) => {
                tracing::debug!(%error, "a pipelined batch failed; writing it under the lock");
                Settled::Unwritten(batch.jobs)
            }
        }
    }

    /// Answers every batch in flight.
    async fn drain(&mut self) {
        while !self.in_flight.is_empty() {
            self.complete_oldest().await;
        }
    }

    /// Writes a batch on state read just before, with nothing in flight.
    async fn write_fresh_and_answer(&mut self, mut batch: Vec<Job>) {
        let written = self.write_fresh(&batch).await;
        match written {
            Ok(plan) => answer(&self.pool, batch, plan).await,
            Err(StoreError::Database(sqlx::Error::Database(error))) if batch.len() > 1 => {
                tracing::warn!(%error, requests = batch.len(), "batch failed; writing each alone");
                for job in batch.drain(..) {
                    match self.write_fresh(std::slice::from_ref(&job)).await {
                        Ok(plan) => answer(&self.pool, vec![job], plan).await,
                        Err(error) => {
                            let _ = job.reply.send(Err(classify(error)));
                        }
                    }
                }
            }
            Err(error) => {
                let message = error.to_string();
                let mut jobs = batch.drain(..);
                if let Some(job) = jobs.next() {
                    let _ = job.reply.send(Err(classify(error)));
                }
                for job in jobs {
                    let _ = job
                        .reply
                        .send(Err(StoreError::BatchFailed(message.clone())));
                }
            }
        }
    }

    /// Writes under the lock, and learns from what it read whether another process writes.
    async fn write_fresh(&mut self, jobs: &[Job]) -> Result<Plan, StoreError> {
        self.known = None;
        let left_at = self.written_head.take();
        let requests: Vec<&PreparedRequest> = jobs.iter().map(|job| &job.request).collect();
        let kept = self.idle_connections.pop();
        let (written, connection) = write_fresh_batch(&self.pool, kept, &requests).await;
        if let Some(connection) = connection {
            self.idle_connections.push((connection, Instant::now()));
        }
        match &written {
            Ok(plan) => {
                self.alone_for = if left_at == Some(plan.base) {
                    self.alone_for + 1
                } else {
                    0
                };
                self.written_head = Some(plan.head);
                self.known = Some(Known::after(plan));
            }
            Err(_) => self.alone_for = 0,
        }
        written
    }
}

/// Writes a pipelined batch on a connection of its own; the connection comes back unless it
/// failed other than by the database refusing the statement.
async fn write_pipelined(
    pool: PgPool,
    kept: Option<(PgConnection, Instant)>,
    plan: Plan,
) -> Written {
    let mut connection = match ready(&pool, kept).await {
        Ok(connection) => connection,
        Err(error) => {
            return Written {
                plan: Some(plan),
                outcome: Err(error),
                connection: None,
            }
        }
    };
    let outcome = write_plan(&mut connection, &plan).await;
    let usable = matches!(
        &outcome,
        Ok(_) | Err(StoreError::Database(sqlx::Error::Database(_)))
    );
    Written {
        plan: Some(plan),
        outcome,
        connection: usable.then(|| (connection, Instant::now())),
    }
}

/// Sends each request its answer; a caller that gave up waiting is no reason to stop.
async fn answer(pool: &PgPool, jobs: Vec<Job>, plan: Plan) {
    for (job, answer) in jobs.into_iter().zip(answers(pool, plan).await) {
        let _ = job.reply.send(answer);
    }
}

/// Turns the constraint errors a plan cannot foresee into typed ones.
fn classify(error: StoreError) -> StoreError {
    if let StoreError::Database(sqlx::Error::Database(database_error)) = &error {
        if database_error.constraint() == Some("events_event_id_unique") {
            return StoreError::EventIdAlreadyRecorded;
        }
    }
    error
}

/// One answer per request, reading back the events of replays of earlier batches.
async fn answers(pool: &PgPool, plan: Plan) -> Vec<Result<AppendOutcome, StoreError>> {
    // Only results that a later request of the batch replays are kept aside (cloned).
    let replayed: HashSet<usize> = plan
        .decisions
        .iter()
        .filter_map(|decision| match decision {
            Decision::ReplayInBatch { request_index } => Some(*request_index),
            _ => None,
        })
        .collect();
    let mut kept: HashMap<usize, AppendResult> = HashMap::with_capacity(replayed.len());
    // Recorded ranges are disjoint and in order, so the events are moved out in one pass.
    let mut events = plan.events.into_iter();
    let mut answers = Vec::with_capacity(plan.decisions.len());
    for (request_index, decision) in plan.decisions.into_iter().enumerate() {
        let answer = match decision {
            Decision::Recorded { events: range } => {
                let recorded: Vec<RecordedEvent> = events.by_ref().take(range.len()).collect();
                let last_position = recorded.last().map_or(0, |event| event.position);
                let result = AppendResult {
                    events: recorded,
                    last_position,
                };
                if replayed.contains(&request_index) {
                    kept.insert(request_index, result.clone());
                }
                Ok(AppendOutcome::Recorded(result))
            }
            Decision::ReplayStored {
                first_position,
                last_position,
            } => crate::read::events_between(pool, first_position, last_position)
                .await
                .map(|events| {
                    AppendOutcome::Replayed(AppendResult {
                        events,
                        last_position,
                    })
                }),
            Decision::ReplayInBatch { request_index } => kept
                .get(&request_index)
                .cloned()
                .map(AppendOutcome::Replayed)
                .ok_or(StoreError::WriterStopped),
            Decision::Rejected(error) => Err(error),
        };
        answers.push(answer);
    }
    answers
}
