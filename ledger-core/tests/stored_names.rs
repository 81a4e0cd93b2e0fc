//! The stored names of the core's enums: the text in read-model rows already written. These
//! tables are a second copy on purpose: renaming a variant's stored name in the core fails
//! here, since existing rows would no longer read.

use std::fmt::Debug;
use std::str::FromStr;

use ledger_core::ids::Environment;
use ledger_core::journal::{Account, Side};
use ledger_core::payment::state::{DisputeStatus, RefundStatus};
use ledger_core::payment::{
    CaptureMode, DeclineCategory, OrderPaymentStatus, PaymentStatus, SettledItemKind,
};
use ledger_core::reconciliation::{ExceptionClass, PayoutOutcome, ReconciliationSource, RunStatus};
use ledger_core::settlement::PayoutStatus;
use ledger_core::stored::UnknownName;
use proptest::prelude::*;

/// Every variant's name is the expected one, reads back as the same variant, and the table
/// has no variant the expectation lacks.
fn check<E>(all: &[E], as_str: fn(E) -> &'static str, expected: &[(E, &str)])
where
    E: Copy + PartialEq + Debug + FromStr<Err = UnknownName>,
{
    assert_eq!(all.len(), expected.len(), "variants of {expected:?}");
    for (variant, name) in expected {
        assert_eq!(as_str(*variant), *name);
        assert_eq!(E::from_str(name), Ok(*variant));
    }
    for variant in all {
        assert_eq!(E::from_str(as_str(*variant)), Ok(*variant));
    }
}

/// The names stored today, enum by enum.
#[test]
fn every_variant_round_trips_through_its_stored_name() {
    use PaymentStatus as P;
    check(
        &P::ALL,
        P::as_str,
        &[
            (P::Initiated, "INITIATED"),
            (P::Authorized, "AUTHORIZED"),
            (P::PartiallyCaptured, "PARTIALLY_CAPTURED"),
            (P::Captured, "CAPTURED"),
            (P::PartiallyRefunded, "PARTIALLY_REFUNDED"),
            (P::Refunded, "REFUNDED"),
            (P::Voided, "VOIDED"),
            (P::Declined, "DECLINED"),
            (P::Expired, "EXPIRED"),
        ],
    );
    check(
        &CaptureMode::ALL,
        CaptureMode::as_str,
        &[
            (CaptureMode::Automatic, "AUTOMATIC"),
            (CaptureMode::Manual, "MANUAL"),
        ],
    );
    check(
        &RefundStatus::ALL,
        RefundStatus::as_str,
        &[
            (RefundStatus::Pending, "PENDING"),
            (RefundStatus::Succeeded, "SUCCEEDED"),
            (RefundStatus::Failed, "FAILED"),
        ],
    );
    check(
        &DisputeStatus::ALL,
        DisputeStatus::as_str,
        &[
            (DisputeStatus::NeedsResponse, "NEEDS_RESPONSE"),
            (DisputeStatus::UnderReview, "UNDER_REVIEW"),
            (DisputeStatus::Won, "WON"),
            (DisputeStatus::Lost, "LOST"),
        ],
    );
    check(
        &DeclineCategory::ALL,
        DeclineCategory::as_str,
        &[
            (DeclineCategory::HardDecline, "HARD_DECLINE"),
            (DeclineCategory::SoftDecline, "SOFT_DECLINE"),
            (DeclineCategory::ProcessingError, "PROCESSING_ERROR"),
        ],
    );
    use OrderPaymentStatus as O;
    check(
        &O::ALL,
        O::as_str,
        &[
            (O::Unpaid, "UNPAID"),
            (O::Authorized, "AUTHORIZED"),
            (O::Paid, "PAID"),
            (O::PartiallyRefunded, "PARTIALLY_REFUNDED"),
            (O::Refunded, "REFUNDED"),
            (O::Disputed, "DISPUTED"),
        ],
    );
    check(
        &SettledItemKind::ALL,
        SettledItemKind::as_str,
        &[
            (SettledItemKind::Capture, "CAPTURE"),
            (SettledItemKind::Refund, "REFUND"),
            (SettledItemKind::Dispute, "DISPUTE"),
        ],
    );
    check(
        &PayoutStatus::ALL,
        PayoutStatus::as_str,
        &[
            (PayoutStatus::InTransit, "IN_TRANSIT"),
            (PayoutStatus::Paid, "PAID"),
            (PayoutStatus::Failed, "FAILED"),
        ],
    );
    check(
        &RunStatus::ALL,
        RunStatus::as_str,
        &[
            (RunStatus::Running, "RUNNING"),
            (RunStatus::Completed, "COMPLETED"),
        ],
    );
    check(
        &ReconciliationSource::ALL,
        ReconciliationSource::as_str,
        &[(ReconciliationSource::StripePayouts, "stripe_payouts")],
    );
    check(
        &PayoutOutcome::ALL,
        PayoutOutcome::as_str,
        &[
            (PayoutOutcome::Proven, "proven"),
            (PayoutOutcome::Unproven, "unproven"),
        ],
    );
    use ExceptionClass as C;
    check(
        &C::ALL,
        C::as_str,
        &[
            (C::MissingFromLedger, "missing_from_ledger"),
            (C::MissingFromPayout, "missing_from_payout"),
            (C::AmountMismatch, "amount_mismatch"),
            (C::FeeMismatch, "fee_mismatch"),
            (C::CurrencyMismatch, "currency_mismatch"),
            (C::PayoutTotalMismatch, "payout_total_mismatch"),
            (C::SettledElsewhere, "settled_elsewhere"),
            (C::UnsupportedCategory, "unsupported_category"),
            (C::BatchRefused, "batch_refused"),
            (C::InvalidRow, "invalid_row"),
        ],
    );
    use Account as A;
    check(
        &A::ALL,
        A::as_str,
        &[
            (A::GatewayPending, "gateway_pending"),
            (A::Sales, "sales"),
            (A::Refunds, "refunds"),
            (A::DisputesOpen, "disputes_open"),
            (A::DisputeFees, "dispute_fees"),
            (A::ChargebackLosses, "chargeback_losses"),
            (A::ProcessingFees, "processing_fees"),
            (A::GatewayReserve, "gateway_reserve"),
            (A::GatewaySettled, "gateway_settled"),
            (A::PayoutsInTransit, "payouts_in_transit"),
            (A::Bank, "bank"),
        ],
    );
    check(
        &Side::ALL,
        Side::as_str,
        &[(Side::Debit, "debit"), (Side::Credit, "credit")],
    );
    check(
        &Environment::ALL,
        Environment::as_str,
        &[(Environment::Test, "test"), (Environment::Live, "live")],
    );
}

/// Where an enum is in the JSON of events too, serde spells it as it is stored.
#[test]
fn stored_names_are_the_names_in_the_json_of_events() {
    fn same<E: serde::Serialize + Copy>(all: &[E], as_str: fn(E) -> &'static str) {
        for variant in all {
            assert_eq!(
                serde_json::to_value(variant).unwrap(),
                serde_json::Value::from(as_str(*variant))
            );
        }
    }
    same(&PaymentStatus::ALL, PaymentStatus::as_str);
    same(&CaptureMode::ALL, CaptureMode::as_str);
    same(&RefundStatus::ALL, RefundStatus::as_str);
    same(&DisputeStatus::ALL, DisputeStatus::as_str);
    same(&DeclineCategory::ALL, DeclineCategory::as_str);
    same(&OrderPaymentStatus::ALL, OrderPaymentStatus::as_str);
    same(&SettledItemKind::ALL, SettledItemKind::as_str);
    same(&PayoutStatus::ALL, PayoutStatus::as_str);
    same(&RunStatus::ALL, RunStatus::as_str);
    same(&ReconciliationSource::ALL, ReconciliationSource::as_str);
    same(&PayoutOutcome::ALL, PayoutOutcome::as_str);
    same(&ExceptionClass::ALL, ExceptionClass::as_str);
    same(&Account::ALL, Account::as_str);
    same(&Side::ALL, Side::as_str);
    same(&Environment::ALL, Environment::as_str);
}

/// The variant names themselves and other spellings are not stored names.
#[test]
fn other_spellings_are_unknown_names() {
    let error = PaymentStatus::from_str("captured").unwrap_err();
    assert_eq!(error.kind, "payment status");
    assert_eq!(error.name, "captured");
    assert!(PaymentStatus::from_str("Captured").is_err());
    assert!(ExceptionClass::from_str("AMOUNT_MISMATCH").is_err());
    assert!(Environment::from_str("").is_err());
    assert!(PayoutStatus::from_str("PAID ").is_err());
}

proptest! {
    /// Any text that reads as a variant is exactly that variant's stored name.
    #[test]
    fn whatever_reads_is_a_stored_name(text in "[A-Za-z_ ]{0,24}") {
        if let Ok(status) = PaymentStatus::from_str(&text) {
            prop_assert_eq!(status.as_str(), text.as_str());
        }
        if let Ok(class) = ExceptionClass::from_str(&text) {
            prop_assert_eq!(class.as_str(), text.as_str());
        }
        if let Ok(account) = Account::from_str(&text) {
            prop_assert_eq!(account.as_str(), text.as_str());
        }
    }

    /// Every stored name of every status reads back, however the variant is picked.
    #[test]
    fn a_picked_variant_round_trips(index in 0usize..64) {
        let payment = PaymentStatus::ALL[index % PaymentStatus::ALL.len()];
        prop_assert_eq!(PaymentStatus::from_str(payment.as_str()), Ok(payment));
        let class = ExceptionClass::ALL[index % ExceptionClass::ALL.len()];
        prop_assert_eq!(ExceptionClass::from_str(class.as_str()), Ok(class));
        let order = OrderPaymentStatus::ALL[index % OrderPaymentStatus::ALL.len()];
        prop_assert_eq!(OrderPaymentStatus::from_str(order.as_str()), Ok(order));
    }
}
