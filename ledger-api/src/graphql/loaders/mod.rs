//! The DataLoaders: a relation of the nodes of one answer loaded in one query per relation
//! (`= ANY($1)` on the keys), never one query per node. Each is built per answer from rows
//! already filtered by the caller's environment.
//! - `payments`: a payment's captures, refunds and disputes.
//! - `settlement`: a settlement batch's payouts.
//! - `reconciliation`: a run's payout verdicts, and the latest verdict on a payout or batch.

pub mod payments;
pub mod reconciliation;
pub mod settlement;
