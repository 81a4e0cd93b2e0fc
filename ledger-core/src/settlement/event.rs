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

/// The most items one event of a batch's stream carries. A batch's items are recorded in
/// [`SettlementItemsAdded`] events of at most this many, so that every payload stays well under
/// the store's 64 KiB cap however long the batch: an item is at most about 470 bytes of JSON
/// (ids at their longest, every character escaped), so a full event is under 48 KiB.
pub const SETTLEMENT_ITEMS_PER_EVENT: usize = 100;

/// A batch and its totals: gross (signed sum of items), fees, reserve and
/// net = gross − fees − reserve. Its `item_count` items follow in [`SettlementItemsAdded`]
/// events of the same atomic append (schema version 2); a version 1 event carried them all
/// in `items`, which is why that field is still read. A recorded batch is only complete, and
/// its totals only add up, once all its items are there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementBatchRecorded {
    pub merchant_id: MerchantId,
    pub environment: Environment,
    pub currency: Currency,
    pub item_count: u32,
    /// Items carried in this event itself: every item of a version 1 event, none in events
    /// written now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<SettlementItem>,
    pub gross: Money,
    pub fees: Money,
    pub reserve: Money,
    pub net: Money,
}

/// The next items of a batch, in the order of the batch's lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementItemsAdded {
    pub items: Vec<SettlementItem>,
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
    SettlementItemsAdded(SettlementItemsAdded),
    PayoutInitiated(PayoutInitiated),
    PayoutPaid(PayoutPaid),
    PayoutFailed(PayoutFailed),
}

event_codec!(SettlementEvent, upcast_settlement_event, {
    SettlementBatchRecorded => 2,
    SettlementItemsAdded => 1,
    PayoutInitiated => 1,
    PayoutPaid => 1,
    PayoutFailed => 1,
});

/// Version 1 of `SettlementBatchRecorded` carried every item inline and no count: its count
/// is the number of its items, which stay where they are.
fn upcast_settlement_event(
    event_type: &str,
    schema_version: u32,
    payload: serde_json::Value,
) -> Result<serde_json::Value, CodecError> {
    let invalid = |reason: &str| CodecError::InvalidPayload {
        event_type: event_type.to_owned(),
        schema_version,
        reason: reason.to_owned(),
    };
    match (event_type, schema_version) {
        ("SettlementBatchRecorded", 1) => {
            let serde_json::Value::Object(mut fields) = payload else {
                return Err(invalid("the payload is not an object"));
            };
            let count = fields
                .get("items")
                .and_then(serde_json::Value::as_array)
                .map(Vec::len)
                .ok_or_else(|| invalid("a version 1 batch has no items array"))?;
            fields.insert("item_count".to_owned(), serde_json::Value::from(count));
            Ok(serde_json::Value::Object(fields))
        }
        _ => Err(invalid("no upcaster exists from this schema version")),
    }
}
