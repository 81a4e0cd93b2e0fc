//! Re-verifying the hash chain over a range of the stored log.

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::hash_chain::{check_link, GENESIS_HASH};
use crate::read::{events_between, head, read_all, LogHead, MAX_PAGE_SIZE};

/// The result of [`crate::EventStore::verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerification {
    pub events_checked: u64,
    /// The last position checked and found intact (0 when none was).
    pub last_intact_position: u64,
    /// The first position whose event does not link to the one before it, and why.
    pub first_broken: Option<ChainBreak>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub position: u64,
    pub reason: String,
}

impl ChainVerification {
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Checks positions `from_position..=to_position` (to the head when `None`): consecutive
/// positions, each `prev_hash` equal to the previous event's `hash`, each `hash` recomputed.
/// The event before `from_position` is trusted as the anchor; start at 1 to check everything.
///
/// Checked to the end, the chain must also reach the log head: every append moves the head in
/// the transaction that writes its events, so a chain that stops short of the head (or holds
/// another hash at its position) lost events at its end, which no link check can see.
pub(crate) async fn verify_chain(
    pool: &PgPool,
    from_position: u64,
    to_position: Option<u64>,
) -> Result<ChainVerification, StoreError> {
    // Read before the events: whatever commits meanwhile only lengthens the chain past it.
    let head_before = match to_position {
        None => Some(head(pool).await?),
        Some(_) => None,
    };
    let verification = verify_links(pool, from_position, to_position).await?;
    match head_before {
        Some(head) if verification.is_intact() => reaches_head(pool, verification, &head).await,
        _ => Ok(verification),
    }
}

/// The whole chain checked from pages of the log its caller reads anyway: `ledger verify`
/// folds the same pages, and one read of the log for both costs the server and this process
/// one pass over ten million events instead of two.
///
/// Start it with [`crate::EventStore::start_chain_check`], feed it every page from position 1
/// in order ([`ChainCheck::check`]), then end it with
/// [`crate::EventStore::finish_chain_check`]: the verdict is the one
/// [`crate::EventStore::verify_chain`] gives for `(1, None)`.
#[derive(Debug)]
pub struct ChainCheck {
    links: Links,
    /// Read before the first page: whatever commits meanwhile only lengthens the chain.
    head_before: LogHead,
}

impl ChainCheck {
    pub(crate) async fn start(pool: &PgPool) -> Result<ChainCheck, StoreError> {
        let head_before = head(pool).await?;
        Ok(ChainCheck {
            links: Links::new(1, GENESIS_HASH, None),
            head_before,
        })
    }

    /// Checks the next events of the log; once the chain is broken, the rest prove nothing
    /// and are passed over.
    pub fn check(&mut self, events: &[RecordedEvent]) {
        for event in events {
            if self.links.check(event) == Link::Stop {
                return;
            }
        }
    }

    /// The verdict, once every page was checked.
    pub(crate) async fn finish(self, pool: &PgPool) -> Result<ChainVerification, StoreError> {
        let verification = self.links.verification();
        if verification.is_intact() {
            reaches_head(pool, verification, &self.head_before).await
        } else {
            Ok(verification)
        }
    }
}

/// Whether an intact chain, checked to its end, holds the head read before it.
async fn reaches_head(
    pool: &PgPool,
    verification: ChainVerification,
    head: &LogHead,
) -> Result<ChainVerification, StoreError> {
    if head.last_position == 0 {
        return Ok(verification);
    }
    let end = verification.last_intact_position;
    if end < head.last_position {
        let reason = format!(
            "the log head is at position {} but the chain ends at {end}: events were removed \
             from the end of the log",
            head.last_position
        );
        return Ok(ChainVerification {
            first_broken: Some(ChainBreak {
                position: end + 1,
                reason,
            }),
            ..verification
        });
    }
    let at_head = events_between(pool, head.last_position, head.last_position).await?;
    if at_head.first().map(|event| event.hash) != Some(head.last_hash) {
        return Ok(ChainVerification {
            first_broken: Some(ChainBreak {
                position: head.last_position,
                reason: "the event at the log head's position does not carry the head's hash"
                    .to_owned(),
            }),
            ..verification
        });
    }
    Ok(verification)
}

/// Whether to go on checking after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Next,
    /// Broken, or past the last position asked for.
    Stop,
}

