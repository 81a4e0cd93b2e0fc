//! The settlement-batch aggregate: one stream per batch, with its items, totals and payouts,
//! and the [`invariants`] its decisions keep.

pub mod command;
pub mod decide;
pub mod event;
pub mod invariants;
pub mod state;

pub use command::*;
pub use decide::{
    decide, payments_named, SettlementDecision, MAX_SETTLEMENT_BATCH_EVENTS, MAX_SETTLEMENT_ITEMS,
};
pub use event::*;
pub use state::{evolve, fold, Payout, PayoutStatus, SettlementBatch, SettlementBatchState};
