//! Stripe's test cards, as plain data: each card's number, the `pm_card_…` tokens that stand
//! for it, its brand, and what happens when it pays.
//!
//! Checked against Stripe's testing documentation ("Testing" → cards by brand, declined
//! payments, disputes, refunds, 3D Secure). Tokens are Stripe's: most decline tokens exist
//! both with and without the `visa_` infix (`pm_card_chargeDeclined`,
//! `pm_card_visa_chargeDeclined`), and both are listed.

/// What paying with a card does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The charge succeeds.
    Succeeds,
    /// The charge is declined: Stripe's error `code`, the issuer's `decline_code` (when
    /// Stripe documents one), the message, and the `param` Stripe names.
    Declined {
        code: &'static str,
        decline_code: Option<&'static str>,
        message: &'static str,
        param: Option<&'static str>,
    },
    /// The charge succeeds, then the cardholder disputes it with this reason.
    DisputedAfterSuccess { reason: &'static str },
    /// The charge succeeds; a refund starts `pending` and succeeds later.
    RefundPendingThenSucceeds,
    /// The charge succeeds; a refund succeeds, then fails later.
    RefundSucceedsThenFails,
    /// The payment needs 3D Secure authentication (`requires_action`) before it is charged.
    RequiresAuthentication,
}

/// One test card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    pub number: &'static str,
    pub tokens: &'static [&'static str],
    /// Stripe's `card.brand`: `visa`, `mastercard`, `amex`, `discover`, `diners`, `jcb`,
    /// `unionpay`.
    pub brand: &'static str,
    /// `credit`, `debit` or `prepaid`.
    pub funding: &'static str,
    pub outcome: Outcome,
}

impl TestCard {
    pub fn last4(&self) -> &'static str {
        &self.number[self.number.len().saturating_sub(4)..]
    }
}

const DECLINED: &str = "Your card was declined.";

const fn declined(decline_code: &'static str, message: &'static str) -> Outcome {
    Outcome::Declined {
        code: "card_declined",
        decline_code: Some(decline_code),
        message,
        param: None,
    }
}

const fn card(
    number: &'static str,
    tokens: &'static [&'static str],
    brand: &'static str,
    funding: &'static str,
    outcome: Outcome,
) -> TestCard {
    TestCard {
        number,
        tokens,
        brand,
        funding,
        outcome,
    }
}

/// Every test card the sandbox knows.
pub const TEST_CARDS: &[TestCard] = &[
    // Successful payments, by brand.
    card("4242424242424242", &["pm_card_visa"], "visa", "credit", Outcome::Succeeds),
    card("4000056655665556", &["pm_card_visa_debit"], "visa", "debit", Outcome::Succeeds),
    card("5555555555554444", &["pm_card_mastercard"], "mastercard", "credit", Outcome::Succeeds),
    card("2223003122003222", &[], "mastercard", "credit", Outcome::Succeeds),
    card("5200828282828210", &["pm_card_mastercard_debit"], "mastercard", "debit", Outcome::Succeeds),
    card("5105105105105100", &["pm_card_mastercard_prepaid"], "mastercard", "prepaid", Outcome::Succeeds),
    card("378282246310005", &["pm_card_amex"], "amex", "credit", Outcome::Succeeds),
    card("371449635398431", &[], "amex", "credit", Outcome::Succeeds),
    card("6011111111111117", &["pm_card_discover"], "discover", "credit", Outcome::Succeeds),
    card("3056930009020004", &["pm_card_diners"], "diners", "credit", Outcome::Succeeds),
    card("3566002020360505", &["pm_card_jcb"], "jcb", "credit", Outcome::Succeeds),
    card("6200000000000005", &["pm_card_unionpay"], "unionpay", "credit", Outcome::Succeeds),
    // Declines.
    card(
        "4000000000000002",
        &["pm_card_chargeDeclined", "pm_card_visa_chargeDeclined"],
        "visa",
        "credit",
        declined("generic_decline", DECLINED),
    ),
    card(
        "4000000000009995",
        &["pm_card_chargeDeclinedInsufficientFunds", "pm_card_visa_chargeDeclinedInsufficientFunds"],
        "visa",
        "credit",
        declined("insufficient_funds", "Your card has insufficient funds."),
    ),
    card(
        "4000000000009987",
        &["pm_card_chargeDeclinedLostCard", "pm_card_visa_chargeDeclinedLostCard"],
        "visa",
        "credit",
        declined("lost_card", DECLINED),
    ),
    card(
        "4000000000009979",
        &["pm_card_chargeDeclinedStolenCard", "pm_card_visa_chargeDeclinedStolenCard"],
        "visa",
        "credit",
        declined("stolen_card", DECLINED),
    ),
    card(
        "4000000000006975",
        &["pm_card_chargeDeclinedVelocityLimitExceeded", "pm_card_visa_chargeDeclinedVelocityLimitExceeded"],
        "visa",
        "credit",
        declined(
            "card_velocity_exceeded",
            "Your card was declined for making repeated attempts too frequently or exceeding its amount limit.",
        ),
    ),
    card(
        "4000000000000069",
        &["pm_card_chargeDeclinedExpiredCard", "pm_card_visa_chargeDeclinedExpiredCard"],
        "visa",
        "credit",
        Outcome::Declined {
            code: "expired_card",
            decline_code: None,
            message: "Your card has expired.",
            param: Some("exp_month"),
        },
    ),
    card(
        "4000000000000127",
        &["pm_card_chargeDeclinedIncorrectCvc", "pm_card_visa_chargeDeclinedIncorrectCvc"],
        "visa",
        "credit",
        Outcome::Declined {
            code: "incorrect_cvc",
            decline_code: None,
            message: "Your card's security code is incorrect.",
            param: Some("cvc"),
        },
    ),
    card(
        "4000000000000119",
        &["pm_card_chargeDeclinedProcessingError", "pm_card_visa_chargeDeclinedProcessingError"],
        "visa",
        "credit",
        Outcome::Declined {
            code: "processing_error",
            decline_code: None,
            message: "An error occurred while processing your card. Try again in a little bit.",
            param: None,
        },
    ),
    // Disputes after a successful charge.
    card(
        "4000000000000259",
        &["pm_card_createDispute"],
        "visa",
        "credit",
        Outcome::DisputedAfterSuccess { reason: "fraudulent" },
    ),
    card(
        "4000000000002685",
        &["pm_card_createDisputeProductNotReceived"],
        "visa",
        "credit",
        Outcome::DisputedAfterSuccess {
            reason: "product_not_received",
        },
    ),
    // Refunds.
    card(
        "4000000000007726",
        &["pm_card_pendingRefund"],
        "visa",
        "credit",
        Outcome::RefundPendingThenSucceeds,
    ),
    card(
        "4000000000005126",
        &["pm_card_refundFail"],
        "visa",
        "credit",
        Outcome::RefundSucceedsThenFails,
    ),
    // 3D Secure.
    card(
        "4000002500003155",
        &["pm_card_authenticationRequiredOnSetup"],
        "visa",
        "credit",
        Outcome::RequiresAuthentication,
    ),
    card(
        "4000002760003184",
        &["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"],
        "visa",
        "credit",
        Outcome::RequiresAuthentication,
    ),
];