/// The links checked so far, one event at a time in position order.
#[derive(Debug)]
struct Links {
    expected_position: u64,
    expected_prev_hash: [u8; 32],
    to_position: Option<u64>,
    events_checked: u64,
    first_broken: Option<ChainBreak>,
    done: bool,
}

impl Links {
    fn new(from_position: u64, anchor_hash: [u8; 32], to_position: Option<u64>) -> Links {
        Links {
            expected_position: from_position,
            expected_prev_hash: anchor_hash,
            to_position,
            events_checked: 0,
            first_broken: None,
            done: false,
        }
    }

    fn check(&mut self, event: &RecordedEvent) -> Link {
        if self.done || self.to_position.is_some_and(|to| event.position > to) {
            self.done = true;
            return Link::Stop;
        }
        if let Some(reason) = check_link(event, self.expected_position, &self.expected_prev_hash) {
            self.first_broken = Some(ChainBreak {
                position: event.position.min(self.expected_position),
                reason,
            });
            self.done = true;
            return Link::Stop;
        }
        self.events_checked += 1;
        self.expected_prev_hash = event.hash;
        self.expected_position += 1;
        Link::Next
    }

    fn verification(self) -> ChainVerification {
        ChainVerification {
            events_checked: self.events_checked,
            last_intact_position: self.expected_position - 1,
            first_broken: self.first_broken,
        }
    }
}

async fn verify_links(
    pool: &PgPool,
    from_position: u64,
    to_position: Option<u64>,
) -> Result<ChainVerification, StoreError> {
    let from_position = from_position.max(1);
    let anchor_hash = if from_position == 1 {
        GENESIS_HASH
    } else {
        let before = events_between(pool, from_position - 1, from_position - 1).await?;
        match before.first() {
            Some(event) => event.hash,
            None => {
                return Ok(ChainVerification {
                    events_checked: 0,
                    last_intact_position: 0,
                    first_broken: Some(ChainBreak {
                        position: from_position - 1,
                        reason: "anchor event is missing".to_owned(),
                    }),
                });
            }
        }
    };
    let mut links = Links::new(from_position, anchor_hash, to_position);
    let (mut pages, reader) = spawn_reader(pool.clone(), from_position);
    // The reader stops when the receiver is dropped: on a break found, or an error here.
    let _reader = AbortOnDrop(reader);
    'pages: while let Some(page) = pages.recv().await {
        for event in &page? {
            if links.check(event) == Link::Stop {
                break 'pages;
            }
        }
    }
    Ok(links.verification())
}

/// Reads the log from `from_position` in pages on a task of its own, one page ahead of the
/// check, so the server reads the next page while this process hashes the current one. At
/// most one page waits in the channel: memory does not grow with the log.
fn spawn_reader(
    pool: PgPool,
    from_position: u64,
) -> (
    mpsc::Receiver<Result<Vec<RecordedEvent>, StoreError>>,
    JoinHandle<()>,
) {
    let (sender, receiver) = mpsc::channel(1);
    let reader = tokio::spawn(async move {
        let mut next = from_position;
        loop {
            let Ok(slot) = sender.reserve().await else {
                return;
            };
            match read_all(&pool, next, MAX_PAGE_SIZE).await {
                Ok(page) => {
                    let Some(last) = page.last() else {
                        return;
                    };
                    next = last.position + 1;
                    slot.send(Ok(page));
                }
                Err(error) => {
                    slot.send(Err(error));
                    return;
                }
            }
        }
    });
    (receiver, reader)
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
