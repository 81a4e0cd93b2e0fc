//! The failure playbook: complete for the codes Stripe documents, consistent with the decline
//! categories the ledger records, and silent about fraud to customers.

use ledger_core::payment::DeclineCategory;
use ledger_core::playbook::{
    advice, advice_or_fallback, Escalation, FailureCategory, NextStep, Retry,
    GENERIC_DECLINE_MESSAGE, PLAYBOOK,
};

/// Stripe's card decline codes (docs.stripe.com/declines/codes), every one of which a
/// `PaymentDeclined` may carry.
const STRIPE_DECLINE_CODES: &[&str] = &[
    "authentication_required",
    "approve_with_id",
    "call_issuer",
    "card_not_supported",
    "card_velocity_exceeded",
    "currency_not_supported",
    "do_not_honor",
    "do_not_try_again",
    "duplicate_transaction",
    "expired_card",
    "fraudulent",
    "generic_decline",
    "incorrect_number",
    "incorrect_cvc",
    "incorrect_pin",
    "incorrect_zip",
    "insufficient_funds",
    "invalid_account",
    "invalid_amount",
    "invalid_cvc",
    "invalid_expiry_month",
    "invalid_expiry_year",
    "invalid_number",
    "invalid_pin",
    "issuer_not_available",
    "lost_card",
    "merchant_blacklist",
    "new_account_information_available",
    "no_action_taken",
    "not_permitted",
    "offline_pin_required",
    "online_or_offline_pin_required",
    "pickup_card",
    "pin_try_exceeded",
    "processing_error",
    "reenter_transaction",
    "restricted_card",
    "revocation_of_all_authorizations",
    "revocation_of_authorization",
    "security_violation",
    "service_not_allowed",
    "stolen_card",
    "stop_payment_order",
    "testmode_decline",
    "transaction_not_allowed",
    "try_again_later",
    "withdrawal_count_limit_exceeded",
];

/// Card error codes (docs.stripe.com/error-codes) a card payment's confirmation, capture or
/// refund can meet, besides the decline codes above.
const STRIPE_CARD_ERROR_CODES: &[&str] = &[
    "amount_too_large",
    "amount_too_small",
    "api_key_expired",
    "balance_insufficient",
    "capture_charge_authorization_expired",
    "capture_unauthorized_payment",
    "card_decline_rate_limit_exceeded",
    "card_declined",
    "charge_already_captured",
    "charge_already_refunded",
    "charge_disputed",
    "charge_exceeds_source_limit",
    "charge_expired_for_capture",
    "country_unsupported",
    "expired_card",
    "idempotency_key_in_use",
    "incorrect_cvc",
    "incorrect_number",
    "incorrect_zip",
    "invalid_charge_amount",
    "invalid_cvc",
    "invalid_expiry_month",
    "invalid_expiry_year",
    "invalid_number",
    "livemode_mismatch",
    "lock_timeout",
    "parameter_invalid_empty",
    "parameter_invalid_integer",
    "parameter_missing",
    "parameter_unknown",
    "payment_intent_authentication_failure",
    "payment_intent_payment_attempt_expired",
    "payment_intent_payment_attempt_failed",
    "payment_intent_unexpected_state",
    "payment_method_provider_decline",
    "payment_method_provider_timeout",
    "payment_method_unactivated",
    "processing_error",
    "rate_limit",
    "refund_disputed_payment",
    "resource_missing",
    "secret_key_required",
    "testmode_charges_only",
];

#[test]
fn every_documented_code_has_a_row() {
    let missing: Vec<&str> = STRIPE_DECLINE_CODES
        .iter()
        .chain(STRIPE_CARD_ERROR_CODES)
        .copied()
        .filter(|code| advice(code).is_none())
        .collect();
    assert!(missing.is_empty(), "codes without advice: {missing:?}");
}

#[test]
fn codes_are_unique_and_sorted_so_a_reader_finds_them() {
    for pair in PLAYBOOK.windows(2) {
        assert!(
            pair[0].code < pair[1].code,
            "{} must come before {} and only once",
            pair[0].code,
            pair[1].code
        );
    }
}

