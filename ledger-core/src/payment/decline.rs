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
    /// Classifies a gateway decline code (Stripe's `decline_code` vocabulary). Unknown codes
    /// count as soft declines: networks treat unspecified declines as retryable, and refusing
    /// every future retry on a code we have never seen would lose good customers.
    pub fn classify(decline_code: &str) -> DeclineCategory {
        match decline_code {
            "stolen_card"
            | "lost_card"
            | "pickup_card"
            | "fraudulent"
            | "invalid_account"
            | "card_not_supported"
            | "expired_card"
            | "incorrect_number"
            | "invalid_number"
            | "incorrect_cvc"
            | "invalid_cvc"
            | "invalid_expiry_month"
            | "invalid_expiry_year"
            | "restricted_card"
            | "security_violation"
            | "revocation_of_authorization"
            | "revocation_of_all_authorizations"
            | "do_not_try_again"
            | "do_not_honor"
            | "transaction_not_allowed"
            | "currency_not_supported"
            | "merchant_blacklist"
            | "new_account_information_available"
            | "not_permitted"
            | "stop_payment_order"
            | "no_action_taken"
            | "service_not_allowed"
            | "card_declined_invalid_pin" => DeclineCategory::HardDecline,
            "processing_error"
            | "issuer_not_available"
            | "reenter_transaction"
            | "try_again_later"
            | "duplicate_transaction" => DeclineCategory::ProcessingError,
            _ => DeclineCategory::SoftDecline,
        }
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
