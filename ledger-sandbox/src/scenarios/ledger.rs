//! The scenario runner's client of the ledger: its GraphQL API over HTTP with an API key, so
//! it works against any ledger the gateway delivers webhooks to.

use serde_json::{json, Value};

const PAYMENT_QUERY: &str = "query($id: UUID!) { payment(id: $id) { status amount authorizedAmount capturedAmount capturableAmount refundedAmount refundPendingAmount refundableAmount disputedAmount declineCode captures { amount } refunds { status } disputes { status } declineAdvice { code category customerMessage retry nextStep escalation } } webhookDeliveries(paymentId: $id, first: 200) { eventType outcome detail } }";

#[derive(Debug, Clone)]
pub struct Ledger {
    client: reqwest::Client,
    base: String,
    key: String,
}

/// What the ledger holds about one payment: the payment (null when it has none) and its
/// webhook deliveries, newest first.
#[derive(Debug, Clone)]
pub struct LedgerView {
    pub payment: Value,
    pub webhooks: Vec<Value>,
}

impl Ledger {
    pub fn new(client: reqwest::Client, base: &str, key: &str) -> Ledger {
        Ledger {
            client,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        }
    }

    pub async fn payment(&self, payment_intent: &str) -> Result<LedgerView, String> {
        let query = json!({
            "query": PAYMENT_QUERY,
            "variables": { "id": payment_id(payment_intent) },
        });
        let response = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.key)
            .json(&query)
            .send()
            .await
            .map_err(|error| format!("the ledger did not answer: {error}"))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|error| format!("the ledger's answer ({status}) is not JSON: {error}"))?;
        if let Some(errors) = answer.get("errors") {
            return Err(format!("the ledger answered errors: {errors}"));
        }
        Ok(LedgerView {
            payment: answer["data"]["payment"].clone(),
            webhooks: answer["data"]["webhookDeliveries"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// The ledger's payment for a PaymentIntent without `metadata[ledger_payment_id]`:
/// `ledger-stripe`'s identity rule, a UUID v5 of the intent's id in the URL namespace.
pub fn payment_id(payment_intent: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, payment_intent.as_bytes()).to_string()
}
