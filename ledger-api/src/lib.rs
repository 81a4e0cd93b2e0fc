//! The ledger service's library: the parts of the HTTP edge that are pure and testable alone.
//!
//! # Layout
//! - [`stripe`]: Stripe webhooks without I/O: signature verification, the event envelope and
//!   the objects we read, and the mapping of each event to ledger commands.
//! - [`webhooks`]: `POST /webhooks/stripe`: verified events applied to the log exactly once,
//!   early ones parked, deliveries recorded for support and metrics.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod stripe;
pub mod webhooks;
