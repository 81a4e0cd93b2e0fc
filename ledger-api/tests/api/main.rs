//! End-to-end tests of the GraphQL API through real HTTP against a real database.

mod bulk;
mod decline_advice;
mod graphiql_page;
mod helpers;
mod isolation;
mod large_settlement;
mod lifecycle;
mod limits;
mod log_pages;
mod notifications;
mod permissions;
mod read_models;
mod reconciliation;
mod reconciliation_import;
mod replicas;
mod rules;
mod stream_kinds;
mod subscriptions;
mod unavailable;
mod webhooks;
