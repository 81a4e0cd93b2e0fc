//! The fresh build of the read models, fed by the refold instead of reading and folding the
//! log a second time: the refold decodes and folds every event anyway, so the pages it checked
//! become the build's batches (the events with their journal entries, and the touched streams'
//! states after them), which a writer task applies to the scratch schema through the
//! projector's own write path, up to each projection's live checkpoint.
//!
//! Only a page in which the refold found nothing wrong is fed: a stream it stops folding (an
//! event that does not decode or follow its predecessor, a broken invariant) would leave the
//! build without that stream's state, where a fresh projector folds on regardless. From such a
//! page on, nothing more is fed, and the comparison's catch-up builds the rest from the log
//! as a projector does (`build_scratch_to`): the result is the same build, only slower.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgPool;
use tokio::sync::mpsc;

use super::Task;
use crate::batch::{Batch, BatchEvent};
use crate::error::ProjectionError;
use crate::projection::Projection;
use crate::projector::{Projector, ProjectorOptions};
use crate::schema::SchemaName;
use crate::stream_states::{StreamNeed, StreamStates};

/// The positions a build of each projection must stop at: the live checkpoints read before
/// the log, each projection built to its own.
pub(super) struct Targets(BTreeMap<u64, Vec<Projection>>);

impl Targets {
    pub(super) fn of(live: &BTreeMap<String, u64>) -> Result<Targets, ProjectionError> {
        let mut groups: BTreeMap<u64, Vec<Projection>> = BTreeMap::new();
        for (name, position) in live {
            if *position > 0 {
                groups.entry(*position).or_default().push(name.parse()?);
            }
        }
        Ok(Targets(groups))
    }

    /// Each target with the projections built to it.
    pub(super) fn groups(&self) -> impl Iterator<Item = (&u64, &Vec<Projection>)> {
        self.0.iter()
    }

    /// The positions pages must end at, so that a page is wholly within or beyond each target.
    pub(super) fn boundaries(&self) -> BTreeSet<u64> {
        self.0.keys().copied().collect()
    }
}

/// The refold's side of the feed: it gathers checked pages into batches of the build's size.
pub(super) struct ScratchFeed {
    pending: Batch,
    batch_size: usize,
    boundaries: BTreeSet<u64>,
    /// `None` once feeding stopped: past the last target, after a page with something wrong,
    /// or when the writer has stopped.
    sender: Option<mpsc::Sender<Batch>>,
}

impl ScratchFeed {
    /// Starts the writer task of a build of `scratch` to `targets`; the feed ends when the
    /// last target is reached or [`ScratchFeed::stop`] is called, and the task returns.
    pub(super) fn start(
        pool: &PgPool,
        scratch: &SchemaName,
        targets: &Targets,
        options: ProjectorOptions,
    ) -> (ScratchFeed, Task<Result<u64, ProjectionError>>) {
        let (sender, batches) = mpsc::channel(1);
        let builds: Vec<(u64, Projector)> = targets
            .groups()
            .map(|(target, projections)| {
                let build =
                    Projector::for_build(pool.clone(), scratch.clone(), projections, options);
                (*target, build)
            })
            .collect();
        let writer = Task::spawn(write_batches(batches, builds));
        let feed = ScratchFeed {
            pending: Batch::default(),
            batch_size: options.batch_size.max(1),
            boundaries: targets.boundaries(),
            sender: (!targets.0.is_empty()).then_some(sender),
        };
        (feed, writer)
    }

    /// Whether pages are still wanted.
    pub(super) fn is_feeding(&self) -> bool {
        self.sender.is_some()
    }

    /// Nothing more is fed: the page at hand had something wrong.
    pub(super) fn stop(&mut self) {
        self.sender = None;
        self.pending = Batch::default();
    }

    /// Adds a page the refold checked and found nothing wrong in, with the states its streams
    /// (`streams`, the page's) are left in; sends the batch once it is full or the page ends at
    /// a target.
    pub(super) async fn add_page(
        &mut self,
        events: Vec<BatchEvent>,
        streams: &[StreamNeed],
        states: &StreamStates,
    ) {
        if self.sender.is_none() {
            return;
        }
        let Some(page_last) = events.last().map(|event| event.position) else {
            return;
        };
        if self.pending.events.is_empty() {
            // Sized once for the whole batch: grown by doubling, a batch of 50,000 events
            // (about 37 MB) was copied into fresh pages again and again.
            self.pending
                .events
                .reserve_exact(self.batch_size + events.len());
        }
        self.pending.events.extend(events);
        for stream in streams {
            self.pending
                .keep_state(stream.stream_id, states.get(&stream.stream_id));
        }
        let at_target = self.boundaries.contains(&page_last);
        if !at_target && self.pending.events.len() < self.batch_size {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let sent = match &self.sender {
            Some(sender) => sender.send(batch).await.is_ok(),
            None => false,
        };
        let past_last_target = self.boundaries.last().is_none_or(|last| page_last >= *last);
        if !sent || past_last_target {
            self.sender = None;
        }
    }
}

/// Writes each batch to every build whose target it does not pass; returns how many events
/// were written (to one build or more).
async fn write_batches(
    mut batches: mpsc::Receiver<Batch>,
    builds: Vec<(u64, Projector)>,
) -> Result<u64, ProjectionError> {
    let mut written = 0;
    while let Some(batch) = batches.recv().await {
        let last = batch.last_position();
        let mut taken = false;
        for (_, build) in builds.iter().filter(|(target, _)| last <= *target) {
            // A gap (a checkpoint moved behind the build's back) cannot be filled from here;
            // the comparison's catch-up reads the log from that checkpoint.
            if build.write(&batch).await?.is_none() {
                return Ok(written);
            }
            taken = true;
        }
        if taken {
            written += batch.events.len() as u64;
        }
    }
    Ok(written)
}
