//! The Stripe objects the mapping reads, with only the fields it uses.
//!
//! Tolerant by design: unknown fields are ignored, and a field is optional wherever Stripe
//! may omit it or an API version lacks it. Two shapes of the same fact are both accepted:
//! - a PaymentIntent's charge: `latest_charge` (2022-11-15 and later, an id or an expanded
//!   object) or the older embedded `charges` list;
//! - a Charge's refunds: the embedded `refunds` list exists only before 2022-11-15 or when
//!   expanded.
//!
//! Amounts are integer minor units, as Stripe sends them; currencies are Stripe's lower-case
//! ISO codes. Both become domain types in [`super::mapping`], never here.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Stripe's metadata: up to 50 string keys with string values.
pub type Metadata = BTreeMap<String, String>;

/// Reads `null` like an absent field: Stripe renders empty collections either way across
/// versions and object types.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A reference Stripe renders either as an id or, when expanded, as the object itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T: HasId> Expandable<T> {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(object) => object.id(),
        }
    }

    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Id(_) => None,
            Expandable::Object(object) => Some(object),
        }
    }
}

/// Any Stripe object, read for its id only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectReference {
    pub id: String,
}

pub trait HasId {
    fn id(&self) -> &str;
}

impl HasId for ObjectReference {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Charge {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A page of a list Stripe embeds in an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentIntent {
    /// `pi_…`
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_capturable: i64,
    #[serde(default)]
    pub amount_received: i64,
    pub currency: String,
    /// `automatic`, `automatic_async` or `manual`; Stripe's default is automatic.
    #[serde(default)]
    pub capture_method: Option<String>,
    pub status: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(default)]
    pub last_payment_error: Option<PaymentError>,
    #[serde(default)]
    pub cancellation_reason: Option<String>,
    #[serde(default)]
    pub latest_charge: Option<Expandable<Charge>>,
    /// Only in API versions before 2022-11-15.
    #[serde(default)]
    pub charges: Option<List<Charge>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub payment_method_types: Vec<String>,
}

impl PaymentIntent {
    /// The id of the charge that carries the payment (the newest one), whichever API version
    /// rendered the intent.
    pub fn latest_charge_id(&self) -> Option<&str> {
        match (&self.latest_charge, &self.charges) {
            (Some(charge), _) => Some(charge.id()),
            // Stripe lists charges newest first.
            (None, Some(charges)) => charges.data.first().map(|charge| charge.id.as_str()),
            (None, None) => None,
        }
    }

    /// The newest charge's object, when the event carries it.
    pub fn latest_charge_object(&self) -> Option<&Charge> {
        match (&self.latest_charge, &self.charges) {
            (Some(charge), _) => charge.object(),
            (None, Some(charges)) => charges.data.first(),
            (None, None) => None,
        }
    }
}

/// Why the last confirmation or capture attempt failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentError {
    /// e.g. `card_declined`, `expired_card`, `processing_error`.
    #[serde(default)]
    pub code: Option<String>,
    /// The issuer's reason for a card decline, e.g. `insufficient_funds`.
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub error_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    /// `ch_…` (or `py_…` for some payment methods).
    pub id: String,
    pub amount: i64,
    /// Added in 2020; older renderings have only `captured`.
    #[serde(default)]
    pub amount_captured: Option<i64>,
    #[serde(default)]
    pub amount_refunded: i64,
    #[serde(default)]
    pub captured: bool,
    pub currency: String,
    #[serde(default)]
    pub payment_intent: Option<Expandable<ObjectReference>>,
    /// Copied from the PaymentIntent once, when it is confirmed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(default)]
    pub refunds: Option<List<Refund>>,
    #[serde(default)]
    pub authorization_code: Option<String>,
    #[serde(default)]
    pub payment_method_details: Option<PaymentMethodDetails>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentMethodDetails {
    /// `card`, `sepa_debit`, …
    #[serde(default, rename = "type")]
    pub method_type: Option<String>,
    #[serde(default)]
    pub card: Option<CardDetails>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardDetails {
    /// For manual capture: when the authorization lapses (unix seconds).
    #[serde(default)]
    pub capture_before: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    /// `re_…` (or `pyr_…`).
    pub id: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub charge: Option<Expandable<ObjectReference>>,
    #[serde(default)]
    pub payment_intent: Option<Expandable<ObjectReference>>,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    /// `duplicate`, `fraudulent`, `requested_by_customer`, `expired_uncaptured_charge`.
    #[serde(default)]
    pub reason: Option<String>,
    /// e.g. `expired_or_canceled_card`, `lost_or_stolen_card`, `declined`.
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispute {
    /// `dp_…` (or `du_…`).
    pub id: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub charge: Option<Expandable<ObjectReference>>,
    #[serde(default)]
    pub payment_intent: Option<Expandable<ObjectReference>>,
    /// `fraudulent`, `product_not_received`, `general`, …
    pub reason: String,
    /// `warning_needs_response`, `warning_under_review`, `warning_closed`, `needs_response`,
    /// `under_review`, `won`, `lost`, `prevented` (older: `charge_refunded`).
    pub status: String,
    #[serde(default)]
    pub evidence: Option<serde_json::Value>,
    #[serde(default)]
    pub evidence_details: Option<EvidenceDetails>,
    /// The withdrawal of the disputed amount and its fee, and any reinstatement.
    #[serde(default, deserialize_with = "null_as_default")]
    pub balance_transactions: Vec<BalanceTransaction>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceDetails {
    /// The deadline for evidence (unix seconds).
    #[serde(default)]
    pub due_by: Option<i64>,
    #[serde(default)]
    pub submission_count: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceTransaction {
    /// `txn_…`
    pub id: String,
    /// Negative for a withdrawal, positive for a reinstatement; in `currency`.
    pub amount: i64,
    /// The settlement currency, which may differ from the dispute's.
    pub currency: String,
    /// Stripe's fee, positive, in `currency`.
    #[serde(default)]
    pub fee: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payout {
    /// `po_…`
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// When the payout is expected to reach the bank (unix seconds).
    #[serde(default)]
    pub arrival_date: Option<i64>,
    /// `paid`, `pending`, `in_transit`, `canceled` or `failed`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub failure_code: Option<String>,
    #[serde(default)]
    pub failure_message: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
}
