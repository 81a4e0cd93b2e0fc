//! Disputes: opened by the dispute test cards after their charge succeeds, answered with
//! evidence. As in Stripe's test mode, `evidence[uncategorized_text]` of `winning_evidence`
//! closes the dispute as won, `losing_evidence` as lost; other evidence leaves it under
//! review.

use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::objects::{Dispute, EVIDENCE_FIELDS};
use crate::params::Params;
use crate::payments::merge_metadata;
use crate::state::State;

/// Stripe gives about three weeks to respond.
const RESPONSE_WINDOW_SECONDS: i64 = 21 * 24 * 3600;

impl State {
    /// Opens a dispute on a captured charge (the `…0259` and `…2685` cards).
    pub(crate) fn open_dispute(&mut self, charge_id: &str, reason: &'static str) {
        let id = self.new_id("dp");
        let created = self.now();
        let Some(charge) = self.charges.get_mut(charge_id) else {
            return;
        };
        charge.disputed = true;
        let dispute = Dispute {
            id: id.clone(),
            amount: charge.amount_captured,
            charge: charge_id.to_owned(),
            payment_intent: charge.payment_intent.clone(),
            currency: charge.currency.clone(),
            created,
            reason,
            brand: charge.payment_method.card.brand,
            status: "needs_response",
            evidence: Default::default(),
            due_by: created + RESPONSE_WINDOW_SECONDS,
            submission_count: 0,
            metadata: Default::default(),
        };
        let rendered = dispute.render();
        self.disputes.insert(id.clone(), dispute);
        self.record_dispute(&id, false);
        self.emit("charge.dispute.created", rendered.clone(), None);
        self.emit("charge.dispute.funds_withdrawn", rendered, None);
    }

    pub fn retrieve_dispute(&self, id: &str) -> Result<Value, ApiError> {
        self.disputes
            .get(id)
            .map(Dispute::render)
            .ok_or_else(|| ApiError::resource_missing("dispute", id))
    }

    pub fn update_dispute(&mut self, id: &str, mut params: Params) -> Result<Value, ApiError> {
        params.ignore_common();
        let mut evidence = Vec::new();
        if let Some(mut nested) = params.nested("evidence")? {
            for field in EVIDENCE_FIELDS {
                if let Some(text) = nested.text(field)? {
                    evidence.push(((*field).to_owned(), text));
                }
            }
            nested.finish()?;
        }
        let metadata = params.metadata("metadata")?;
        let submit = params.boolean("submit")?.unwrap_or(true);
        params.finish()?;
        let dispute = self
            .disputes
            .get_mut(id)
            .ok_or_else(|| ApiError::resource_missing("dispute", id))?;
        if dispute.status != "needs_response" {
            return Err(ApiError::invalid_request(
                "dispute_already_closed",
                format!(
                    "This dispute is {} and no longer accepts evidence.",
                    dispute.status.replace('_', " ")
                ),
            ));
        }
        for (field, text) in evidence {
            if text.is_empty() {
                dispute.evidence.remove(&field);
            } else {
                dispute.evidence.insert(field, text);
            }
        }
        if let Some(metadata) = metadata {
            merge_metadata(&mut dispute.metadata, metadata);
        }
        if !submit {
            let rendered = dispute.render();
            self.emit("charge.dispute.updated", rendered.clone(), None);
            return Ok(rendered);
        }
        dispute.submission_count += 1;
        dispute.status = "under_review";
        let closing = match dispute
            .evidence
            .get("uncategorized_text")
            .map(String::as_str)
        {
            Some("winning_evidence") => Some("won"),
            Some("losing_evidence") => Some("lost"),
            _ => None,
        };
        let under_review = dispute.render();
        self.emit(
            "charge.dispute.updated",
            under_review.clone(),
            Some(json!({ "status": "needs_response" })),
        );
        let Some(outcome) = closing else {
            return Ok(under_review);
        };
        let Some(dispute) = self.disputes.get_mut(id) else {
            return Ok(under_review);
        };
        dispute.status = outcome;
        let closed = dispute.render();
        if outcome == "won" {
            self.record_dispute(id, true);
            self.emit("charge.dispute.funds_reinstated", closed.clone(), None);
        }
        self.emit(
            "charge.dispute.closed",
            closed.clone(),
            Some(json!({ "status": "under_review" })),
        );
        Ok(closed)
    }
}
