//! Refunds of a captured charge, whole or partial; the test cards `…7726` (pending, then
//! succeeded) and `…5126` (succeeded, then failed) change their refunds later, on their own.

use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::cards::Outcome;
use crate::objects::Refund;
use crate::params::Params;
use crate::payments::merge_metadata;
use crate::state::{Later, State};

const REASONS: &[&str] = &["duplicate", "fraudulent", "requested_by_customer"];

/// Why a `…5126` refund fails.
const FAILURE_REASON: &str = "expired_or_canceled_card";

impl State {
    pub fn create_refund(&mut self, mut params: Params) -> Result<Value, ApiError> {
        params.ignore_common();
        params.ignore(&[
            "instructions_email",
            "refund_application_fee",
            "reverse_transfer",
        ]);
        let payment_intent = params.text("payment_intent")?;
        let charge = params.text("charge")?;
        let amount = params.amount("amount")?;
        let reason = params.choice("reason", REASONS)?;
        let metadata = params.metadata("metadata")?.unwrap_or_default();
        params.finish()?;
        let charge_id = match (payment_intent, charge) {
            (Some(intent_id), _) => {
                let intent = self
                    .intents
                    .get(&intent_id)
                    .ok_or_else(|| ApiError::resource_missing("payment_intent", &intent_id).with_param("payment_intent"))?;
                match (intent.status, &intent.latest_charge) {
                    ("succeeded", Some(charge)) => charge.clone(),
                    _ => {
                        return Err(ApiError::invalid_request(
                            "charge_not_refundable",
                            format!("This PaymentIntent ({intent_id}) does not have a successful charge to refund."),
                        )
                        .with_param("payment_intent"))
                    }
                }
            }
            (None, Some(charge)) => charge,
            (None, None) => {
                return Err(ApiError::invalid_request(
                    "parameter_missing",
                    "One of the following params should be provided for this request: payment_intent or charge.",
                ))
            }
        };
        let charge = self
            .charges
            .get(&charge_id)
            .ok_or_else(|| ApiError::resource_missing("charge", &charge_id).with_param("charge"))?;
        if charge.status != "succeeded" || !charge.captured {
            return Err(ApiError::invalid_request(
                "charge_not_refundable",
                format!("Charge {charge_id} has not been captured and cannot be refunded."),
            )
            .with_param("charge"));
        }
        if charge.disputed {
            return Err(ApiError::invalid_request(
                "charge_disputed",
                format!("Charge {charge_id} has been charged back; refunds are not possible."),
            ));
        }
        let refundable = charge.amount_captured - charge.amount_refunded;
        if refundable <= 0 {
            return Err(ApiError::invalid_request(
                "charge_already_refunded",
                format!("Charge {charge_id} has already been refunded."),
            ));
        }
        let amount = amount.unwrap_or(refundable);
        if amount > refundable {
            return Err(ApiError::invalid_request(
                "amount_too_large",
                format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})."),
            )
            .with_param("amount"));
        }
        let outcome = charge.payment_method.card.outcome;
        let (payment_intent, currency) = (charge.payment_intent.clone(), charge.currency.clone());
        let payment_method = charge.payment_method.id.clone();
        let id = self.new_id("re");
        let status = match outcome {
            Outcome::RefundPendingThenSucceeds => {
                self.scheduled
                    .push(Later::SettleRefund { refund: id.clone() });
                "pending"
            }
            Outcome::RefundSucceedsThenFails => {
                self.scheduled
                    .push(Later::FailRefund { refund: id.clone() });
                "succeeded"
            }
            _ => "succeeded",
        };
        let refund = Refund {
            id: id.clone(),
            amount,
            charge: charge_id.clone(),
            payment_intent,
            payment_method,
            currency,
            created: self.now(),
            status,
            reason,
            failure_reason: None,
            metadata: metadata
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .collect(),
        };
        let rendered = refund.render();
        self.refunds.insert(id.clone(), refund);
        self.record_refund(&id, false);
        let (charge_json, refunded_before) = match self.charges.get_mut(&charge_id) {
            Some(charge) => {
                let before = charge.amount_refunded;
                charge.amount_refunded += amount;
                (charge.render(), before)
            }
            None => (Value::Null, 0),
        };
        self.emit("refund.created", rendered.clone(), None);
        self.emit(
            "charge.refunded",
            charge_json,
            Some(json!({ "amount_refunded": refunded_before })),
        );
        Ok(rendered)
    }

    pub fn retrieve_refund(&self, id: &str) -> Result<Value, ApiError> {
        self.refunds
            .get(id)
            .map(Refund::render)
            .ok_or_else(|| ApiError::resource_missing("refund", id))
    }

    pub fn update_refund(&mut self, id: &str, mut params: Params) -> Result<Value, ApiError> {
        params.ignore_common();
        let metadata = params.metadata("metadata")?;
        params.finish()?;
        let refund = self
            .refunds
            .get_mut(id)
            .ok_or_else(|| ApiError::resource_missing("refund", id))?;
        if let Some(metadata) = metadata {
            merge_metadata(&mut refund.metadata, metadata);
        }
        let rendered = refund.render();
        self.emit("refund.updated", rendered.clone(), None);
        Ok(rendered)
    }

    pub(crate) fn settle_refund(&mut self, id: &str) {
        let Some(refund) = self.refunds.get_mut(id) else {
            return;
        };
        if refund.status != "pending" {
            return;
        }
        refund.status = "succeeded";
        let rendered = refund.render();
        let previous = json!({ "status": "pending" });
        self.emit("refund.updated", rendered.clone(), Some(previous.clone()));
        self.emit("charge.refund.updated", rendered, Some(previous));
    }

    pub(crate) fn fail_refund(&mut self, id: &str) {
        let Some(refund) = self.refunds.get_mut(id) else {
            return;
        };
        if refund.status != "succeeded" {
            return;
        }
        refund.status = "failed";
        refund.failure_reason = Some(FAILURE_REASON);
        let (amount, charge_id) = (refund.amount, refund.charge.clone());
        let rendered = refund.render();
        self.record_refund(id, true);
        // The money did not leave: the charge's refunded amount goes back down.
        if let Some(charge) = self.charges.get_mut(&charge_id) {
            charge.amount_refunded -= amount;
        }
        let previous = json!({ "status": "succeeded", "failure_reason": null });
        self.emit("refund.updated", rendered.clone(), Some(previous.clone()));
        self.emit("refund.failed", rendered.clone(), Some(previous.clone()));
        self.emit("charge.refund.updated", rendered, Some(previous));
    }
}
