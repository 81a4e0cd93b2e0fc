//! The objects the sandbox keeps, and how each renders as Stripe's JSON object (the fields a
//! card integration reads, with Stripe's names, types and nulls).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cards::TestCard;

/// Test cards expire in the future, as Stripe's do unless a test asks otherwise.
const EXP_MONTH: u32 = 12;
const EXP_YEAR: u32 = 2034;

/// Stripe's hold on a manual-capture card authorization: 7 days.
pub const AUTHORIZATION_VALIDITY_SECONDS: i64 = 7 * 24 * 3600;

/// What Stripe charges for a dispute, in minor units (USD 15.00).
pub const DISPUTE_FEE: i64 = 1500;

#[derive(Debug, Clone)]
pub struct PaymentMethod {
    pub id: String,
    pub card: &'static TestCard,
    pub created: i64,
}

impl PaymentMethod {
    pub fn render(&self) -> Value {
        json!({
            "id": self.id,
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": billing_details(),
            "card": self.card_details(),
            "created": self.created,
            "customer": null,
            "customer_account": null,
            "livemode": false,
            "metadata": {},
            "type": "card",
        })
    }

    fn card_details(&self) -> Value {
        json!({
            "brand": self.card.brand,
            "checks": { "address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass" },
            "country": "US",
            "display_brand": self.card.brand,
            "exp_month": EXP_MONTH,
            "exp_year": EXP_YEAR,
            "fingerprint": format!("sbx{}", self.card.number),
            "funding": self.card.funding,
            "last4": self.card.last4(),
            "networks": { "available": [self.card.brand], "preferred": null },
            "three_d_secure_usage": { "supported": true },
            "wallet": null,
        })
    }
}

