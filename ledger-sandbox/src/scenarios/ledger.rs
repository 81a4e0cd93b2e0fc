//! The scenario runner's client of the ledger: its GraphQL API over HTTP with an API key, so
//! it works against any ledger the gateway delivers webhooks to.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{json, Value};

const PAYMENT_QUERY: &str = "query($id: UUID!) { payment(id: $id) { status amount authorizedAmount capturedAmount capturableAmount refundedAmount refundPendingAmount refundableAmount disputedAmount declineCode captures { amount } refunds { status } disputes { status } declineAdvice { code category customerMessage retry nextStep escalation } } webhookDeliveries(paymentId: $id, first: 200) { eventType outcome detail } }";

const IMPORT_MUTATION: &str = "mutation($input: ImportStripePayoutReportInput!) { importStripePayoutReport(input: $input) { runId alreadyImported lines matchedLines exceptions payoutsProven payoutsUnproven batchesRecorded position } }";
/// A run's exceptions: the report's lines are bounded by the request body, and the check
/// reads the first page only.
const EXCEPTIONS_QUERY: &str = "query($id: UUID!, $position: Position) { reconciliationRun(id: $id, waitForPosition: $position) { exceptions(first: 100) { edges { node { class } } } } }";
const BALANCES_QUERY: &str =
    "query($merchant: String!) { balances(merchantId: $merchant) { currency account balance } }";

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
        let data = self
            .graphql(PAYMENT_QUERY, json!({ "id": payment_id(payment_intent) }))
            .await?;
        Ok(LedgerView {
            payment: data["payment"].clone(),
            webhooks: data["webhookDeliveries"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// Imports a payout reconciliation report through `importStripePayoutReport`: the
    /// ledger's one import path, which `ledger reconcile stripe-payouts` takes too. Answers
    /// the import's result with the run's exception classes in report order.
    pub async fn import_payout_report(
        &self,
        csv: &str,
        file_name: &str,
        idempotency_key: &str,
    ) -> Result<Value, String> {
        let imported = self
            .graphql(
                IMPORT_MUTATION,
                json!({ "input": { "idempotencyKey": idempotency_key, "csv": csv, "fileName": file_name } }),
            )
            .await?;
        let mut result = imported["importStripePayoutReport"].clone();
        let run = self
            .graphql(
                EXCEPTIONS_QUERY,
                json!({ "id": result["runId"], "position": result["position"] }),
            )
            .await?;
        let classes: Vec<Value> = run["reconciliationRun"]["exceptions"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|edge| edge["node"]["class"].clone())
            .collect();
        result["exceptionClasses"] = Value::Array(classes);
        Ok(result)
    }

    /// The merchant's balances, by `"CURRENCY account"`.
    pub async fn balances(&self, merchant: &str) -> Result<BTreeMap<String, Decimal>, String> {
        let data = self
            .graphql(BALANCES_QUERY, json!({ "merchant": merchant }))
            .await?;
        let mut balances = BTreeMap::new();
        for balance in data["balances"].as_array().into_iter().flatten() {
            let amount = balance["balance"]
                .as_str()
                .and_then(|text| Decimal::from_str(text).ok())
                .ok_or_else(|| {
                    format!("the ledger answered a balance that is no decimal: {balance}")
                })?;
            let name = format!(
                "{} {}",
                balance["currency"].as_str().unwrap_or("?"),
                balance["account"].as_str().unwrap_or("?").to_lowercase()
            );
            balances.insert(name, amount);
        }
        Ok(balances)
    }

    /// The answer's `data`, or its errors as the error.
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, String> {
        let response = self
            .client
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|error| format!("the ledger did not answer: {error}"))?;
        let status = response.status();
        let mut answer: Value = response
            .json()
            .await
            .map_err(|error| format!("the ledger's answer ({status}) is not JSON: {error}"))?;
        if let Some(errors) = answer.get("errors") {
            return Err(format!("the ledger answered errors: {errors}"));
        }
        Ok(answer["data"].take())
    }
}

/// The ledger's payment for a PaymentIntent without `metadata[ledger_payment_id]`:
/// `ledger-stripe`'s identity rule, a UUID v5 of the intent's id in the URL namespace.
pub fn payment_id(payment_intent: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, payment_intent.as_bytes()).to_string()
}
