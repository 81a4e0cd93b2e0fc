//! Outbound notifications: the ledger tells client services what happened, exactly as durably
//! as it records it.
//!
//! # Layout
//! - [`endpoints`]: the endpoints admins register per environment (URL, event types, secret
//!   and the previous secret during a rotation).
//! - [`url_policy`]: which URLs an endpoint may have (https and public addresses in live mode).
//! - [`event_types`]: the notification types and the ledger events that make them.
//! - [`body`]: the JSON body and the notification id.
//! - [`dispatcher`]: follows the log from its checkpoint and inserts deliveries in the same
//!   transaction that moves it (the log is the outbox).
//! - [`sender`]: takes due deliveries (the oldest of each endpoint and subject, for order),
//!   signs, POSTs, records, retries with back-off for up to 3 days, then disables.
//! - [`signing`]: secrets and the `Ledger-Signature` header.
//! - [`client`]: the HTTP clients (timeouts, no redirects, public-only resolution for live).
//! - [`deliveries`]: delivery history and replays.
//! - [`error`]: [`NotifyError`], the crate's one error type.
//!
//! Schema: `migrations/20261204100000_notifications.sql`.
//!
//! # For the `ledger` binary
//! `ledger serve` runs [`Dispatcher::follow`] and [`Sender::run`] sharing one
//! `Arc<tokio::sync::Notify>`; `ledger endpoints …` uses [`Endpoints`].

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod body;
pub mod client;
pub mod deliveries;
pub mod dispatcher;
pub mod endpoints;
pub mod error;
pub mod event_types;
pub mod retention;
pub mod sender;
pub mod signing;
pub mod url_policy;

pub use dispatcher::Dispatcher;
pub use endpoints::{CreatedEndpoint, Endpoint, EndpointStatus, Endpoints, NewEndpoint};
pub use error::NotifyError;
pub use sender::{Sender, SenderOptions};
pub use url_policy::UrlPolicy;
