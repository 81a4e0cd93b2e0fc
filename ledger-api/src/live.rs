//! The log as it grows, for many subscribers at once.
//!
//! `EventStore::subscribe` keeps a pooled connection for its `LISTEN` as long as it runs, and
//! the pool is small (the binary opens a few dozen connections): one store subscription per GraphQL
//! subscription would let a few dozen clients starve every request. So one follower task reads
//! the log for everyone and fans each event out through a broadcast channel, and a subscriber
//! reads from the store itself only to catch up (its history, or what it missed when it fell
//! behind the channel).
//!
//! Delivery goes by position, never by trust in the channel: a subscriber hands out an event
//! only when it is the next position it owes, skips what it already has, and reads the store
//! whenever the channel shows it a gap. Its receiver exists before its first read, so whatever
//! commits after that read reaches it through the channel; no event is skipped or repeated,
//! however reads and broadcasts interleave.
//!
//! The follower runs while anyone listens and stops when the last subscriber has gone, so an
//! idle server holds no connection for it.
//!
//! With standbys (`crate::replicas`), the follower and the catch-up reads read a standby in
//! rotation. A standby accepts no `LISTEN`, so the follower polls there
//! ([`ROUTED_POLL_INTERVAL`]); a standby's log is a gap-free prefix of the primary's, so
//! following it loses nothing, and a read that fails there is read again on the primary. A
//! catch-up read after a gap goes only to a standby known to have replayed up to the gap
//! (else the primary): the events before the gap exist, and a lagging standby must not
//! answer "nothing yet" for them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex as StdMutex};

use futures::Stream;
use ledger_store::{EventStore, LogReader, RecordedEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, Mutex, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::replicas::ReadPools;

/// Subscriptions the process serves at once, over all connections; more are UNAVAILABLE.
/// Each costs little while live, but a catch-up reads from the shared pool.
pub const MAX_SUBSCRIPTIONS: usize = 256;
/// Subscriptions one websocket connection may hold at once.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 16;
/// Subscriptions one API key may hold at once, over all its connections: a quarter of the
/// process's places, so that one key (a leaked one, a client in a reconnect loop) cannot take
/// every place from the others.
pub const MAX_SUBSCRIPTIONS_PER_KEY: usize = MAX_SUBSCRIPTIONS / 4;
/// Events the channel keeps for a slow subscriber; one further behind reads them from the store.
const FANOUT_CAPACITY: usize = 1_024;
/// Events per catch-up read: bounds what one subscriber holds in memory.
const CATCH_UP_PAGE: usize = 100;
/// How often the follower reads a standby for new events when it found none.
const ROUTED_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);
/// Events per follower read on a standby.
const ROUTED_FOLLOW_PAGE: usize = 1_000;

type Shared = Arc<RecordedEvent>;

/// Cheap to clone; clones share the follower and the count of subscriptions.
#[derive(Clone)]
pub struct LiveLog {
    inner: Arc<Inner>,
}

struct Inner {
    store: EventStore,
    reads: ReadPools,
    /// The running follower's channel. Weak, so that it closes when the follower stops for
    /// any reason, and its subscribers notice and ask for a new one.
    follower: Mutex<Option<broadcast::WeakSender<Shared>>>,
    slots: Arc<Semaphore>,
    keys: KeyPlaces,
}

/// The subscriptions of one websocket connection, counted against
/// [`MAX_SUBSCRIPTIONS_PER_CONNECTION`], and the key it was opened with, whose subscriptions
/// are counted against [`MAX_SUBSCRIPTIONS_PER_KEY`].
#[derive(Clone)]
pub struct ConnectionSlots {
    slots: Arc<Semaphore>,
    key_id: Uuid,
}

impl ConnectionSlots {
    pub fn new(key_id: Uuid) -> ConnectionSlots {
        ConnectionSlots {
            slots: Arc::new(Semaphore::new(MAX_SUBSCRIPTIONS_PER_CONNECTION)),
            key_id,
        }
    }
}

/// Subscriptions held per API key. Entries exist only while a key holds one, so the map is
/// as large as the number of keys subscribed now, never the number of keys ever seen.
#[derive(Clone, Default)]
struct KeyPlaces(Arc<StdMutex<HashMap<Uuid, usize>>>);

/// One of a key's places, given back when dropped.
struct KeyPlace {
    places: KeyPlaces,
    key_id: Uuid,
}

