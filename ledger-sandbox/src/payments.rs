//! PaymentIntents: create, confirm, capture, cancel, and the sandbox's 3D Secure step, with
//! the statuses, charges, errors and events Stripe produces for each test card.

use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::cards::{self, Outcome, TestCard};
use crate::objects::{Charge, PaymentIntent, PaymentMethod, AUTHORIZATION_VALIDITY_SECONDS};
use crate::params::Params;
use crate::state::{State, MAX_PAYMENT_INTENTS};

const CAPTURE_METHODS: &[&str] = &["automatic", "automatic_async", "manual"];
const CANCELLATION_REASONS: &[&str] = &[
    "duplicate",
    "fraudulent",
    "requested_by_customer",
    "abandoned",
];
const CANCELABLE: &[&str] = &[
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
];

/// Where an intent's amount, currency and payment method may still change.
const UPDATABLE: &[&str] = &[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
];

/// Parameters Stripe accepts that change nothing in the sandbox.
const ACCEPTED_AND_IGNORED: &[&str] = &[
    "automatic_payment_methods",
    "return_url",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "off_session",
    "error_on_requires_action",
    "use_stripe_sdk",
    "payment_method_options",
    "mandate_data",
    "setup_future_usage",
    "confirmation_method",
];

impl State {
    pub fn create_intent(&mut self, mut params: Params) -> Result<Value, ApiError> {
        params.ignore_common();
        params.ignore(ACCEPTED_AND_IGNORED);
        let amount = params
            .amount("amount")?
            .ok_or_else(|| ApiError::missing_param("amount"))?;
        let currency = currency(params.required_text("currency")?)?;
        let capture_method = params
            .choice("capture_method", CAPTURE_METHODS)?
            .unwrap_or_else(|| "automatic_async".to_owned());
        let confirm = params.boolean("confirm")?.unwrap_or(false);
        let metadata = params.metadata("metadata")?.unwrap_or_default();
        let description = params.text("description")?;
        let payment_method_types = params
            .list("payment_method_types")?
            .unwrap_or_else(|| vec!["card".to_owned()]);
        let payment_method = self.payment_method_param(&mut params)?;
        params.finish()?;
        if self.intents.len() >= MAX_PAYMENT_INTENTS {
            return Err(ApiError::too_many_objects("PaymentIntents"));
        }
        let id = self.new_id("pi");
        let created = self.now();
        let intent = PaymentIntent {
            id: id.clone(),
            amount,
            amount_capturable: 0,
            amount_received: 0,
            currency,
            capture_method,
            status: if payment_method.is_some() {
                "requires_confirmation"
            } else {
                "requires_payment_method"
            },
            payment_method,
            metadata: metadata
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .collect(),
            description,
            created,
            latest_charge: None,
            last_payment_error: None,
            cancellation_reason: None,
            canceled_at: None,
            payment_method_types,
            next_action: None,
        };
        self.emit("payment_intent.created", intent.render(), None);
        self.intents.insert(id.clone(), intent);
        self.intent_order.push(id.clone());
        if confirm {
            return self.confirm_now(&id);
        }
        self.intent_json(&id)
    }

    pub fn retrieve_intent(&self, id: &str) -> Result<Value, ApiError> {
        self.intent_json(id)
    }

