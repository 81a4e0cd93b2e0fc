//! The ledger service: the HTTP server with its GraphQL API, auth and live subscriptions. The
//! one place where errors become GraphQL/HTTP answers ([`error`]). The Stripe adapter is
//! `ledger-stripe`; the command line is the `ledger` binary's crate.
//!
//! # Layout
//! - [`server`]: the server assembled from a pool and a [`server::ServerConfig`].
//! - [`auth`]: API keys (hashed at rest), roles, permissions.
//! - [`graphql`]: the schema of interfaces.md and its limits: `query/`, `mutation/`,
//!   `types/`, `loaders/`, subscriptions, scalars.
//! - [`http`]: routes, body and time limits, request ids, health and metrics; the
//!   subscription websocket.
//! - [`live`]: the log as it grows, fanned out to every subscription from one follower.
//! - [`replicas`]: which database answers a read: standbys in rotation, or the primary.
//! - [`expiry`]: authorizations past their `expiresAt` expire (`ledger serve` sweeps).
//! - [`error`]: [`error::ApiError`] and its mapping to `extensions.code`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod error;
pub mod expiry;
pub mod graphql;
pub mod http;
pub mod live;
pub mod replicas;
pub mod server;
