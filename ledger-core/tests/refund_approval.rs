//! `LEDGER_REFUND_APPROVAL_THRESHOLDS` as an operator writes it: good settings parse, bad ones
//! are refused with the reason, none is half-read.

use ledger_core::currency::Currency;
use ledger_core::payment::refund_approval::{ThresholdsError, DEFAULT_REFUND_APPROVAL_THRESHOLD};
use ledger_core::payment::RefundApprovalThresholds;
use rust_decimal::Decimal;

#[test]
fn thresholds_are_per_currency_with_a_default_for_the_rest() {
    let thresholds = RefundApprovalThresholds::parse("USD:10000, JPY:1500000").unwrap();
    assert_eq!(thresholds.threshold(Currency::USD), Decimal::from(10_000));
    assert_eq!(
        thresholds.threshold(Currency::JPY),
        Decimal::from(1_500_000)
    );
    assert_eq!(
        thresholds.threshold(Currency::EUR),
        Decimal::from(DEFAULT_REFUND_APPROVAL_THRESHOLD)
    );
    let with_rest = RefundApprovalThresholds::parse("usd:250.50,*:500").unwrap();
    assert_eq!(
        with_rest.threshold(Currency::USD),
        "250.50".parse().unwrap()
    );
    assert_eq!(with_rest.threshold(Currency::KWD), Decimal::from(500));
}

#[test]
fn malformed_thresholds_are_refused() {
    for (text, expected) in [
        ("USD", "not CURRENCY:AMOUNT"),
        ("USD:10000,USD:5", "given twice"),
        ("*:1,*:2", "given twice"),
        ("XXX:100", "unknown currency"),
        ("JPY:10.5", "decimal places"),
        ("USD:-1", "negative"),
        ("*:-1", "negative"),
        ("USD:lots", "not a decimal"),
    ] {
        let error: ThresholdsError = RefundApprovalThresholds::parse(text).unwrap_err();
        assert!(
            error.to_string().contains(expected),
            "{text}: {error} should say {expected}"
        );
    }
}
