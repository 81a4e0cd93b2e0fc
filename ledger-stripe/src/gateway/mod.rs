//! Stripe webhooks, without I/O: everything between the raw request and the ledger commands.
//!
//! The webhook endpoint calls, in order:
//! 1. [`verify_event`]: body size bound, `Stripe-Signature` against [`WebhookSecrets`] at a
//!    given `now`, envelope shape, `livemode` against the matching secret's environment.
//!    Any failure is a [`StripeError`] with a 4xx [`StripeError::http_status`]; record nothing.
//! 2. Exactly-once on [`VerifiedEvent::id`] (`evt_…`): a repeated id answers 200.
//! 3. [`map_event`]: the [`GatewayFact`] the event reports (payment commands, a payout, or
//!    ignored with a reason).
//! 4. For a payment fact, [`decide_fact`] against the payment's stream: the events to append
//!    (already-applied commands skipped), or a refusal that says whether to wait or escalate.
//!
//! # Layout
//! - [`secrets`]: `LEDGER_STRIPE_WEBHOOK_SECRETS`, parsed; never printed.
//! - [`connect`]: `LEDGER_STRIPE_CONNECTED_ACCOUNTS`, the merchants of Connect accounts.
//! - [`signature`]: verifying and making `Stripe-Signature` headers.
//! - [`event`]: the event envelope, body parsing and [`VerifiedEvent`].
//! - [`objects`]: the PaymentIntent, Charge, Refund, Dispute and Payout fields we read.
//! - [`mapping`]: events to ledger commands, and the classification of refusals.
//! - [`parked`]: the age limit of events parked until what they depend on arrives.
//! - [`error`]: [`StripeError`], the one error type of this module.

pub mod amounts;
pub mod connect;
pub mod error;
pub mod event;
pub mod mapping;
pub mod objects;
pub mod parked;
pub mod secrets;
pub mod signature;

pub use amounts::{money_from_stripe, money_to_stripe, StripeAmountError};
pub use connect::ConnectedAccounts;
pub use error::StripeError;
pub use event::{parse_event, verify_event, Event, VerifiedEvent, DEFAULT_MAX_BODY_BYTES};
pub use mapping::{
    classify_refusal, decide_fact, handled_event_types, identity_conflict, is_already_applied,
    map_event, payment_id_for_payment_intent, payment_intent_id, FactRefused, GatewayFact,
    IgnoredReason, MappingContext, PaymentFact, PayoutFact, RefusalKind,
};
pub use secrets::{WebhookSecret, WebhookSecrets};
pub use signature::{sign, verify_signature, SIGNATURE_HEADER, TOLERANCE_SECONDS};