/// What a card number Stripe's test mode does not list does: a number that fails the Luhn
/// check is `incorrect_number`; a valid one is a real card, which test mode declines.
pub const INCORRECT_NUMBER: Outcome = Outcome::Declined {
    code: "incorrect_number",
    decline_code: None,
    message: "Your card number is incorrect.",
    param: Some("number"),
};

/// Test mode refuses real card numbers.
pub const LIVE_CARD_IN_TEST_MODE: Outcome = Outcome::Declined {
    code: "card_declined",
    decline_code: Some("test_mode_live_card"),
    message: "Your card was declined. Your request was in test mode, but used a non test (live) card. For a list of valid test cards, visit: https://stripe.com/docs/testing.",
    param: None,
};

/// The card a `pm_card_…` token stands for.
pub fn by_token(token: &str) -> Option<&'static TestCard> {
    TEST_CARDS.iter().find(|card| card.tokens.contains(&token))
}

/// What a raw card number does (spaces allowed, as people type them).
pub fn by_number(number: &str) -> Result<&'static TestCard, Outcome> {
    let digits: String = number.chars().filter(|c| !c.is_whitespace()).collect();
    if let Some(card) = TEST_CARDS.iter().find(|card| card.number == digits) {
        return Ok(card);
    }
    if passes_luhn(&digits) {
        Err(LIVE_CARD_IN_TEST_MODE)
    } else {
        Err(INCORRECT_NUMBER)
    }
}

fn passes_luhn(digits: &str) -> bool {
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            match index % 2 {
                0 => digit,
                _ if digit * 2 > 9 => digit * 2 - 9,
                _ => digit * 2,
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_number_passes_luhn_except_none_and_tokens_are_unique() {
        for card in TEST_CARDS {
            assert!(passes_luhn(card.number), "{}", card.number);
        }
        let mut tokens: Vec<_> = TEST_CARDS.iter().flat_map(|card| card.tokens).collect();
        let count = tokens.len();
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), count);
    }

    #[test]
    fn unknown_numbers_are_incorrect_or_live() {
        assert_eq!(by_number("4242424242424241"), Err(INCORRECT_NUMBER));
        assert_eq!(by_number("4111111111111111"), Err(LIVE_CARD_IN_TEST_MODE));
        assert_eq!(
            by_number("4242 4242 4242 4242").map(|c| c.brand),
            Ok("visa")
        );
    }
}
