//! The failure playbook's row for a payment's decline, as `Payment.declineAdvice`.

use async_graphql::{Enum, SimpleObject};
use ledger_core::playbook::{
    self, Escalation as CoreEscalation, FailureCategory as CoreFailureCategory,
    NextStep as CoreNextStep, Retry as CoreRetry,
};

use super::same_variants;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum FailureCategory {
    Validation,
    Authentication,
    Network,
    GatewayTimeout,
    IssuerHardDecline,
    IssuerSoftDecline,
    Fraud,
    PostAuthorizationFailure,
}

same_variants!(
    CoreFailureCategory,
    FailureCategory {
        Validation,
        Authentication,
        Network,
        GatewayTimeout,
        IssuerHardDecline,
        IssuerSoftDecline,
        Fraud,
        PostAuthorizationFailure,
    }
);

/// Whether trying the same payment again may pass, and when.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "RetryAdvice")]
pub enum Retry {
    No,
    AfterCustomerAction,
    Later,
    Now,
}

same_variants!(
    CoreRetry,
    Retry {
        No,
        AfterCustomerAction,
        Later,
        Now,
    }
);

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum NextStep {
    AnotherCard,
    ReenterDetails,
    ContactIssuer,
    Authenticate,
    Wait,
}

same_variants!(
    CoreNextStep,
    NextStep {
        AnotherCard,
        ReenterDetails,
        ContactIssuer,
        Authenticate,
        Wait,
    }
);

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Escalation {
    Nobody,
    Support,
    Finance,
    Engineering,
}

same_variants!(
    CoreEscalation,
    Escalation {
        Nobody,
        Support,
        Finance,
        Engineering,
    }
);

/// What a decline means: what to tell the customer, whether a retry may help, what they
/// should do next and who inside should look at it.
#[derive(SimpleObject, Clone, Debug)]
pub struct DeclineAdvice {
    /// The decline code the payment recorded; null when the gateway gave none.
    pub code: Option<String>,
    /// Whether the playbook has a row of its own for `code`; when not, the advice is the
    /// generic decline's.
    pub documented: bool,
    pub category: FailureCategory,
    /// What the customer may be told, word for word. For fraud it never says why.
    pub customer_message: String,
    pub retry: Retry,
    pub next_step: NextStep,
    pub escalation: Escalation,
    /// What the code means, for staff only.
    pub meaning: String,
}

impl DeclineAdvice {
    /// The advice for a decline that recorded `code` (or none).
    pub fn for_decline(code: Option<&str>) -> DeclineAdvice {
        let row = playbook::advice_or_fallback(code);
        DeclineAdvice {
            code: code.map(str::to_owned),
            documented: code.is_some_and(|code| code == row.code),
            category: row.category.into(),
            customer_message: row.customer_message.to_owned(),
            retry: row.retry.into(),
            next_step: row.next_step.into(),
            escalation: row.escalation.into(),
            meaning: row.meaning.to_owned(),
        }
    }
}
