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

async fn verify_links(
    pool: &PgPool,
    from_position: u64,
    to_position: Option<u64>,
) -> Result<ChainVerification, StoreError> {
    let from_position = from_position.max(1);
    let mut expected_prev_hash = if from_position == 1 {
        GENESIS_HASH
    } else {
        let before = events_between(pool, from_position - 1, from_position - 1).await?;
        match before.first() {
            Some(event) => event.hash,
            None => {
                return Ok(broken(0, 0, from_position - 1, "anchor event is missing"));
            }
        }
    };
    let mut expected_position = from_position;
    let mut events_checked = 0;
    let (mut pages, reader) = spawn_reader(pool.clone(), from_position);
    // The reader stops when the receiver is dropped: on a break found, or an error here.
    let _reader = AbortOnDrop(reader);
    while let Some(page) = pages.recv().await {
        let page = page?;
        for event in &page {
            if to_position.is_some_and(|to| event.position > to) {
                return Ok(intact(events_checked, expected_position - 1));
            }
            if let Some(reason) = check_link(event, expected_position, &expected_prev_hash) {
                let break_at = event.position.min(expected_position);
                return Ok(broken(
                    events_checked,
                    expected_position - 1,
                    break_at,
                    &reason,
                ));
            }
            events_checked += 1;
            expected_prev_hash = event.hash;
            expected_position += 1;
        }
    }
    Ok(intact(events_checked, expected_position - 1))
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

fn intact(events_checked: u64, last_intact_position: u64) -> ChainVerification {
    ChainVerification {
        events_checked,
        last_intact_position,
        first_broken: None,
    }
}

fn broken(
    events_checked: u64,
    last_intact_position: u64,
    position: u64,
    reason: &str,
) -> ChainVerification {
    ChainVerification {
        events_checked,
        last_intact_position,
        first_broken: Some(ChainBreak {
            position,
            reason: reason.to_owned(),
        }),
    }
}
