//! The Stripe adapter: what Stripe tells the ledger, checked, mapped to ledger commands and
//! applied through the one command handler, and Stripe's payout reports reconciled against the
//! read models.
//!
//! # Layout
//! - [`gateway`]: no I/O. Signature verification, the event envelope and the objects we read,
//!   and the mapping of each Stripe event to ledger commands.
//! - [`webhooks`]: I/O. `POST /webhooks/stripe`: verified events applied to the log exactly
//!   once, early ones parked, deliveries recorded for support and metrics.
//! - [`reconcile`]: Stripe's itemized payout reconciliation report imported as a
//!   reconciliation run (the file read without I/O, staged, matched and recorded).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod gateway;
pub mod reconcile;
pub mod webhooks;