    /// `POST /v1/payment_intents/:id`: metadata and description at any time; the amount,
    /// currency, capture method and payment method only before the card is charged, as
    /// Stripe allows. A new payment method waits for confirmation. Stripe sends no event.
    pub fn update_intent(&mut self, id: &str, mut params: Params) -> Result<Value, ApiError> {
        params.ignore_common();
        params.ignore(ACCEPTED_AND_IGNORED);
        let amount = params.amount("amount")?;
        let currency = params.text("currency")?.map(currency).transpose()?;
        let capture_method = params.choice("capture_method", CAPTURE_METHODS)?;
        let metadata = params.metadata("metadata")?;
        let description = params.text("description")?;
        let payment_method = self.payment_method_param(&mut params)?;
        params.finish()?;
        let intent = self.intent_mut(id)?;
        let changes_payment = amount.is_some()
            || currency.is_some()
            || capture_method.is_some()
            || payment_method.is_some();
        if changes_payment && !UPDATABLE.contains(&intent.status) {
            return Err(unexpected_state("update", intent.status));
        }
        if let Some(amount) = amount {
            intent.amount = amount;
        }
        if let Some(currency) = currency {
            intent.currency = currency;
        }
        if let Some(capture_method) = capture_method {
            intent.capture_method = capture_method;
        }
        if let Some(metadata) = metadata {
            merge_metadata(&mut intent.metadata, metadata);
        }
        if let Some(description) = description {
            intent.description = (!description.is_empty()).then_some(description);
        }
        if let Some(method) = payment_method {
            intent.payment_method = Some(method);
            intent.status = "requires_confirmation";
            intent.next_action = None;
        }
        Ok(intent.render())
    }

    /// `GET /v1/payment_intents`: newest first, `limit` (1 to 100, default 10) after
    /// `starting_after`.
    pub fn list_intents(&self, mut params: Params) -> Result<Value, ApiError> {
        params.ignore_common();
        let limit = params.integer("limit", 1..=100)?.unwrap_or(10);
        let starting_after = params.text("starting_after")?;
        params.finish()?;
        if let Some(cursor) = &starting_after {
            if !self.intents.contains_key(cursor) {
                return Err(ApiError::resource_missing("payment_intent", cursor)
                    .with_param("starting_after"));
            }
        }
        let (items, has_more) = crate::balance::page(
            self.intent_order.iter().rev(),
            String::as_str,
            |_| true,
            limit,
            starting_after.as_deref(),
        );
        let data: Vec<Value> = items
            .into_iter()
            .filter_map(|id| self.intents.get(id).map(PaymentIntent::render))
            .collect();
        Ok(
            json!({ "object": "list", "data": data, "has_more": has_more, "url": "/v1/payment_intents" }),
        )
    }

    pub fn confirm_intent(&mut self, id: &str, mut params: Params) -> Result<Value, ApiError> {
        params.ignore_common();
        params.ignore(ACCEPTED_AND_IGNORED);
        let payment_method = self.payment_method_param(&mut params)?;
        params.finish()?;
        let intent = self.intent_mut(id)?;
        if !matches!(
            intent.status,
            "requires_payment_method" | "requires_confirmation"
        ) {
            return Err(unexpected_state("confirm", intent.status));
        }
        if let Some(method) = payment_method {
            intent.payment_method = Some(method);
        }
        if intent.payment_method.is_none() {
            return Err(ApiError::invalid_request(
                "payment_intent_unexpected_state",
                "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
            )
            .with_param("payment_method"));
        }
        self.confirm_now(id)
    }

    pub fn capture_intent(&mut self, id: &str, mut params: Params) -> Result<Value, ApiError> {
        params.ignore_common();
        params.ignore(&[
            "statement_descriptor",
            "statement_descriptor_suffix",
            "final_capture",
        ]);
        let requested = params.amount("amount_to_capture")?;
        let metadata = params.metadata("metadata")?;
        params.finish()?;
        let intent = self.intent_mut(id)?;
        if intent.status != "requires_capture" {
            return Err(unexpected_state("capture", intent.status));
        }
        let amount = requested.unwrap_or(intent.amount_capturable);
        if amount > intent.amount_capturable {
            return Err(ApiError::invalid_request(
                "amount_too_large",
                format!(
                    "The amount to capture ({amount}) is greater than the amount capturable ({}).",
                    intent.amount_capturable
                ),
            )
            .with_param("amount_to_capture"));
        }
        if let Some(metadata) = metadata {
            merge_metadata(&mut intent.metadata, metadata);
        }
        intent.amount_received = amount;
        intent.amount_capturable = 0;
        intent.status = "succeeded";
        let charge_id = intent.latest_charge.clone().unwrap_or_default();
        let card = intent.payment_method.as_ref().map(|method| method.card);
        let charge = self
            .charges
            .get_mut(&charge_id)
            .ok_or_else(|| ApiError::resource_missing("charge", &charge_id))?;
        charge.amount_captured = amount;
        charge.captured = true;
        charge.capture_before = None;
        let charge_json = charge.render();
        self.emit(
            "charge.captured",
            charge_json,
            Some(json!({ "amount_captured": 0, "captured": false })),
        );
        self.record_capture(&charge_id);
        let intent_json = self.intent_json(id)?;
        self.emit("payment_intent.succeeded", intent_json, None);
        if let Some(Outcome::DisputedAfterSuccess { reason }) = card.map(|card| card.outcome) {
            self.open_dispute(&charge_id, reason);
        }
        self.intent_json(id)
    }

