//! Following the log live: catch up by position, then wait for the head to move.
//!
//! A subscription never trusts notifications for content: it always reads by position from
//! the last one it delivered. `LISTEN` only shortens the wait; when a notification is missed
//! (connection lost, trigger disabled) the next poll, at most [`SubscribeOptions::poll_interval`]
//! later, finds the events all the same, so none is ever lost or delivered twice.

use std::collections::VecDeque;
use std::time::Duration;

use futures::Stream;
use sqlx::postgres::{PgListener, PgNotification};
use sqlx::PgPool;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::read::read_all;

/// The channel the `log_head` trigger notifies on each commit.
pub const NOTIFY_CHANNEL: &str = "ledger_events";

#[derive(Debug, Clone, Copy)]
pub struct SubscribeOptions {
    /// Longest wait for a notification before reading again anyway.
    pub poll_interval: Duration,
    /// Events read per round trip while catching up.
    pub page_size: usize,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            poll_interval: Duration::from_secs(1),
            page_size: 1_000,
        }
    }
}

struct Subscription {
    pool: PgPool,
    listener: Option<PgListener>,
    next_position: u64,
    buffer: VecDeque<RecordedEvent>,
    options: SubscribeOptions,
}

/// Every event from `from_position` on, in position order, forever. Errors are yielded and
/// the subscription goes on from where it was.
pub(crate) fn subscribe(
    pool: PgPool,
    from_position: u64,
    options: SubscribeOptions,
) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static {
    let subscription = Subscription {
        pool,
        listener: None,
        next_position: from_position.max(1),
        buffer: VecDeque::new(),
        options,
    };
    futures::stream::unfold(subscription, |mut subscription| async move {
        let item = subscription.next().await;
        Some((item, subscription))
    })
}

impl Subscription {
    async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        // Listen before the first read, so a commit between the read and the wait still wakes.
        if self.listener.is_none() {
            self.listener = Some(self.listen().await?);
        }
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.next_position = event.position + 1;
                return Ok(event);
            }
            let page = read_all(
                &self.pool,
                self.next_position,
                self.options.page_size.max(1),
            )
            .await;
            match page {
                Ok(page) if !page.is_empty() => self.buffer.extend(page),
                Ok(_) => self.wait().await,
                Err(error) => {
                    tokio::time::sleep(self.options.poll_interval).await;
                    return Err(error);
                }
            }
        }
    }

    async fn listen(&self) -> Result<PgListener, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(listener)
    }

    /// Waits for a notification or the poll interval, whichever comes first.
    async fn wait(&mut self) {
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(self.options.poll_interval).await;
            return;
        };
        let read_to = self.next_position.saturating_sub(1);
        if let Err(error) = wait_for_appends(listener, self.options.poll_interval, read_to).await {
            tracing::warn!(%error, "event notifications lost; polling until they return");
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }
}

/// Waits until the log announces an append past `after` on [`NOTIFY_CHANNEL`], or until
/// `poll_interval` passes, then takes every announcement already received as well.
///
/// A follower reads the log to its end after waking, which answers every announcement made
/// so far. Under a stream of appends most announcements arrive after the read that already
/// saw their events (a commit is visible before its notification is delivered): woken by
/// each, a follower read the log's end again and found it empty, as often as it read events.
pub async fn wait_for_appends(
    listener: &mut PgListener,
    poll_interval: Duration,
    after: u64,
) -> Result<(), sqlx::Error> {
    let deadline = tokio::time::Instant::now() + poll_interval;
    loop {
        match tokio::time::timeout_at(deadline, listener.recv()).await {
            Err(_) => return Ok(()),
            Ok(Err(error)) => return Err(error),
            Ok(Ok(announcement)) if announces_past(&announcement, after) => break,
            Ok(Ok(_)) => {}
        }
    }
    while listener.next_buffered().is_some() {}
    Ok(())
}

/// Whether an announcement names a position past `after`; one that names none wakes.
fn announces_past(announcement: &PgNotification, after: u64) -> bool {
    announcement
        .payload()
        .parse::<u64>()
        .map_or(true, |position| position > after)
}
