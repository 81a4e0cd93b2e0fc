//! Integration tests of the event log against real PostgreSQL: each test gets its own
//! database from `ledger_store::testing`. One binary, one module per feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod append;
mod bad_input;
mod durability;
mod embedded;
mod hash_chain;
mod helpers;
mod idempotency;
mod immutability;
mod ordering;
mod pipelining;
mod server_role;
mod subscription;