    pub fn cancel_intent(&mut self, id: &str, mut params: Params) -> Result<Value, ApiError> {
        params.ignore_common();
        let reason = params.choice("cancellation_reason", CANCELLATION_REASONS)?;
        params.finish()?;
        let now = self.now();
        let intent = self.intent_mut(id)?;
        if !CANCELABLE.contains(&intent.status) {
            return Err(ApiError::invalid_request(
                "payment_intent_unexpected_state",
                format!(
                    "You cannot cancel this PaymentIntent because it has a status of {}. Only a PaymentIntent with one of the following statuses may be canceled: {}.",
                    intent.status,
                    CANCELABLE.join(", ")
                ),
            ));
        }
        intent.status = "canceled";
        intent.cancellation_reason = reason;
        intent.canceled_at = Some(now);
        intent.amount_capturable = 0;
        intent.next_action = None;
        let rendered = intent.render();
        self.emit("payment_intent.canceled", rendered.clone(), None);
        Ok(rendered)
    }

    /// The sandbox's stand-in for the customer's 3D Secure step: `success` charges the card,
    /// `failure` fails the attempt as Stripe does when authentication fails.
    pub fn authenticate_intent(&mut self, id: &str, mut params: Params) -> Result<Value, ApiError> {
        let outcome = params
            .choice("outcome", &["success", "failure"])?
            .unwrap_or_else(|| "success".to_owned());
        params.finish()?;
        let intent = self.intent_mut(id)?;
        if intent.status != "requires_action" {
            return Err(unexpected_state("authenticate", intent.status));
        }
        intent.next_action = None;
        let Some(method) = intent.payment_method.clone() else {
            return Err(unexpected_state("authenticate", intent.status));
        };
        if outcome == "success" {
            self.charge_success(id, &method);
            return self.intent_json(id);
        }
        let error = ApiError::invalid_request(
            "payment_intent_authentication_failure",
            "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
        );
        let mut last_error = error.body();
        last_error["payment_method"] = method.render();
        let intent = self.intent_mut(id)?;
        intent.status = "requires_payment_method";
        intent.payment_method = None;
        intent.last_payment_error = Some(last_error);
        let rendered = intent.render();
        self.emit("payment_intent.payment_failed", rendered, None);
        self.intent_json(id)
    }

