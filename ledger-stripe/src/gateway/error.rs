//! [`StripeError`]: every way a webhook delivery or its configuration can be refused.
//!
//! Messages are written for the 4xx body Stripe shows in its dashboard and for the operator
//! reading it: they say what is wrong and never contain a secret or a computed signature.

use ledger_core::ids::Environment;

/// Why a webhook delivery (or the secrets configuration) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// `LEDGER_STRIPE_WEBHOOK_SECRETS` holds an entry that is not `test:whsec_…` or
    /// `live:whsec_…`. The entry is named by position only, so the secret never reaches a log.
    #[error("LEDGER_STRIPE_WEBHOOK_SECRETS entry {position} is invalid: {reason}; expected comma-separated `test:whsec_…` or `live:whsec_…` entries")]
    InvalidSecretsConfiguration {
        position: usize,
        reason: &'static str,
    },

    #[error("the Stripe-Signature header is missing")]
    MissingSignatureHeader,

    #[error("the Stripe-Signature header is malformed: {reason}")]
    MalformedSignatureHeader { reason: &'static str },

    #[error("the Stripe-Signature header carries no v1 signature")]
    NoV1Signature,

    #[error("the Stripe-Signature timestamp {timestamp} is more than {tolerance_seconds} s away from the receiver's clock; replayed or delayed deliveries are refused")]
    TimestampOutsideTolerance {
        timestamp: i64,
        tolerance_seconds: i64,
    },

    #[error("no configured webhook secret produced this signature")]
    NoSecretMatched,

    #[error("the body is {size_bytes} bytes; at most {max_bytes} bytes are accepted")]
    BodyTooLarge { size_bytes: usize, max_bytes: usize },

    #[error("the body is not a Stripe event: {reason}")]
    MalformedBody { reason: String },

    #[error("the event says livemode={livemode} but was signed with a {environment} secret")]
    LivemodeMismatch {
        livemode: bool,
        environment: Environment,
    },

    /// `LEDGER_STRIPE_CONNECTED_ACCOUNTS` holds an entry that is not `acct_…:merchant_id`.
    #[error("LEDGER_STRIPE_CONNECTED_ACCOUNTS entry {position} is invalid: {reason}; expected comma-separated `acct_…:merchant_id` entries")]
    InvalidConnectedAccounts { position: usize, reason: String },

    /// A Connect event whose metadata names another merchant than its connected account.
    /// Not a refusal of the delivery: the webhook adapter keeps it as a `conflict` for a
    /// person and applies nothing (the account decides the merchant, and guessing which of the
    /// two is right would put money on the wrong merchant's books).
    #[error("event {event_id}: the connected account {account} is merchant {account_merchant}, but metadata.merchant_id names {stated_merchant}; the account decides the merchant, so nothing was applied")]
    MerchantConflict {
        event_id: String,
        account: String,
        account_merchant: String,
        stated_merchant: String,
    },

    /// A signed, well-formed event whose object lacks or garbles something the mapping needs
    /// (an unknown currency, a zero amount, a charge without id).
    #[error("event {event_id}: `{field}` {reason}")]
    InvalidField {
        event_id: String,
        field: &'static str,
        reason: String,
    },
}

impl StripeError {
    /// A stable snake_case name for logs, metrics and the response body.
    pub fn code(&self) -> &'static str {
        match self {
            StripeError::InvalidSecretsConfiguration { .. } => "invalid_secrets_configuration",
            StripeError::MissingSignatureHeader => "missing_signature_header",
            StripeError::MalformedSignatureHeader { .. } => "malformed_signature_header",
            StripeError::NoV1Signature => "no_v1_signature",
            StripeError::TimestampOutsideTolerance { .. } => "timestamp_outside_tolerance",
            StripeError::NoSecretMatched => "no_secret_matched",
            StripeError::BodyTooLarge { .. } => "body_too_large",
            StripeError::MalformedBody { .. } => "malformed_body",
            StripeError::LivemodeMismatch { .. } => "livemode_mismatch",
            StripeError::InvalidField { .. } => "invalid_field",
            StripeError::InvalidConnectedAccounts { .. } => "invalid_connected_accounts",
            StripeError::MerchantConflict { .. } => "merchant_conflict",
        }
    }

    /// The gateway and the ledger's rules disagree about a well-formed event: keep it as a
    /// conflict for a person (answered 200, since Stripe retrying cannot help), not a refusal.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StripeError::MerchantConflict { .. })
    }

    /// The HTTP status the webhook endpoint should answer with. Every refusal is a 4xx: the
    /// delivery itself is wrong and nothing is recorded. (A configuration error happens at
    /// start-up, before any request; it is listed as a 500 for completeness.)
    pub fn http_status(&self) -> u16 {
        match self {
            StripeError::InvalidSecretsConfiguration { .. }
            | StripeError::InvalidConnectedAccounts { .. } => 500,
            // Answered 200 as a kept conflict by the adapter (see `is_conflict`); listed for
            // completeness.
            StripeError::MerchantConflict { .. } => 409,
            StripeError::BodyTooLarge { .. } => 413,
            StripeError::InvalidField { .. } => 422,
            _ => 400,
        }
    }
}
