//! Read models fed from the event log, each checkpointed in the same transaction as its rows.
//!
//! Every read model is a function of the log: events are read in position order, each payment
//! and settlement-batch stream is folded through `ledger-core`, and rows are upserted from the
//! folded state (the core derives every amount and status; no rule is re-implemented in SQL).
//! Journal entries come from `ledger_core::journal` given the state before each event.
//!
//! # Layout
//! - [`projection`]: the named projections ([`Projection`]) and the tables each one owns.
//! - [`projector`]: [`Projector`], which applies the log in batches (catch up, follow live) and
//!   writes every projection's checkpoint with its rows.
//! - [`checkpoint`]: reading and writing checkpoints; [`ProjectionLag`] for `/readyz`.
//! - `batch`: one page of the log decoded and folded, shared by every read model.
//! - `stream_states`: the folded state of each stream, cached and reloaded from the log.
//! - [`schema`]: [`SchemaName`], the schema a projector writes into (live `public`, a rebuild,
//!   or an auditor's point-in-time copy).
//! - [`read_models`]: one module per read model (payments, orders, disputes, settlement,
//!   journal and balances, metrics), each with its writer and its queries.
//! - [`rebuild`]: rebuild from zero beside the live tables and swap; point-in-time builds;
//!   mapping an `as of` time to a position.
//! - [`verify`]: the full audit (hash chain, invariants, trial balance, read models vs a
//!   fresh fold) as a [`VerificationReport`].
//! - [`export`]: the JSON Lines audit export.
//! - [`error`]: [`ProjectionError`], the crate's one error type.
//!
//! Schema: `migrations/20261126300000_projections.sql`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod batch;
pub mod checkpoint;
pub mod error;
pub mod export;
pub mod projection;
pub mod projector;
pub mod read_models;
pub mod rebuild;
pub mod schema;
mod stream_states;
pub mod verify;

pub use checkpoint::{projection_lag, ProjectionLag};
pub use error::ProjectionError;
pub use export::{export, ExportSummary};
pub use projection::Projection;
pub use projector::{Projector, ProjectorOptions};
pub use rebuild::{build_point_in_time, position_as_of, rebuild, AsOf, BuildReport};
pub use schema::SchemaName;
pub use verify::{verify, Discrepancy, VerificationReport};
