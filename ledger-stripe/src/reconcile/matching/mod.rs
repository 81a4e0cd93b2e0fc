//! Matching without I/O: a payout's lines against the ledger's items, and the payout's verdict.
//!
//! Everything here is given plain data (the staged lines, what was looked up for them, what the
//! ledger knows of the payout) and answers with plain data (exceptions, batch items, the
//! verdict), so every case is unit-tested without a database; the async callers only fetch and
//! record. The rules that are not Stripe's (how a line is classified) are in
//! `ledger_core::reconciliation`.
//!
//! - [`line`]: one line against the item it names.
//! - [`payout`]: one payout's tally and its verdict; the whole run's tally.
//! - [`findings`]: the exceptions, with their ids and texts.

pub mod findings;
pub mod line;
pub mod payout;

#[cfg(test)]
mod tests;

pub use line::{match_line, LookedUp};
pub use payout::{batch_id_for_payout, PayoutTally, RunTally};
