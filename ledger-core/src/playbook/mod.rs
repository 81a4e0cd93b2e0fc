//! The failure playbook: what each decline and error code a card gateway gives means for the
//! people around a payment.
//!
//! Support reads it to answer a customer ("what do I tell them, what should they do?"),
//! engineering to know which failures are theirs, finance to know which reach the books. It is
//! plain data ([`table`]), one row per code, looked up with [`advice`]; the API serves a
//! payment's row as `Payment.declineAdvice` and `ledger playbook` prints the whole table.
//!
//! The issuer's view of a decline ([`DeclineCategory`], recorded in `PaymentDeclined`) is a
//! column of the same row, so the two cannot disagree about a code.
//!
//! Fraud-related codes never tell the customer why: their message is the generic decline, as
//! card networks ask, so that someone testing stolen cards learns nothing.

mod table;

use serde::Serialize;

use crate::payment::DeclineCategory;
use crate::stored::stored_names;

pub use table::{GENERIC_DECLINE, PLAYBOOK};

/// Where a failure comes from, as support would sort it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureCategory {
    /// Details the customer (or the integration) gave are wrong or incomplete.
    Validation,
    /// The customer must prove it is them (3D Secure, a PIN), or the merchant's own
    /// credentials with the gateway are wrong.
    Authentication,
    /// The path between merchant, gateway and issuer failed; nothing was decided.
    Network,
    /// The gateway or the issuer did not answer in time; the outcome may be unknown.
    GatewayTimeout,
    /// The issuer refuses this card for this payment; the same card will not pass.
    IssuerHardDecline,
    /// The issuer refuses for now (funds, limits, a check it wants); a later try may pass.
    IssuerSoftDecline,
    /// Suspected fraud: lost, stolen or blocked cards. The customer is never told the reason.
    Fraud,
    /// The payment was authorized but a later step (capture, refund) failed.
    PostAuthorizationFailure,
}

stored_names!(FailureCategory, "failure category" {
    Validation => "VALIDATION",
    Authentication => "AUTHENTICATION",
    Network => "NETWORK",
    GatewayTimeout => "GATEWAY_TIMEOUT",
    IssuerHardDecline => "ISSUER_HARD_DECLINE",
    IssuerSoftDecline => "ISSUER_SOFT_DECLINE",
    Fraud => "FRAUD",
    PostAuthorizationFailure => "POST_AUTHORIZATION_FAILURE",
});

/// Whether trying the same payment again may pass, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Retry {
    /// Not with this card or these details: retrying only adds declines (and fees, and the
    /// risk of the card being blocked).
    No,
    /// Only after the customer has done something: corrected details, authenticated, or
    /// talked to their issuer.
    AfterCustomerAction,
    /// The same details may pass later (hours to days: funds arrive, limits reset).
    Later,
    /// The same request may pass now; resend it with the same idempotency key, so that a
    /// request that did reach the gateway is not charged twice.
    Now,
}

stored_names!(Retry, "retry advice" {
    No => "NO",
    AfterCustomerAction => "AFTER_CUSTOMER_ACTION",
    Later => "LATER",
    Now => "NOW",
});

impl Retry {
    /// When, in words, for people reading the printed playbook.
    pub const fn explained(self) -> &'static str {
        match self {
            Retry::No => "no: not with this card or these details",
            Retry::AfterCustomerAction => {
                "only after the customer acts (new details, authentication, their issuer)"
            }
            Retry::Later => "later: the same details may pass in hours or days",
            Retry::Now => "now: resend with the same idempotency key",
        }
    }
}

/// What the customer should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NextStep {
    /// Pay with another card or payment method.
    AnotherCard,
    /// Enter the card's details again, carefully.
    ReenterDetails,
    /// Call the bank that issued the card.
    ContactIssuer,
    /// Complete the bank's verification (3D Secure, a PIN).
    Authenticate,
    /// Nothing for now: try again later, or wait while the merchant sorts it out.
    Wait,
}

stored_names!(NextStep, "next step" {
    AnotherCard => "ANOTHER_CARD",
    ReenterDetails => "REENTER_DETAILS",
    ContactIssuer => "CONTACT_ISSUER",
    Authenticate => "AUTHENTICATE",
    Wait => "WAIT",
});

/// Who inside the merchant should look at the failure, beyond the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Escalation {
    /// An everyday decline: the customer's next step is enough.
    Nobody,
    /// Support should follow up (a suspicious pattern, a customer who needs help).
    Support,
    /// Money already moved or is stuck (failed refunds, disputes, balances).
    Finance,
    /// The integration or the infrastructure is at fault.
    Engineering,
}

stored_names!(Escalation, "escalation" {
    Nobody => "NOBODY",
    Support => "SUPPORT",
    Finance => "FINANCE",
    Engineering => "ENGINEERING",
});

/// One row of the playbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Advice {
    /// The gateway's code (Stripe's `decline_code`, or its error `code`; many are both).
    pub code: &'static str,
    pub category: FailureCategory,
    /// As the issuer's decline, the category recorded in `PaymentDeclined`.
    pub decline: DeclineCategory,
    /// What the customer may be told, word for word.
    pub customer_message: &'static str,
    pub retry: Retry,
    pub next_step: NextStep,
    pub escalation: Escalation,
    /// What the code means, for the merchant's staff (never shown to the customer).
    pub meaning: &'static str,
}

/// The message for every decline whose reason the customer must not learn (fraud), and for
/// declines that give none.
pub const GENERIC_DECLINE_MESSAGE: &str =
    "Your card was declined. Please use another card, or contact your card issuer for details.";

/// The playbook's row for a code, if the code is documented.
pub fn advice(code: &str) -> Option<&'static Advice> {
    PLAYBOOK.iter().find(|row| row.code == code)
}

/// The row to act on for a decline with this code (or none): its own row when the code is
/// documented, otherwise the generic decline's, since an unknown code is still a decline.
pub fn advice_or_fallback(code: Option<&str>) -> &'static Advice {
    code.and_then(advice).unwrap_or(&table::GENERIC_DECLINE)
}
