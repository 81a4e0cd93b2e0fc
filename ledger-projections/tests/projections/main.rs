//! Integration tests of the read models against real PostgreSQL: every test gets its own
//! database (ledger-store's harness) and a log written through ledger-core's `decide`.

#[path = "../support/mod.rs"]
mod support;

mod consistency;
mod export;
mod read_models;
mod rebuild;
mod reconciliation;
mod verify;