#[test]
fn fraud_never_tells_the_customer_why() {
    let fraud: Vec<_> = PLAYBOOK
        .iter()
        .filter(|row| row.category == FailureCategory::Fraud)
        .collect();
    for code in [
        "fraudulent",
        "lost_card",
        "stolen_card",
        "pickup_card",
        "merchant_blacklist",
    ] {
        assert!(
            fraud.iter().any(|row| row.code == code),
            "{code} must be a fraud row"
        );
    }
    for row in &fraud {
        assert_eq!(
            row.customer_message, GENERIC_DECLINE_MESSAGE,
            "{}",
            row.code
        );
        assert_eq!(row.retry, Retry::No, "{}", row.code);
        assert_ne!(row.escalation, Escalation::Nobody, "{}", row.code);
    }
    // No message at all, fraud row or not, names a reason the customer must not learn.
    for row in PLAYBOOK {
        let message = row.customer_message.to_lowercase();
        for word in [
            "fraud",
            "stolen",
            "lost",
            "blacklist",
            "block list",
            "suspect",
            "risk",
        ] {
            assert!(
                !message.contains(word),
                "{}'s customer message says {word:?}",
                row.code
            );
        }
    }
}

#[test]
fn retry_advice_agrees_with_the_recorded_decline_category() {
    for row in PLAYBOOK {
        let agrees = match row.decline {
            DeclineCategory::HardDecline => {
                matches!(row.retry, Retry::No | Retry::AfterCustomerAction)
            }
            DeclineCategory::SoftDecline => row.retry != Retry::No,
            DeclineCategory::ProcessingError => matches!(row.retry, Retry::Now | Retry::Later),
        };
        assert!(
            agrees,
            "{}: {:?} with retry {:?}",
            row.code, row.decline, row.retry
        );
        assert_eq!(
            DeclineCategory::classify(row.code).retry_may_help(),
            row.retry != Retry::No && row.decline != DeclineCategory::HardDecline,
            "{}",
            row.code
        );
    }
}

#[test]
fn next_steps_fit_the_category() {
    for row in PLAYBOOK {
        match row.category {
            FailureCategory::Authentication if row.escalation == Escalation::Nobody => {
                assert!(
                    matches!(
                        row.next_step,
                        NextStep::Authenticate | NextStep::AnotherCard
                    ),
                    "{}",
                    row.code
                )
            }
            FailureCategory::Network | FailureCategory::GatewayTimeout => {
                assert_eq!(row.next_step, NextStep::Wait, "{}", row.code);
                assert!(
                    matches!(row.retry, Retry::Now | Retry::Later),
                    "{}",
                    row.code
                );
            }
            FailureCategory::PostAuthorizationFailure => {
                assert_ne!(row.escalation, Escalation::Nobody, "{}", row.code)
            }
            _ => {}
        }
    }
}

/// Categories already recorded in `PaymentDeclined` events stay what they were when the
/// playbook took over classifying codes.
#[test]
fn recorded_classifications_are_unchanged() {
    let hard = [
        "stolen_card",
        "lost_card",
        "pickup_card",
        "fraudulent",
        "invalid_account",
        "card_not_supported",
        "expired_card",
        "incorrect_number",
        "invalid_number",
        "incorrect_cvc",
        "invalid_cvc",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "restricted_card",
        "security_violation",
        "revocation_of_authorization",
        "revocation_of_all_authorizations",
        "do_not_try_again",
        "do_not_honor",
        "transaction_not_allowed",
        "currency_not_supported",
        "merchant_blacklist",
        "new_account_information_available",
        "not_permitted",
        "stop_payment_order",
        "no_action_taken",
        "service_not_allowed",
        "card_declined_invalid_pin",
    ];
    let processing = [
        "processing_error",
        "issuer_not_available",
        "reenter_transaction",
        "try_again_later",
        "duplicate_transaction",
    ];
    for code in hard {
        assert_eq!(
            DeclineCategory::classify(code),
            DeclineCategory::HardDecline,
            "{code}"
        );
    }
    for code in processing {
        assert_eq!(
            DeclineCategory::classify(code),
            DeclineCategory::ProcessingError,
            "{code}"
        );
    }
    for code in STRIPE_DECLINE_CODES {
        if !hard.contains(code) && !processing.contains(code) {
            assert_eq!(
                DeclineCategory::classify(code),
                DeclineCategory::SoftDecline,
                "{code}"
            );
        }
    }
}

#[test]
fn a_decline_without_a_documented_code_gets_the_generic_advice() {
    let generic = advice("generic_decline").expect("generic_decline has a row");
    assert_eq!(advice_or_fallback(None), generic);
    assert_eq!(advice_or_fallback(Some("brand_new_code")), generic);
    assert_eq!(
        advice_or_fallback(Some("insufficient_funds")).code,
        "insufficient_funds"
    );
    assert_eq!(generic.customer_message, GENERIC_DECLINE_MESSAGE);
}
