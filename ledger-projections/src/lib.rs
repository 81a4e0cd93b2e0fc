//! Read models fed from the event log, each checkpointed in the same transaction as its rows.
//!
//! Every read model is a function of the log: events are read in position order, each payment,
//! settlement-batch and reconciliation-run stream is folded through `ledger-core`, and rows are
//! upserted from the folded state (the core derives every amount and status; no rule is
//! re-implemented in SQL).
//! Journal entries come from `ledger_core::journal` given the state before each event.
//!
//! # Layout
//! - [`projection`]: the named projections ([`Projection`]) and the tables each one owns.
//! - [`projector`]: [`Projector`], which applies the log in batches (catch up, follow live) and
//!   writes every projection's checkpoint with its rows.
//! - [`checkpoint`]: reading and writing checkpoints; [`ProjectionLag`] for `/readyz`.
//! - [`batch`]: one page of the log decoded and folded, shared by every read model and by
//!   `ledger-notify`'s dispatcher ([`batch::read_batch_with_states`]).
//! - [`stream_states`]: the folded state of each stream, cached and reloaded from the log.
//! - [`schema`]: [`SchemaName`], the schema a projector writes into (live `public`, a rebuild,
//!   or an auditor's point-in-time copy).
//! - [`read_models`]: one module per read model (payments, orders, disputes, settlement,
//!   journal and balances, metrics, reconciliation), each with its writer and its queries.
//! - [`mod@rebuild`]: rebuild from zero beside the live tables and swap; point-in-time builds;
//!   mapping an `as of` time to a position.
//! - [`mod@verify`]: the full audit (hash chain, invariants, trial balance, read models vs a
//!   fresh fold) as a [`VerificationReport`].
//! - [`mod@export`]: the JSON Lines audit export.
//! - [`error`]: [`ProjectionError`], the crate's one error type.
//!
//! Schema: `migrations/20261126300000_projections.sql` (tables, clone/swap/compare functions)
//! and `migrations/20261126400000_projection_builds.sql` (unlogged builds);
//! `migrations/20261126700000_reconciliation_read_models.sql` adds the reconciliation tables.
//!
//! # Design
//! - **Checkpoints.** Each projection has a row in `projection_checkpoints`, locked
//!   (`FOR UPDATE`) at the start of every batch transaction and moved in the same transaction
//!   as the rows it covers. A crash, a killed task or a failed statement rolls both back, so the
//!   rows always equal the fold of the events up to the checkpoint: the effect of each event is
//!   exactly once. Two projectors on the same schema serialize on the lock. Transactions use
//!   `synchronous_commit = off`: losing the last commits in a crash only means re-applying them.
//! - **State.** Read models are upserted whole from the folded ledger-core state of each
//!   touched stream. States are cached between batches by stream and version and folded again
//!   from the log when missing (ledger-core's states are not deserializable, and the log is the
//!   one truth anyway), so no rule is re-implemented here.
//! - **Batches.** Up to [`ProjectorOptions::batch_size`] events per transaction, every table
//!   written with one `UNNEST` statement per batch; while a batch is written a reader task
//!   reads and folds the next one. Builds (rebuild, point in time, verify's scratch schema)
//!   write their projections in a few transactions at once, each moving the checkpoints of
//!   its own projections with their rows, and finish several tables at once.
//! - **Schemas.** Live tables are in `public` (prefix `projection_`). SQL names them without a
//!   schema; a projector sets `search_path` to its own schema first, so rebuilds and
//!   point-in-time builds run the very same compile-checked SQL into another schema.
//! - **Rebuild and time travel.** See [`mod@rebuild`]: build beside, swap tables in one
//!   transaction, move the checkpoints with them; point-in-time builds stay in a named schema;
//!   balances as of any position or time come from the postings (each carries its position).
//! - **Live.** [`Projector::follow`] catches up, then waits for the log's notification (or the
//!   poll interval) and catches up again; [`projection_lag`] measures how far behind it is.
//!
//! # For the `ledger` binary
//! - `ledger serve`: spawn `Projector::live(pool).follow(shutdown)`; `/readyz` and `/metrics`
//!   read [`projection_lag`].
//! - `ledger replay`: [`rebuild()`] (to the end, all or `--projection NAME` parsed with
//!   `Projection::from_str`), or [`build_point_in_time`] with [`AsOf`] and a schema such as
//!   [`SchemaName::for_point`].
//! - `ledger verify`: [`verify()`]; print the report (it implements `Display`), exit non-zero
//!   unless [`VerificationReport::is_clean`].
//! - `ledger export`: [`export()`] to a locked stdout.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod batch;
pub mod checkpoint;
pub mod error;
pub mod export;
pub mod projection;
pub mod projector;
pub mod read_models;
pub mod rebuild;
pub mod schema;
pub mod stream_states;
pub mod verify;

pub use checkpoint::{projection_lag, ProjectionLag};
pub use error::ProjectionError;
pub use export::{export, ExportSummary};
pub use projection::Projection;
pub use projector::{Projector, ProjectorOptions, BUILD_BATCH_SIZE};
pub use rebuild::{build_point_in_time, position_as_of, rebuild, AsOf, BuildReport};
pub use schema::SchemaName;
pub use verify::{
    check_kept_head, last_verification, record_verification, verify, Discrepancy,
    VerificationRecord, VerificationReport,
};
