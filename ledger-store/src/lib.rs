//! The PostgreSQL event log of the payment ledger: atomic multi-stream appends with optimistic
//! concurrency and idempotency, a gap-free global order, a hash chain auditors can re-verify,
//! and live subscriptions. Payloads are JSON objects: the log knows no domain types; only
//! [`commands`] folds streams through ledger-core.
//!
//! # Layout
//! - [`event`]: the values appended and read back (`NewEvent`, `AppendRequest`,
//!   `RecordedEvent`, …).
//! - [`error`]: [`StoreError`], the crate's one error type.
//! - [`store`]: [`EventStore`], the handle: append, read, subscribe, verify.
//! - `validate`: rejects bad input before it reaches the database; the size limits.
//! - `plan`: decides a group-commit batch without I/O (versions, claims, positions, hashes).
//! - `writer`: the single writer task that commits batches (group commit); documents ordering.
//! - `known`: what the writer assumes the batches in flight will leave (head, versions, claims).
//! - `batch_write`: one batch as one statement that checks every assumption in the database.
//! - `fresh_batch`: a refused batch written again on state read under the head's lock.
//! - [`canonical_json`]: RFC 8785 text of payloads, as hashed and stored.
//! - `rows`: database rows and the conversions of positions and versions.
//! - `connections`: the connections stream reads use, beside the pool (no ping on return).
//! - `read`: reading one stream, the global log, idempotency claims, the head.
//! - [`log_reader`]: the log's reads on any pool without a writer (a standby's).
//! - `subscribe`: live subscriptions (catch up by position, `LISTEN` to wake).
//! - [`hash_chain`]: the chain's hash and the audit export line.
//! - `verify`: re-verifying the chain over stored events.
//! - [`commands`]: command handling: load a stream, fold it through ledger-core, decide,
//!   append; retry on conflict; idempotent replay; environment isolation.
//! - [`kept_state`]: each stream's latest fold, kept in its `streams` row by the append
//!   that made it, so that a stream read in no process yet is one row to read.
//! - [`state_cache`]: folded stream states kept between loads (safe because events never
//!   change; only events after a kept version are read).
//! - [`server_role`]: the database role the server works as (owns nothing, cannot change the
//!   log), and the check before it serves.
//! - [`embedded`]: the private PostgreSQL cluster used when no `DATABASE_URL` is set.
//! - `cluster_home`: where that cluster lives (`./.ledger`, or as root a persistent place the
//!   server user can reach), and its directories, made without following planted links.
//! - `server_binaries`: finding PostgreSQL's server programs and the user to run them as.
//! - `testing` (feature `testing`): a fresh migrated database per test.
//!
//! Schema: `migrations/` at the workspace root, embedded as [`MIGRATOR`].
//!
//! # Design in brief
//! - Order: positions are assigned by the application while it holds the lock on the single
//!   `log_head` row, which it keeps until commit; so position N+1 is only written after N is
//!   committed and visible, and a reader going by position never skips one (`writer`).
//! - Group commit: every append goes through one bounded queue to one writer task, which
//!   writes what is queued in one transaction with one `COMMIT`; each request still gets its
//!   own answer (recorded, replayed, or its own typed rejection) (`writer`, `plan`).
//! - Hash chain: `hash = SHA-256(prev_hash ‖ JCS(export line without the hashes))`, computed
//!   at append time, `recorded_at` in microseconds as `YYYY-MM-DDTHH:MM:SS.ffffffZ`
//!   ([`hash_chain`]).
//! - Immutability: a statement-level trigger refuses UPDATE, DELETE and TRUNCATE on `events`
//!   for every role, the owner included (migration `20261126000001_event_log.sql`).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod batch_write;
pub mod canonical_json;
mod cluster_home;
pub mod commands;
mod connections;
pub mod embedded;
pub mod error;
pub mod event;
mod fresh_batch;
pub mod hash_chain;
pub mod kept_state;
mod known;
pub mod log_reader;
mod plan;
mod read;
mod rows;
mod server_binaries;
pub mod server_role;
pub mod state_cache;
pub mod store;
mod subscribe;
#[cfg(feature = "testing")]
pub mod testing;
mod validate;
mod verify;
mod writer;

pub use error::StoreError;
pub use event::{
    AppendOutcome, AppendRequest, AppendResult, Environment, EventMetadata, ExpectedVersion,
    IdempotencyClaim, IdempotencyRecord, KeptState, NewEvent, RecordedEvent, StreamAppend,
    StreamType,
};
pub use hash_chain::export_line;
pub use log_reader::LogReader;
pub use read::{LogHead, MAX_PAGE_SIZE};
pub use store::{
    begin_transaction, begin_unbounded_transaction, migrate, pool_options, EventStore, MIGRATOR,
    STATEMENT_TIMEOUT,
};
pub use subscribe::{wait_for_appends, SubscribeOptions, NOTIFY_CHANNEL};
pub use validate::{
    MAX_EVENTS_PER_APPEND, MAX_EVENT_TYPE_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_METADATA_BYTES,
    MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, MAX_STREAMS_PER_APPEND,
};
pub use verify::{ChainBreak, ChainCheck, ChainVerification};
pub use writer::{
    WriterStatistics, MAX_BATCH_EVENTS, MAX_BATCH_LINGER, MAX_BATCH_REQUESTS, PIPELINE_DEPTH,
    PIPELINE_WHEN_ALONE_FOR, WRITER_QUEUE_CAPACITY,
};
