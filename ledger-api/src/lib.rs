//! The ledger service: the `ledger` command line, the HTTP server with its GraphQL API, auth,
//! and Stripe webhooks. The one place where errors become GraphQL/HTTP answers ([`error`]).
//!
//! # Layout
//! - [`cli`]: the subcommands of the `ledger` binary.
//! - [`database`]: `DATABASE_URL`, or the embedded default cluster under `./.ledger/`.
//! - [`auth`]: API keys (hashed at rest), roles, permissions.
//! - [`graphql`]: the schema of interfaces.md: queries, mutations, subscriptions, types,
//!   scalars, limits.
//! - [`http`]: routes, body and time limits, request ids, health and metrics; the
//!   subscription websocket.
//! - [`live`]: the log as it grows, fanned out to every subscription from one follower.
//! - [`error`]: [`error::ApiError`] and its mapping to `extensions.code`.
//! - [`stripe`]: Stripe webhooks without I/O: signature verification, the event envelope and
//!   the objects we read, and the mapping of each event to ledger commands.
//! - [`webhooks`]: `POST /webhooks/stripe`: verified events applied to the log exactly once,
//!   early ones parked, deliveries recorded for support and metrics.
//! - [`reconcile`]: Stripe's payout reconciliation report imported as a reconciliation run.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod cli;
pub mod database;
pub mod error;
pub mod graphql;
pub mod http;
pub mod live;
pub mod reconcile;
pub mod stripe;
pub mod webhooks;