impl KeyPlaces {
    fn take(&self, key_id: Uuid) -> ApiResult<KeyPlace> {
        let mut held = self.lock();
        let count = held.entry(key_id).or_default();
        if *count >= MAX_SUBSCRIPTIONS_PER_KEY {
            return Err(ApiError::validation(
                "subscription",
                format!(
                    "an API key may hold at most {MAX_SUBSCRIPTIONS_PER_KEY} subscriptions at \
                     once, over all its connections; complete one first"
                ),
            ));
        }
        *count += 1;
        Ok(KeyPlace {
            places: self.clone(),
            key_id,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, usize>> {
        // A count is updated in one step, so a panic elsewhere cannot leave it half-written.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for KeyPlace {
    fn drop(&mut self) {
        let mut held = self.places.lock();
        if let Some(count) = held.get_mut(&self.key_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.key_id);
            }
        }
    }
}

/// A subscription's place in every limit, given back when its stream is dropped.
pub struct Slot {
    _process: OwnedSemaphorePermit,
    _connection: Option<(OwnedSemaphorePermit, KeyPlace)>,
}

impl LiveLog {
    /// Following the log on the store's own pool.
    pub fn new(store: EventStore) -> LiveLog {
        let reads = ReadPools::primary_only(store.pool().clone());
        LiveLog::with_reads(store, reads)
    }

    /// Following the log where `reads` sends reads: a standby in rotation, else the primary.
    pub fn with_reads(store: EventStore, reads: ReadPools) -> LiveLog {
        LiveLog {
            inner: Arc::new(Inner {
                store,
                reads,
                follower: Mutex::new(None),
                slots: Arc::new(Semaphore::new(MAX_SUBSCRIPTIONS)),
                keys: KeyPlaces::default(),
            }),
        }
    }

    /// A place for one more subscription, or an error saying which limit was reached. A
    /// websocket's subscription counts against its connection's and its key's limits too.
    pub fn reserve(&self, connection: Option<&ConnectionSlots>) -> ApiResult<Slot> {
        let connection = connection
            .map(|connection| {
                let permit = Arc::clone(&connection.slots)
                    .try_acquire_owned()
                    .map_err(|_| {
                        ApiError::validation(
                            "subscription",
                            format!(
                                "a connection may hold at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} \
                                 subscriptions; complete one, or open another connection"
                            ),
                        )
                    })?;
                Ok::<_, ApiError>((permit, self.inner.keys.take(connection.key_id)?))
            })
            .transpose()?;
        let process = Arc::clone(&self.inner.slots)
            .try_acquire_owned()
            .map_err(|_| {
                ApiError::Unavailable(format!(
                    "all {MAX_SUBSCRIPTIONS} subscription places are taken"
                ))
            })?;
        Ok(Slot {
            _process: process,
            _connection: connection,
        })
    }

    /// Subscriptions that the key `key_id` holds now, over all its connections.
    pub fn subscriptions_of(&self, key_id: Uuid) -> usize {
        self.inner.keys.lock().get(&key_id).copied().unwrap_or(0)
    }

    /// Subscriptions running now, over all connections.
    pub fn subscriptions(&self) -> usize {
        MAX_SUBSCRIPTIONS - self.inner.slots.available_permits()
    }

    /// Whether the follower task is running (it stops when nobody listens).
    pub async fn is_following(&self) -> bool {
        self.inner
            .follower
            .lock()
            .await
            .as_ref()
            .and_then(broadcast::WeakSender::upgrade)
            .is_some()
    }

    /// Every event from `from_position` on, in position order, forever: first what is
    /// recorded, then each event as it commits. After an error the stream ends (resume from
    /// the position after the last one received). Holding `slot` until it is dropped.
    pub fn follow(
        &self,
        from_position: u64,
        slot: Slot,
    ) -> impl Stream<Item = ApiResult<Shared>> + Send + 'static {
        let subscriber = Subscriber {
            live: self.clone(),
            next_position: from_position.max(1),
            receiver: None,
            buffer: VecDeque::new(),
            caught_up: false,
            must_reach: 0,
            _slot: slot,
        };
        futures::stream::unfold(Some(subscriber), |subscriber| async move {
            let mut subscriber = subscriber?;
            match subscriber.next().await {
                Ok(event) => Some((Ok(event), Some(subscriber))),
                Err(error) => Some((Err(error), None)),
            }
        })
    }

    /// A receiver of the follower's channel, starting the follower when none runs, and the
    /// primary's head when it began receiving: what the channel will not bring lies at or
    /// before it, so a catch-up read must reach at least that far.
    async fn receiver(&self) -> ApiResult<(broadcast::Receiver<Shared>, u64)> {
        let mut follower = self.inner.follower.lock().await;
        if let Some(sender) = follower.as_ref().and_then(broadcast::WeakSender::upgrade) {
            let receiver = sender.subscribe();
            drop(follower);
            let head = self.inner.store.head().await?.last_position;
            return Ok((receiver, head));
        }
        // The head is read before the caller's first catch-up read, so everything that read
        // cannot see comes after the head and reaches the caller through the channel.
        let head = self.inner.store.head().await?.last_position;
        let (sender, receiver) = broadcast::channel(FANOUT_CAPACITY);
        *follower = Some(sender.downgrade());
        tokio::spawn(run_follower(Arc::clone(&self.inner), sender, head + 1));
        Ok((receiver, head))
    }
}

/// Reads the log from `from_position` and broadcasts every event until nobody listens.
async fn run_follower(inner: Arc<Inner>, sender: broadcast::Sender<Shared>, from_position: u64) {
    let events: std::pin::Pin<Box<dyn Stream<Item = ApiResult<RecordedEvent>> + Send>> =
        if inner.reads.has_standbys() {
            Box::pin(follow_routed(inner.reads.clone(), from_position))
        } else {
            Box::pin(futures::StreamExt::map(
                inner.store.subscribe(from_position),
                |item| item.map_err(ApiError::from),
            ))
        };
    futures::pin_mut!(events);
    loop {
        tokio::select! {
            item = futures::StreamExt::next(&mut events) => match item {
                // Nobody listening at this instant is not an error: `closed` below decides.
                Some(Ok(event)) => drop(sender.send(Arc::new(event))),
                // The store's subscription retries by itself; subscribers wait meanwhile.
                Some(Err(error)) => {
                    tracing::warn!(%error, "the live log could not read the log; retrying");
                }
                None => return,
            },
            () = sender.closed() => {
                // A newcomer subscribes under this lock, so once no receiver is left here,
                // none can appear before the slot is emptied.
                let mut follower = inner.follower.lock().await;
                if sender.receiver_count() == 0 {
                    *follower = None;
                    return;
                }
            }
        }
    }
}

/// Every event from `from_position` on, read where `reads` sends reads, polling: errors are
/// yielded and the reading goes on from where it was.
fn follow_routed(
    reads: ReadPools,
    from_position: u64,
) -> impl Stream<Item = ApiResult<RecordedEvent>> + Send + 'static {
    let state = (reads, from_position.max(1), VecDeque::new());
    futures::stream::unfold(state, |(reads, mut next, mut buffer)| async move {
        loop {
            if let Some(event) = buffer.pop_front() {
                let event: RecordedEvent = event;
                next = event.position + 1;
                return Some((Ok(event), (reads, next, buffer)));
            }
            let page = reads
                .any()
                .run(|pool| async move {
                    Ok(LogReader::new(pool)
                        .read_all(next, ROUTED_FOLLOW_PAGE)
                        .await?)
                })
                .await;
            match page {
                Ok(page) if !page.is_empty() => buffer.extend(page),
                Ok(_) => tokio::time::sleep(ROUTED_POLL_INTERVAL).await,
                Err(error) => {
                    tokio::time::sleep(ROUTED_POLL_INTERVAL).await;
                    return Some((Err(error), (reads, next, buffer)));
                }
            }
        }
    })
}

