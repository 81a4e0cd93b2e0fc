//! The scenario runner's client of the gateway: Stripe's form-encoded API over HTTP, so it
//! works against any sandbox (or anything that answers as Stripe does).

use std::time::{Duration, Instant};

use serde_json::Value;

/// The test key scenarios pay with.
pub const API_KEY: &str = "sk_test_ledger_scenarios";

/// How long a webhook delivery may take to settle before the step is a difference.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How many pages of events to search for a payment's dispute.
const MAX_EVENT_PAGES: usize = 20;

/// One answer: its HTTP status, whether it was replayed from a saved idempotent result, and
/// its JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub replayed: bool,
    pub body: Value,
}

impl Answer {
    /// The object the answer is about: itself, or for a card error, its PaymentIntent.
    pub fn object(&self) -> &Value {
        if self.body.get("error").is_some() {
            &self.body["error"]["payment_intent"]
        } else {
            &self.body
        }
    }

    /// `code (decline_code): message` of an error answer, or the object's status.
    pub fn summary(&self) -> String {
        let error = &self.body["error"];
        if error.is_object() {
            let code = error["code"].as_str().unwrap_or("-");
            match error["decline_code"].as_str() {
                Some(decline) => format!("{} {code} ({decline})", self.status),
                None => format!("{} {code}", self.status),
            }
        } else {
            format!(
                "{} {}",
                self.status,
                self.body["status"].as_str().unwrap_or("-")
            )
        }
    }
}

#[derive(Debug, Clone)]
pub struct Gateway {
    client: reqwest::Client,
    base: String,
}

impl Gateway {
    pub fn new(client: reqwest::Client, base: &str) -> Gateway {
        Gateway {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// A POST of `form`, with `Idempotency-Key` when given.
    pub async fn post(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Answer, String> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(API_KEY)
            .form(form);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        answer(request).await
    }

    pub async fn get(&self, path: &str) -> Result<Answer, String> {
        answer(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(API_KEY),
        )
        .await
    }

    /// The payout reconciliation report of one payout (`GET
    /// /sandbox/reports/payout_reconciliation.csv`), as CSV text.
    pub async fn payout_report(&self, payout: &str) -> Result<String, String> {
        let response = self
            .client
            .get(format!(
                "{}/sandbox/reports/payout_reconciliation.csv",
                self.base
            ))
            .query(&[("payout", payout)])
            .bearer_auth(API_KEY)
            .send()
            .await
            .map_err(|error| format!("the gateway did not answer: {error}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| format!("the gateway's report could not be read: {error}"))?;
        if !status.is_success() {
            return Err(format!(
                "the payout report of {payout} answered {status}: {text}"
            ));
        }
        Ok(text)
    }

    /// The dispute the gateway opened on `payment_intent`, found among its events.
    pub async fn dispute_of(&self, payment_intent: &str) -> Result<String, String> {
        let mut after: Option<String> = None;
        for _ in 0..MAX_EVENT_PAGES {
            let mut path = "/v1/events?type=charge.dispute.created&limit=100".to_owned();
            if let Some(cursor) = &after {
                path.push_str(&format!("&starting_after={cursor}"));
            }
            let page = self.get(&path).await?;
            let events = page.body["data"].as_array().cloned().unwrap_or_default();
            if let Some(dispute) = events
                .iter()
                .map(|event| &event["data"]["object"])
                .find(|dispute| dispute["payment_intent"] == payment_intent)
            {
                return dispute["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "the dispute has no id".to_owned());
            }
            match (page.body["has_more"].as_bool(), events.last()) {
                (Some(true), Some(last)) => after = last["id"].as_str().map(str::to_owned),
                _ => break,
            }
        }
        Err(format!("the gateway opened no dispute on {payment_intent}"))
    }

    /// Waits until no webhook delivery is pending (`GET /sandbox/webhooks`).
    pub async fn settle(&self) -> Result<(), String> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let stats = self.get("/sandbox/webhooks").await?;
            match stats.body["pending"].as_u64() {
                Some(0) => return Ok(()),
                Some(pending) if Instant::now() > deadline => {
                    return Err(format!(
                        "{pending} webhook deliveries still pending after {}s",
                        SETTLE_TIMEOUT.as_secs()
                    ))
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                None => {
                    return Err(format!(
                        "GET /sandbox/webhooks answered {}",
                        stats.summary()
                    ))
                }
            }
        }
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let response = request
        .send()
        .await
        .map_err(|error| format!("the gateway did not answer: {error}"))?;
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|value| value == "true");
    let body = response
        .json()
        .await
        .map_err(|error| format!("the gateway's answer ({status}) is not JSON: {error}"))?;
    Ok(Answer {
        status,
        replayed,
        body,
    })
}

/// The form fields that pay with `card`: a `pm_…` token, or a raw test card number.
pub fn card_fields(card: &str) -> Vec<(String, String)> {
    if card.starts_with("pm_") {
        vec![("payment_method".into(), card.to_owned())]
    } else {
        vec![
            ("payment_method_data[type]".into(), "card".into()),
            ("payment_method_data[card][number]".into(), card.to_owned()),
            ("payment_method_data[card][exp_month]".into(), "12".into()),
            ("payment_method_data[card][exp_year]".into(), "2034".into()),
            ("payment_method_data[card][cvc]".into(), "123".into()),
        ]
    }
}
