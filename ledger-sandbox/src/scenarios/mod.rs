//! The scenario runner: scenario files (TOML) of steps against a Stripe-compatible gateway,
//! each with what engineering (the gateway's answer, the ledger's webhook outcomes), support
//! (the playbook's advice the ledger serves) and finance (the ledger's status and amounts)
//! expect after it.
//!
//! It talks to the gateway and the ledger over HTTP only, so it runs against any sandbox and
//! the ledger that sandbox delivers webhooks to; `ledger scenarios run` starts both when it
//! is given neither. It depends on no gateway module of this crate.
//!
//! # Layout
//! - `file`: the scenario language, read strictly, with its limits.
//! - `gateway`, `ledger`: the two HTTP clients.
//! - `run`: steps, waits for webhooks to settle, each team's verdict.
//! - `checks`: expectations against answers, one line per difference.
//! - `report`: the matrix and JUnit XML.

mod checks;
mod file;
mod gateway;
mod ledger;
mod report;
mod run;

pub use file::{load, Scenario, MAX_FILES, MAX_STEPS};
pub use gateway::{Gateway, API_KEY};
pub use ledger::{payment_id, Ledger};
pub use report::{junit, matrix};
pub use run::{run_all, Outcome, Target, Team, Verdict};
