//! Folded stream states kept between commands and queries.
//!
//! A stream's events never change once written (the log refuses UPDATE and DELETE), so a
//! state folded from versions 1..=v stays the true fold of that prefix forever, whoever
//! writes after it and in whichever process. Loading a stream is then: take the kept fold,
//! read only the events after its version (usually none: an index probe that returns no
//! row), fold those. No entry is ever wrong, only behind; so nothing needs invalidating and
//! two processes can each keep their own. A command skips even that read: it appends at the
//! kept fold's version, and the log refuses the append if the fold is behind
//! (`CommandHandler`'s turn).
//!
//! Bounded by two generations: entries go into the young map; when it is full the old map is
//! dropped and the young one becomes old. A hit in the old map moves the entry back to the
//! young one, so streams in use stay and the rest age out (an approximation of LRU without
//! per-read bookkeeping).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::RecordedEvent;

/// Entries per generation; at most twice as many are kept.
pub const STATES_PER_GENERATION: usize = 8_192;

/// What the API needs of a stream besides its state: its version and times, without keeping
/// its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamSummary {
    /// How many events the stream has (its last `stream_version`); 0 for no stream.
    pub version: u64,
    pub first_occurred_at: Option<DateTime<Utc>>,
    pub last_occurred_at: Option<DateTime<Utc>>,
    /// Log position of the stream's last event; 0 for no stream.
    pub last_position: u64,
}

impl StreamSummary {
    /// The summary after `events`, the stream's next events in version order.
    pub fn after(mut self, events: &[RecordedEvent]) -> StreamSummary {
        if let (Some(first), Some(last)) = (events.first(), events.last()) {
            self.first_occurred_at = self.first_occurred_at.or(Some(first.occurred_at));
            self.last_occurred_at = Some(last.occurred_at);
            self.version = last.stream_version;
            self.last_position = last.position;
        }
        self
    }
}

/// A stream's state folded up to `summary.version`.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded<State> {
    pub state: State,
    pub summary: StreamSummary,
}

type Generation = HashMap<Uuid, Arc<dyn Any + Send + Sync>>;

#[derive(Default)]
struct Generations {
    young: Generation,
    old: Generation,
}

#[derive(Default)]
pub(crate) struct StateCache {
    generations: Mutex<Generations>,
}

impl StateCache {
    /// The kept fold of a stream, if any, as `State` (a stream id names one kind of stream;
    /// a fold of another type is treated as absent).
    pub fn get<State>(&self, stream_id: Uuid) -> Option<Folded<State>>
    where
        State: Clone + Send + Sync + 'static,
    {
        let mut generations = self.lock();
        let entry = match generations.young.get(&stream_id) {
            Some(entry) => Arc::clone(entry),
            None => {
                let entry = generations.old.remove(&stream_id)?;
                generations.insert_young(stream_id, Arc::clone(&entry));
                entry
            }
        };
        drop(generations);
        entry.downcast_ref::<Folded<State>>().cloned()
    }

    /// Keeps a fold unless a fold of a later version is kept already (two loads can race).
    pub fn put<State>(&self, stream_id: Uuid, folded: Folded<State>)
    where
        State: Clone + Send + Sync + 'static,
    {
        let mut generations = self.lock();
        let newer_kept = generations
            .young
            .get(&stream_id)
            .or_else(|| generations.old.get(&stream_id))
            .and_then(|entry| entry.downcast_ref::<Folded<State>>())
            .is_some_and(|kept| kept.summary.version > folded.summary.version);
        if !newer_kept {
            generations.old.remove(&stream_id);
            generations.insert_young(stream_id, Arc::new(folded));
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        let generations = self.lock();
        generations.young.len() + generations.old.len()
    }

    fn lock(&self) -> MutexGuard<'_, Generations> {
        // The maps are whole between statements, so a panic elsewhere leaves them usable.
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Generations {
    fn insert_young(&mut self, stream_id: Uuid, entry: Arc<dyn Any + Send + Sync>) {
        if self.young.len() >= STATES_PER_GENERATION && !self.young.contains_key(&stream_id) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(stream_id, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(version: u64) -> Folded<String> {
        Folded {
            state: format!("v{version}"),
            summary: StreamSummary {
                version,
                ..StreamSummary::default()
            },
        }
    }

    #[test]
    fn a_kept_fold_is_returned_as_its_own_type_only() {
        let cache = StateCache::default();
        let id = Uuid::new_v4();
        cache.put(id, folded(3));
        assert_eq!(cache.get::<String>(id), Some(folded(3)));
        assert_eq!(cache.get::<u64>(id), None);
        assert_eq!(cache.get::<String>(Uuid::new_v4()), None);
    }

    #[test]
    fn an_older_fold_never_replaces_a_newer_one() {
        let cache = StateCache::default();
        let id = Uuid::new_v4();
        cache.put(id, folded(5));
        cache.put(id, folded(4));
        assert_eq!(cache.get::<String>(id).map(|f| f.summary.version), Some(5));
        cache.put(id, folded(6));
        assert_eq!(cache.get::<String>(id).map(|f| f.summary.version), Some(6));
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_what_is_read() {
        let cache = StateCache::default();
        let kept = Uuid::new_v4();
        cache.put(kept, folded(1));
        for _ in 0..3 * STATES_PER_GENERATION {
            cache.put(Uuid::new_v4(), folded(1));
            // Read often, as a stream in use is: it survives every generation change.
            assert!(cache.get::<String>(kept).is_some());
        }
        assert!(cache.len() <= 2 * STATES_PER_GENERATION);
    }
}