    /// Confirms an intent that has its payment method: the card decides what follows.
    fn confirm_now(&mut self, id: &str) -> Result<Value, ApiError> {
        let intent = self.intent_mut(id)?;
        let Some(method) = intent.payment_method.clone() else {
            return self.intent_json(id);
        };
        intent.last_payment_error = None;
        match method.card.outcome {
            Outcome::RequiresAuthentication => {
                intent.status = "requires_action";
                intent.next_action = Some(json!({
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "stripe_js": format!("/sandbox/payment_intents/{id}/authenticate"),
                    },
                }));
                let rendered = intent.render();
                self.emit("payment_intent.requires_action", rendered, None);
                self.intent_json(id)
            }
            Outcome::Declined {
                code,
                decline_code,
                message,
                param,
            } => Err(self.charge_declined(id, &method, code, decline_code, message, param)),
            _ => {
                self.charge_success(id, &method);
                self.intent_json(id)
            }
        }
    }

    fn charge_success(&mut self, id: &str, method: &PaymentMethod) {
        let charge_id = self.new_id("ch");
        let authorization_code = self.digits(6);
        let created = self.now();
        let Some(intent) = self.intents.get_mut(id) else {
            return;
        };
        let automatic = intent.capture_method != "manual";
        let charge = Charge {
            id: charge_id.clone(),
            amount: intent.amount,
            amount_captured: if automatic { intent.amount } else { 0 },
            amount_refunded: 0,
            captured: automatic,
            currency: intent.currency.clone(),
            created,
            description: intent.description.clone(),
            disputed: false,
            status: "succeeded",
            failure_code: None,
            failure_message: None,
            outcome_type: "authorized",
            outcome_reason: None,
            metadata: intent.metadata.clone(),
            payment_intent: id.to_owned(),
            payment_method: method.clone(),
            authorization_code: Some(authorization_code),
            capture_before: (!automatic).then_some(created + AUTHORIZATION_VALIDITY_SECONDS),
        };
        intent.latest_charge = Some(charge_id.clone());
        if automatic {
            intent.status = "succeeded";
            intent.amount_received = intent.amount;
        } else {
            intent.status = "requires_capture";
            intent.amount_capturable = intent.amount;
        }
        let intent_json = intent.render();
        self.emit("charge.succeeded", charge.render(), None);
        self.charges.insert(charge_id.clone(), charge);
        if automatic {
            self.record_capture(&charge_id);
            self.emit("payment_intent.succeeded", intent_json, None);
            if let Outcome::DisputedAfterSuccess { reason } = method.card.outcome {
                self.open_dispute(&charge_id, reason);
            }
        } else {
            self.emit(
                "payment_intent.amount_capturable_updated",
                intent_json,
                Some(json!({ "amount_capturable": 0 })),
            );
        }
    }

    /// A declined attempt: a failed charge, the intent back to `requires_payment_method`
    /// with `last_payment_error`, and the 402 answer that carries both.
    fn charge_declined(
        &mut self,
        id: &str,
        method: &PaymentMethod,
        code: &str,
        decline_code: Option<&str>,
        message: &str,
        param: Option<&str>,
    ) -> ApiError {
        let charge_id = self.new_id("ch");
        let created = self.now();
        let Some(intent) = self.intents.get_mut(id) else {
            return ApiError::resource_missing("payment_intent", id);
        };
        let charge = Charge {
            id: charge_id.clone(),
            amount: intent.amount,
            amount_captured: 0,
            amount_refunded: 0,
            captured: false,
            currency: intent.currency.clone(),
            created,
            description: intent.description.clone(),
            disputed: false,
            status: "failed",
            failure_code: Some(code.to_owned()),
            failure_message: Some(message.to_owned()),
            outcome_type: "issuer_declined",
            outcome_reason: Some(decline_code.unwrap_or(code).to_owned()),
            metadata: intent.metadata.clone(),
            payment_intent: id.to_owned(),
            payment_method: method.clone(),
            authorization_code: None,
            capture_before: None,
        };
        let mut error = ApiError::card(code, decline_code, message, param);
        error.extra.insert("charge".into(), json!(charge_id));
        error.extra.insert("payment_method".into(), method.render());
        intent.latest_charge = Some(charge_id.clone());
        intent.status = "requires_payment_method";
        intent.payment_method = None;
        intent.last_payment_error = Some(error.body());
        let intent_json = intent.render();
        self.emit("charge.failed", charge.render(), None);
        self.charges.insert(charge_id, charge);
        self.emit("payment_intent.payment_failed", intent_json.clone(), None);
        error.extra.insert("payment_intent".into(), intent_json);
        error
    }

    /// `payment_method` (a `pm_card_…` token or a `pm_…` the sandbox made) or
    /// `payment_method_data[type]=card&payment_method_data[card][number]=…`.
    fn payment_method_param(
        &mut self,
        params: &mut Params,
    ) -> Result<Option<PaymentMethod>, ApiError> {
        let token = params.text("payment_method")?;
        let data = params.nested("payment_method_data")?;
        let card: &'static TestCard = match (token, data) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_param(
                    "payment_method_data",
                    "You cannot specify both payment_method and payment_method_data.",
                ))
            }
            (Some(token), None) => match cards::by_token(&token) {
                Some(card) => card,
                None => match self.payment_methods.get(&token) {
                    Some(method) => method.card,
                    None => {
                        return Err(ApiError::resource_missing("PaymentMethod", &token)
                            .with_param("payment_method"))
                    }
                },
            },
            (None, Some(mut data)) => {
                let kind = data.text("type")?;
                if kind.as_deref() != Some("card") {
                    return Err(ApiError::invalid_param(
                        &data.name("type"),
                        "The sandbox takes payment_method_data[type]=card only.",
                    ));
                }
                let mut card = data
                    .nested("card")?
                    .ok_or_else(|| ApiError::missing_param(&data.name("card")))?;
                let number_param = card.name("number");
                let number = card
                    .text("number")?
                    .ok_or_else(|| ApiError::missing_param(&number_param))?;
                for ignored in ["exp_month", "exp_year", "cvc"] {
                    card.text(ignored)?;
                }
                card.finish()?;
                data.params.ignore(&["billing_details", "metadata"]);
                data.finish()?;
                match cards::by_number(&number) {
                    Ok(card) => card,
                    Err(Outcome::Declined {
                        code,
                        decline_code,
                        message,
                        ..
                    }) => {
                        return Err(ApiError::card(
                            code,
                            decline_code,
                            message,
                            Some(&number_param),
                        ))
                    }
                    Err(_) => return Err(ApiError::invalid_param(&number_param, "Invalid card")),
                }
            }
        };
        let id = self.new_id("pm");
        let method = PaymentMethod {
            id: id.clone(),
            card,
            created: self.now(),
        };
        self.payment_methods.insert(id, method.clone());
        Ok(Some(method))
    }

    fn intent_mut(&mut self, id: &str) -> Result<&mut PaymentIntent, ApiError> {
        self.intents
            .get_mut(id)
            .ok_or_else(|| ApiError::resource_missing("payment_intent", id))
    }

    fn intent_json(&self, id: &str) -> Result<Value, ApiError> {
        self.intents
            .get(id)
            .map(PaymentIntent::render)
            .ok_or_else(|| ApiError::resource_missing("payment_intent", id))
    }
}

/// Stripe's currencies are three-letter ISO codes, lower case in every answer.
fn currency(text: String) -> Result<String, ApiError> {
    let lower = text.to_ascii_lowercase();
    if lower.len() == 3 && lower.bytes().all(|byte| byte.is_ascii_lowercase()) {
        Ok(lower)
    } else {
        Err(ApiError::invalid_param(
            "currency",
            format!("Invalid currency: {text}. Stripe currently supports these currencies: usd, eur, gbp, …"),
        ))
    }
}

fn unexpected_state(action: &str, status: &str) -> ApiError {
    ApiError::invalid_request(
        "payment_intent_unexpected_state",
        format!("You cannot {action} this PaymentIntent because it has a status of {status}."),
    )
}

/// Stripe's metadata update: keys set, empty values unset.
pub fn merge_metadata(
    metadata: &mut std::collections::BTreeMap<String, String>,
    update: std::collections::BTreeMap<String, String>,
) {
    for (key, value) in update {
        if value.is_empty() {
            metadata.remove(&key);
        } else {
            metadata.insert(key, value);
        }
    }
}
