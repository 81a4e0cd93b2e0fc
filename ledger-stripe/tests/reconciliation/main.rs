//! Importing Stripe's payout reconciliation report against a real ledger in a real database.

mod classes;
mod large;
mod support;