struct Subscriber {
    live: LiveLog,
    /// The position owed next: everything before it has been handed out.
    next_position: u64,
    receiver: Option<broadcast::Receiver<Shared>>,
    buffer: VecDeque<Shared>,
    /// Whether the last read from the store came back empty, so the channel can take over.
    caught_up: bool,
    /// How far the log is known to reach (the head when the receiver was taken, or just
    /// before an event the channel brought after a gap): catch-up reads go only where the log
    /// reaches that far, so that a lagging standby does not answer "nothing yet" for them.
    must_reach: u64,
    _slot: Slot,
}

impl Subscriber {
    async fn next(&mut self) -> ApiResult<Shared> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.next_position = event.position + 1;
                return Ok(event);
            }
            let Some(receiver) = self.receiver.as_mut() else {
                let (receiver, head) = self.live.receiver().await?;
                self.receiver = Some(receiver);
                self.must_reach = self.must_reach.max(head);
                self.caught_up = false;
                continue;
            };
            if !self.caught_up {
                let from = self.next_position;
                let page = self
                    .live
                    .inner
                    .reads
                    .having_replayed(self.must_reach)
                    .run(|pool| async move {
                        Ok(LogReader::new(pool).read_all(from, CATCH_UP_PAGE).await?)
                    })
                    .await?;
                self.caught_up = page.is_empty();
                self.buffer.extend(page.into_iter().map(Arc::new));
                continue;
            }
            match receiver.recv().await {
                Ok(event) if event.position < self.next_position => {}
                Ok(event) if event.position == self.next_position => {
                    self.next_position += 1;
                    return Ok(event);
                }
                // A gap: the events before this one are in the store.
                Ok(event) => {
                    self.must_reach = self.must_reach.max(event.position - 1);
                    self.caught_up = false;
                }
                Err(RecvError::Lagged(_)) => self.caught_up = false,
                Err(RecvError::Closed) => self.receiver = None,
            }
        }
    }
}