fn billing_details() -> Value {
    json!({ "address": { "city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null }, "email": null, "name": null, "phone": null })
}

#[derive(Debug, Clone)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub currency: String,
    pub capture_method: String,
    pub status: &'static str,
    pub payment_method: Option<PaymentMethod>,
    pub metadata: BTreeMap<String, String>,
    pub description: Option<String>,
    pub created: i64,
    pub latest_charge: Option<String>,
    pub last_payment_error: Option<Value>,
    pub cancellation_reason: Option<String>,
    pub canceled_at: Option<i64>,
    pub payment_method_types: Vec<String>,
    /// Set while the intent waits for 3D Secure.
    pub next_action: Option<Value>,
}

impl PaymentIntent {
    pub fn render(&self) -> Value {
        json!({
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_details": { "tip": {} },
            "amount_received": self.amount_received,
            "application": null,
            "application_fee_amount": null,
            "automatic_payment_methods": null,
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "capture_method": self.capture_method,
            "client_secret": format!("{}_secret_sandbox", self.id),
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": null,
            "customer_account": null,
            "description": self.description,
            "excluded_payment_method_types": null,
            "last_payment_error": self.last_payment_error,
            "latest_charge": self.latest_charge,
            "livemode": false,
            "metadata": self.metadata,
            "next_action": self.next_action,
            "on_behalf_of": null,
            "payment_method": self.payment_method.as_ref().map(|method| method.id.clone()),
            "payment_method_configuration_details": null,
            "payment_method_options": { "card": { "installments": null, "mandate_options": null, "network": null, "request_three_d_secure": "automatic" } },
            "payment_method_types": self.payment_method_types,
            "processing": null,
            "receipt_email": null,
            "review": null,
            "setup_future_usage": null,
            "shipping": null,
            "source": null,
            "statement_descriptor": null,
            "statement_descriptor_suffix": null,
            "status": self.status,
            "transfer_data": null,
            "transfer_group": null,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub captured: bool,
    pub currency: String,
    pub created: i64,
    pub description: Option<String>,
    pub disputed: bool,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// Stripe's `outcome.type`: `authorized`, `issuer_declined`, …
    pub outcome_type: &'static str,
    pub outcome_reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub payment_intent: String,
    pub payment_method: PaymentMethod,
    pub authorization_code: Option<String>,
    /// Manual capture: when the authorization lapses.
    pub capture_before: Option<i64>,
}

impl Charge {
    pub fn render(&self) -> Value {
        let paid = self.status == "succeeded";
        json!({
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount_captured,
            "amount_refunded": self.amount_refunded,
            "application": null,
            "application_fee": null,
            "application_fee_amount": null,
            "authorization_code": self.authorization_code,
            "balance_transaction": paid.then(|| format!("txn_{}", &self.id[3..])),
            "billing_details": billing_details(),
            "calculated_statement_descriptor": "SANDBOX",
            "captured": self.captured,
            "created": self.created,
            "currency": self.currency,
            "customer": null,
            "description": self.description,
            "disputed": self.disputed,
            "failure_balance_transaction": null,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "fraud_details": {},
            "livemode": false,
            "metadata": self.metadata,
            "on_behalf_of": null,
            "outcome": {
                "advice_code": null,
                "network_advice_code": null,
                "network_decline_code": null,
                "network_status": if paid { "approved_by_network" } else { "declined_by_network" },
                "reason": self.outcome_reason,
                "risk_level": "normal",
                "risk_score": 20,
                "seller_message": if paid { "Payment complete." } else { "The bank did not return any further details with this decline." },
                "type": self.outcome_type,
            },
            "paid": paid,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method.id,
            "payment_method_details": {
                "card": {
                    "amount_authorized": paid.then_some(self.amount),
                    "brand": self.payment_method.card.brand,
                    "capture_before": self.capture_before,
                    "country": "US",
                    "exp_month": EXP_MONTH,
                    "exp_year": EXP_YEAR,
                    "funding": self.payment_method.card.funding,
                    "last4": self.payment_method.card.last4(),
                    "network": self.payment_method.card.brand,
                    "three_d_secure": null,
                },
                "type": "card",
            },
            "receipt_email": null,
            "receipt_number": null,
            "receipt_url": null,
            "refunded": self.amount_refunded > 0 && self.amount_refunded == self.amount_captured,
            "review": null,
            "shipping": null,
            "source": null,
            "source_transfer": null,
            "statement_descriptor": null,
            "statement_descriptor_suffix": null,
            "status": self.status,
            "transfer_data": null,
            "transfer_group": null,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub charge: String,
    pub payment_intent: String,
    pub payment_method: String,
    pub currency: String,
    pub created: i64,
    /// `pending`, `succeeded`, `failed`, `canceled`.
    pub status: &'static str,
    pub reason: Option<String>,
    pub failure_reason: Option<&'static str>,
    pub metadata: BTreeMap<String, String>,
}

impl Refund {
    pub fn render(&self) -> Value {
        json!({
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": format!("txn_{}", &self.id[3..]),
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "customer": null,
            "customer_account": null,
            "destination_details": { "card": { "reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund" }, "type": "card" },
            "failure_balance_transaction": null,
            "failure_reason": self.failure_reason,
            "metadata": self.metadata,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "reason": self.reason,
            "receipt_number": null,
            "source_transfer_reversal": null,
            "status": self.status,
            "transfer_reversal": null,
        })
    }
}

/// Stripe's evidence fields; all are text in this sandbox (files are ids of uploads).
pub const EVIDENCE_FIELDS: &[&str] = &[
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
];

#[derive(Debug, Clone)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    pub charge: String,
    pub payment_intent: String,
    pub currency: String,
    pub created: i64,
    pub reason: &'static str,
    /// The disputed card's brand, for `payment_method_details`.
    pub brand: &'static str,
    /// `needs_response`, `under_review`, `won`, `lost`.
    pub status: &'static str,
    pub evidence: BTreeMap<String, String>,
    pub due_by: i64,
    pub submission_count: u32,
    pub metadata: BTreeMap<String, String>,
}

impl Dispute {
    pub fn render(&self) -> Value {
        let mut evidence: serde_json::Map<String, Value> = EVIDENCE_FIELDS
            .iter()
            .map(|field| ((*field).to_owned(), json!(self.evidence.get(*field))))
            .collect();
        evidence.insert("enhanced_evidence".into(), json!({}));
        let mut balance_transactions = vec![json!({
            "id": format!("txn_{}w", &self.id[3..]),
            "object": "balance_transaction",
            "amount": -self.amount,
            "currency": self.currency,
            "description": format!("Chargeback withdrawal for {}", self.charge),
            "fee": DISPUTE_FEE,
            "net": -self.amount - DISPUTE_FEE,
            "reporting_category": "dispute",
            "status": "available",
            "type": "adjustment",
        })];
        if self.status == "won" {
            balance_transactions.push(json!({
                "id": format!("txn_{}r", &self.id[3..]),
                "object": "balance_transaction",
                "amount": self.amount,
                "currency": self.currency,
                "description": format!("Chargeback reversal for {}", self.charge),
                "fee": -DISPUTE_FEE,
                "net": self.amount + DISPUTE_FEE,
                "reporting_category": "dispute_reversal",
                "status": "available",
                "type": "adjustment",
            }));
        }
        json!({
            "id": self.id,
            "object": "dispute",
            "amount": self.amount,
            "balance_transactions": balance_transactions,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "enhanced_eligibility_types": [],
            "evidence": evidence,
            "evidence_details": {
                "due_by": self.due_by,
                "enhanced_eligibility": {},
                "has_evidence": !self.evidence.is_empty(),
                "past_due": false,
                "submission_count": self.submission_count,
            },
            "is_charge_refundable": false,
            "livemode": false,
            "metadata": self.metadata,
            "payment_intent": self.payment_intent,
            "payment_method_details": {
                "card": {
                    "brand": self.brand,
                    "case_type": "chargeback",
                    "network": self.brand,
                    "network_reason_code": network_reason_code(self.reason),
                },
                "type": "card",
            },
            "reason": self.reason,
            "status": self.status,
        })
    }
}

/// Visa's reason codes for the dispute reasons the test cards raise.
fn network_reason_code(reason: &str) -> Option<&'static str> {
    match reason {
        "fraudulent" => Some("10.4"),
        "product_not_received" => Some("13.1"),
        _ => None,
    }
}
