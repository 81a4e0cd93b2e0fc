//! Queries, merged into [`super::Query`]:
//! - `log`: `payment`, `settlementBatch`, `events` and `webhookDeliveries`, answered from the
//!   log itself (never stale).
//! - `read_models`: searches and lists from the read models, which may trail the log.
//! - `reconciliation`: reconciliation runs and their exceptions, from their read model.

pub mod log;
pub mod read_models;
pub mod reconciliation;
