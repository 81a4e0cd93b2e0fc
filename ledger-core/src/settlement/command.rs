//! What a gateway's settlement report asks the ledger to record.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::ids::{Environment, MerchantId, PaymentId, PayoutId, SettlementBatchId};
use crate::money::{Money, PositiveMoney};
use crate::payment::SettledItem;
use crate::text::ShortText;

/// One line of a settlement: which money movement it settles, its gross and the gateway's fee.
/// Gross is always given as a positive amount; the item's kind says which way it moves money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    pub payment_id: PaymentId,
    pub item: SettledItem,
    pub gross: PositiveMoney,
    pub fee: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSettlementBatch {
    pub batch_id: SettlementBatchId,
    pub merchant_id: MerchantId,
    pub environment: Environment,
    pub currency: Currency,
    pub items: Vec<BatchItem>,
    /// Withheld by the gateway as a reserve or hold; defaults to zero.
    pub reserve: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayoutUpdate {
    Initiated {
        expected_arrival_date: Option<NaiveDate>,
    },
    Paid,
    Failed {
        failure_reason: Option<ShortText>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPayout {
    pub payout_id: PayoutId,
    pub amount: PositiveMoney,
    pub update: PayoutUpdate,
}

/// Every request a settlement batch can receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum SettlementCommand {
    RecordBatch(RecordSettlementBatch),
    RecordPayout(RecordPayout),
}
