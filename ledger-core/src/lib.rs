//! The payment ledger's domain: plain data and plain functions, no I/O.
//!
//! A reader can learn the whole payment lifecycle here. Commands ask; [`payment::decide`],
//! [`settlement::decide`] and [`reconciliation::decide`] either refuse with a [`DomainError`]
//! naming the broken rule, or return the events that record what happened; `evolve` folds
//! events into state. Every event that moves money becomes a balanced
//! [`journal::JournalEntry`].
//!
//! # Layout
//! - [`currency`], [`money`]: ISO 4217 currencies and exact, bounded, checked amounts.
//! - [`ids`], [`text`]: validated identifiers and bounded free text.
//! - [`payment`]: the payment aggregate (commands, events, state, rules, invariants), and
//!   `payment::gateway_fact`: facts a gateway reports late, twice or early.
//! - [`settlement`]: settlement batches and payouts, and the cross-stream batch decision.
//! - [`reconciliation`]: a gateway's payout report against the ledger, line by line.
//! - [`journal`]: the chart of accounts, postings and the trial balance.
//! - [`playbook`]: every decline and error code a card gateway gives, with what to tell the
//!   customer, whether a retry may help, the next step and who to escalate to.
//! - [`codec`]: the stable JSON of events, schema versions and upcasting.
//! - [`aggregate`]: what the event store needs to fold and store any stream, and
//!   [`kept_form`]: the bytes of the latest fold the log keeps beside each stream.
//! - [`error`]: [`DomainError`], one variant per business rule.
//! - [`stored`]: the one table of stored names of each enum kept as text (`as_str`, `FromStr`).
//!
//! # Architecture invariant
//! This crate performs no I/O and depends on no async runtime, database or web crate. It reads
//! no clock: times that rules depend on arrive inside commands.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod aggregate;
pub mod codec;
pub mod currency;
pub mod error;
pub mod ids;
pub mod journal;
pub mod kept_form;
pub mod money;
pub mod payment;
pub mod playbook;
pub mod reconciliation;
pub mod settlement;
pub mod stored;
pub mod text;

pub use currency::Currency;
pub use error::DomainError;
pub use money::{Money, MoneyError, PositiveMoney};
