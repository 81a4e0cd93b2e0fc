//! `POST /webhooks/stripe`: Stripe's word becomes ledger facts, exactly once.
//!
//! The pure half (signature, parsing, mapping, deciding) is [`crate::gateway`]; this module is
//! the I/O around it: the axum route, the event log, the webhook tables of
//! `migrations/20261126310000_webhooks.sql`, parking, metrics and the support query.
//!
//! # Mounting
//! ```no_run
//! # async fn example(commands: ledger_store::commands::CommandHandler) -> anyhow::Result<()> {
//! use ledger_stripe::gateway::WebhookSecrets;
//! use ledger_stripe::webhooks::{stripe_router, WebhookConfig, WebhookState};
//! use ledger_core::ids::MerchantId;
//!
//! let secrets = WebhookSecrets::parse(&std::env::var("LEDGER_STRIPE_WEBHOOK_SECRETS")?)?;
//! let config = WebhookConfig::new(secrets, MerchantId::parse("merchant_default")?);
//! let app: axum::Router = axum::Router::new().merge(stripe_router(WebhookState::new(commands, config)));
//! # Ok(()) }
//! ```
//! The route needs no API key and must see the raw body: no auth or body-consuming layer may
//! sit in front of it.
//!
//! # One delivery
//! 1. Read the body up to [`WebhookConfig::max_body_bytes`] (more: 413), verify it with the
//!    server clock ([`crate::gateway::verify_event`]). Any refusal is a 4xx
//!    `{"error": {"code", "message"}}` and records nothing.
//! 2. Under a per-subject lock (the PaymentIntent `pi_…` or payout `po_…`), skip it if its
//!    delivery row already holds a final outcome (applied, duplicate, ignored). The same
//!    read fetches its PaymentIntent's link.
//! 3. Map it, with the payment linked to its PaymentIntent if any, and apply it (below). A
//!    PaymentIntent is linked to one payment and a payment to one PaymentIntent
//!    (`webhook_payment_links`' two keys); an event of a second PaymentIntent of a payment,
//!    Connect metadata naming another merchant than the account, or a Connect event about
//!    another merchant's payment is a `conflict`, never applied.
//! 4. Record the delivery row, then retry the events parked on the same subject, when the
//!    statement that recorded it found any (it reads `webhook_parked` after the append
//!    committed, as a read of its own would).
//! 5. Answer 200 with the outcome, or 5xx when the database failed (Stripe retries).
//!
//! # Exactly once
//! The events an event causes are appended in one append carrying the event log's idempotency
//! claim `stripe:<evt_…>` (scoped to the environment, hashed over the event id). The log
//! writes the claim in the same transaction as the events, and refuses a second claim of the
//! same key, answering with the first append's events instead. So the claim *is* the record of
//! "this Stripe event was applied", atomic with what it caused, and it settles races between
//! concurrent copies (in this process or any other) inside the store.
//!
//! `webhook_deliveries` is written afterwards, outside that transaction, because `EventStore`
//! owns its transactions. That is still correct: the delivery row never decides whether to
//! apply (only the claim does; the row's fast path in step 2 only skips events whose claim,
//! if they needed one, exists already). If the process dies between the append and the row,
//! Stripe gets no 200 and delivers again; the claim makes that delivery a replay, which
//! writes the row as applied with the original positions. The row is an upsert whose final
//! outcomes never move backwards, so copies finishing in any order agree.
//!
//! # Out of order: park, not 5xx
//! A refund or dispute of a payment the ledger does not hold yet (or holds uncaptured), and a
//! payout of a settlement batch not recorded yet, is kept in `webhook_parked` and answered
//! 200 with outcome `parked`. Why not a 5xx for Stripe to retry: Stripe's retries back off to
//! hours, so the refund would wait long after its payment arrived; every 5xx counts against
//! the endpoint's health in Stripe (which disables endpoints that keep failing) and pages
//! operations for what is normal reordering; and the ledger would depend on Stripe still
//! retrying. A parked event is retried, in Stripe's `created` order, after every successful
//! apply on its PaymentIntent. Lost wake-ups are ruled out by "park, then try once more": an
//! apply that committed before the parked row became visible is seen by that second try.
//! Payouts wait for reconciliation imports, which call [`retry_all_parked`]. The server's
//! sweep ([`sweep_parked`]) pages through every subject with parked events each minute. An
//! event parked for more than 72 hours ([`crate::gateway::parked::MAX_PARKED_AGE`]) is not
//! retried but expired: its delivery becomes `expired` and it is never applied, even when
//! Stripe delivers it again.
//!
//! # Outcomes (`webhook_deliveries.outcome`, metric label `outcome`)
//! `applied` (events appended), `duplicate` (the ledger already held every fact, or the
//! delivery repeated an event already handled), `ignored` (unmapped type or nothing to
//! record), `parked`, `conflict` (the gateway and the ledger disagree: kept for a person,
//! answered 200 because a retry cannot help), `rejected` (refused before or while mapping),
//! `expired` (parked past its age limit, given up on: kept for a person, never applied).
//!
//! # Layout
//! - [`state`]: [`WebhookState`] and [`WebhookConfig`], what the router needs.
//! - `router`: the route and the handler (body bound, verification, answer).
//! - `process`: one verified event from lock to outcome.
//! - `apply`: a payment fact or a payout through the store's command handler (the same
//!   path as the API's commands), under the event's claim [`CLAIM_PREFIX`]`<evt_…>`.
//! - `parking`: parking and retrying events that arrived early.
//! - `tables`: the SQL of the webhook tables.
//! - [`deliveries`]: [`recent_deliveries`], the support query.
//! - [`health`]: deliveries counted per hour or day, for the console's webhook health page.
//! - [`outcome`]: [`DeliveryOutcome`], what became of an event.
//! - [`metrics`]: metric names and recording.
//! - [`error`]: [`WebhookError`], this module's one error type.

mod apply;
pub mod deliveries;
pub mod error;
mod grouped;
pub mod health;
pub mod metrics;
pub mod outcome;
mod parking;
mod process;
mod router;
pub mod state;
mod tables;

pub use apply::CLAIM_PREFIX;
pub use deliveries::{
    payment_of_intent, problem_counts, problem_deliveries, recent_deliveries, DeliveryFilter,
    ProblemCursor, ProblemFilter, WebhookDelivery, MAX_RECENT_DELIVERIES, PROBLEM_OUTCOMES,
};
pub use error::WebhookError;
pub use outcome::DeliveryOutcome;
pub use parking::{retry_all_parked, retry_parked, sweep_parked, PARKED_SWEEP_INTERVAL};
pub use router::{stripe_router, unconfigured_stripe_router, STRIPE_WEBHOOK_PATH};
pub use state::{WebhookConfig, WebhookState};
