//! End-to-end tests of the GraphQL API through real HTTP against a real database.

mod helpers;
mod isolation;
mod large_settlement;
mod lifecycle;
mod limits;
mod read_models;
mod reconciliation;
mod reconciliation_import;
mod rules;
mod subscriptions;
mod unavailable;
mod webhooks;
