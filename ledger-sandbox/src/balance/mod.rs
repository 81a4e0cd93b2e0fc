//! Balance and payouts, as Stripe keeps them for an account paid out automatically every day.
//!
//! Every movement of money makes a balance transaction (`txn_…`: a capture, a refund, a
//! refund that failed, a dispute's withdrawal and reinstatement, a payout), pending until its
//! `available_on`. Moving the sandbox clock past midnight UTC makes funds available and pays
//! out the available balance of each currency (`po_…`), as Stripe's daily automatic payouts
//! do; the itemized payout reconciliation report lists what each payout paid.
//!
//! - `books`: the transactions and payouts, their fees and their Stripe JSON.
//! - `clock`: the clock's advance, availability and the daily payouts, with their events.
//! - `report`: Stripe's `payout_reconciliation.itemized.5` report as CSV.

mod books;
mod clock;
mod movements;
pub mod report;

pub use books::{page, BalanceTransaction, Books, Payout};
