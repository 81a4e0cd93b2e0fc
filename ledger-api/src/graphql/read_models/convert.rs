//! Stored names and amounts of the read models turned into GraphQL values. The projections
//! store the core's enum names as text; an unknown name means the read model and this code
//! disagree, which is an internal error, not the client's.

use ledger_core::Currency;
use rust_decimal::Decimal;

use crate::error::{ApiError, ApiResult};
use crate::graphql::scalars::DecimalText;
use crate::graphql::types::{
    CaptureMode, DisputeStatus, Environment, PaymentStatus, PayoutStatus, RefundStatus,
};

/// An amount at the exact scale of its currency (sums in SQL may carry another scale).
pub fn money(amount: Decimal, currency: &str) -> DecimalText {
    let mut amount = amount;
    if let Ok(currency) = Currency::parse(currency) {
        amount.rescale(currency.minor_units());
    }
    DecimalText(amount.to_string())
}

/// A ratio (rates of the metrics) to six decimal places.
pub fn ratio(value: Option<Decimal>) -> Option<DecimalText> {
    value.map(|value| DecimalText(value.round_dp(6).normalize().to_string()))
}

fn unknown(kind: &str, name: &str) -> ApiError {
    ApiError::internal(format!("unknown stored {kind} {name:?}"))
}

pub fn environment(name: &str) -> ApiResult<Environment> {
    match name {
        "test" => Ok(Environment::Test),
        "live" => Ok(Environment::Live),
        other => Err(unknown("environment", other)),
    }
}

pub fn payment_status(name: &str) -> ApiResult<PaymentStatus> {
    Ok(match name {
        "INITIATED" => PaymentStatus::Initiated,
        "AUTHORIZED" => PaymentStatus::Authorized,
        "PARTIALLY_CAPTURED" => PaymentStatus::PartiallyCaptured,
        "CAPTURED" => PaymentStatus::Captured,
        "PARTIALLY_REFUNDED" => PaymentStatus::PartiallyRefunded,
        "REFUNDED" => PaymentStatus::Refunded,
        "VOIDED" => PaymentStatus::Voided,
        "DECLINED" => PaymentStatus::Declined,
        "EXPIRED" => PaymentStatus::Expired,
        other => return Err(unknown("payment status", other)),
    })
}

pub fn payment_status_name(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Initiated => "INITIATED",
        PaymentStatus::Authorized => "AUTHORIZED",
        PaymentStatus::PartiallyCaptured => "PARTIALLY_CAPTURED",
        PaymentStatus::Captured => "CAPTURED",
        PaymentStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
        PaymentStatus::Refunded => "REFUNDED",
        PaymentStatus::Voided => "VOIDED",
        PaymentStatus::Declined => "DECLINED",
        PaymentStatus::Expired => "EXPIRED",
    }
}

pub fn capture_mode(name: &str) -> ApiResult<CaptureMode> {
    match name {
        "AUTOMATIC" => Ok(CaptureMode::Automatic),
        "MANUAL" => Ok(CaptureMode::Manual),
        other => Err(unknown("capture mode", other)),
    }
}

pub fn refund_status(name: &str) -> ApiResult<RefundStatus> {
    match name {
        "PENDING" => Ok(RefundStatus::Pending),
        "SUCCEEDED" => Ok(RefundStatus::Succeeded),
        "FAILED" => Ok(RefundStatus::Failed),
        other => Err(unknown("refund status", other)),
    }
}

pub fn dispute_status(name: &str) -> ApiResult<DisputeStatus> {
    match name {
        "NEEDS_RESPONSE" => Ok(DisputeStatus::NeedsResponse),
        "UNDER_REVIEW" => Ok(DisputeStatus::UnderReview),
        "WON" => Ok(DisputeStatus::Won),
        "LOST" => Ok(DisputeStatus::Lost),
        other => Err(unknown("dispute status", other)),
    }
}

pub fn dispute_status_name(status: DisputeStatus) -> &'static str {
    match status {
        DisputeStatus::NeedsResponse => "NEEDS_RESPONSE",
        DisputeStatus::UnderReview => "UNDER_REVIEW",
        DisputeStatus::Won => "WON",
        DisputeStatus::Lost => "LOST",
    }
}

pub fn payout_status(name: &str) -> ApiResult<PayoutStatus> {
    match name {
        "IN_TRANSIT" => Ok(PayoutStatus::InTransit),
        "PAID" => Ok(PayoutStatus::Paid),
        "FAILED" => Ok(PayoutStatus::Failed),
        other => Err(unknown("payout status", other)),
    }
}

pub fn payout_status_name(status: PayoutStatus) -> &'static str {
    match status {
        PayoutStatus::InTransit => "IN_TRANSIT",
        PayoutStatus::Paid => "PAID",
        PayoutStatus::Failed => "FAILED",
    }
}

/// Stored 64-bit counters are never negative; a negative one is corrupt data.
pub fn position(stored: i64) -> ApiResult<crate::graphql::scalars::Position> {
    u64::try_from(stored)
        .map(crate::graphql::scalars::Position)
        .map_err(|_| ApiError::internal(format!("negative stored position {stored}")))
}
