//! What a decline means for the merchant: whether to give up, ask the customer for another
//! card, or simply try again.

use serde::{Deserialize, Serialize};

use crate::stored::stored_names;

/// How card networks and gateways group decline reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeclineCategory {
    /// The issuer will not approve this card for this payment: do not retry it.
    HardDecline,
    /// The issuer declined for now (funds, limits, authentication): a later retry may pass.
    SoftDecline,
    /// Something failed between gateway and issuer: retrying the same request may pass.
    ProcessingError,
}

stored_names!(DeclineCategory, "decline category" {
    HardDecline => "HARD_DECLINE",
    SoftDecline => "SOFT_DECLINE",
    ProcessingError => "PROCESSING_ERROR",
});

impl DeclineCategory {
    /// Classifies a gateway decline code (Stripe's `decline_code` vocabulary) by the failure
    /// playbook's row for it, so the two cannot disagree. Unknown codes count as soft declines:
    /// networks treat unspecified declines as retryable, and refusing every future retry on a
    /// code we have never seen would lose good customers.
    pub fn classify(decline_code: &str) -> DeclineCategory {
        crate::playbook::advice(decline_code)
            .map_or(DeclineCategory::SoftDecline, |row| row.decline)
    }

    /// Whether retrying the payment (later, or with authentication) may succeed.
    pub fn retry_may_help(self) -> bool {
        !matches!(self, DeclineCategory::HardDecline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_known_codes() {
        assert_eq!(
            DeclineCategory::classify("stolen_card"),
            DeclineCategory::HardDecline
        );
        assert_eq!(
            DeclineCategory::classify("insufficient_funds"),
            DeclineCategory::SoftDecline
        );
        assert_eq!(
            DeclineCategory::classify("processing_error"),
            DeclineCategory::ProcessingError
        );
        assert!(!DeclineCategory::HardDecline.retry_may_help());
        assert!(DeclineCategory::SoftDecline.retry_may_help());
    }

    #[test]
    fn unknown_codes_are_soft() {
        assert_eq!(
            DeclineCategory::classify("brand_new_code"),
            DeclineCategory::SoftDecline
        );
    }
}
