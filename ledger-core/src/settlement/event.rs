//! What happened to a settlement batch.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::codec::{event_codec, CodecError};
use crate::currency::Currency;
use crate::ids::{Environment, MerchantId, PaymentId, PayoutId};
use crate::money::Money;
use crate::payment::SettledItem;
use crate::text::ShortText;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementItem {
    pub payment_id: PaymentId,
    pub item: SettledItem,
    /// Positive; captures add it to the batch, refunds and disputes take it away.
    pub gross: Money,
    pub fee: Money,
}

impl SettlementItem {
    /// The item's gross with the sign of its effect on the merchant's money.
    pub fn signed_gross(&self) -> Money {
        match self.item {
            SettledItem::Capture(_) => self.gross,
            SettledItem::Refund(_) | SettledItem::Dispute(_) => self.gross.negate(),
        }
    }
}

/// A batch and its totals: gross (signed sum of items), fees, reserve and
/// net = gross − fees − reserve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementBatchRecorded {
    pub merchant_id: MerchantId,
    pub environment: Environment,
    pub currency: Currency,
    pub items: Vec<SettlementItem>,
    pub gross: Money,
    pub fees: Money,
    pub reserve: Money,
    pub net: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutInitiated {
    pub payout_id: PayoutId,
    pub amount: Money,
    pub expected_arrival_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutPaid {
    pub payout_id: PayoutId,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutFailed {
    pub payout_id: PayoutId,
    pub amount: Money,
    pub reason: Option<ShortText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettlementEvent {
    SettlementBatchRecorded(SettlementBatchRecorded),
    PayoutInitiated(PayoutInitiated),
    PayoutPaid(PayoutPaid),
    PayoutFailed(PayoutFailed),
}

event_codec!(SettlementEvent, upcast_settlement_event, {
    SettlementBatchRecorded => 1,
    PayoutInitiated => 1,
    PayoutPaid => 1,
    PayoutFailed => 1,
});

/// No settlement event has an older schema yet.
fn upcast_settlement_event(
    event_type: &str,
    schema_version: u32,
    _payload: serde_json::Value,
) -> Result<serde_json::Value, CodecError> {
    Err(CodecError::InvalidPayload {
        event_type: event_type.to_owned(),
        schema_version,
        reason: "no upcaster exists from this schema version".to_owned(),
    })
}
