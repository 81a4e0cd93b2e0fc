//! Stripe's event envelope, and [`VerifiedEvent`]: an event whose signature, size, shape and
//! livemode have all been checked.
//!
//! The envelope keeps `data.object` as raw JSON; [`super::objects`] reads it into the one
//! object type the event's `type` names. Nothing here denies unknown fields, and everything
//! Stripe may omit is optional, so newer API versions and new event types still parse.

use std::fmt;

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::StripeError;
use super::secrets::WebhookSecrets;
use super::signature::verify_signature;

/// Stripe's events are a few kilobytes; this is a sensible bound for the endpoint to pass to
/// [`verify_event`] (Stripe documents no maximum, and a dispute's evidence can be large).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Event ids are about 30 characters; the bound keeps the exactly-once table's key sane.
const MAX_EVENT_ID_LENGTH: usize = 255;

/// One Stripe event, as delivered to a webhook endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `evt_…`: the key that makes a delivery apply at most once.
    pub id: String,
    /// Always `"event"`.
    pub object: String,
    /// `payment_intent.succeeded`, `charge.refunded`, …
    #[serde(rename = "type")]
    pub event_type: String,
    /// When Stripe created the event, in unix seconds.
    pub created: i64,
    pub livemode: bool,
    /// The API version the object was rendered with; `null` for some Connect events.
    #[serde(default)]
    pub api_version: Option<String>,
    pub data: EventData,
    /// The connected account the event belongs to (Stripe Connect), if any.
    #[serde(default)]
    pub account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    /// The object as it was when the event happened.
    pub object: serde_json::Value,
    /// On `*.updated` events, the changed attributes' previous values.
    #[serde(default)]
    pub previous_attributes: Option<serde_json::Value>,
}

impl Event {
    /// Reads `data.object` as `T`. A missing required field or a wrong type is a
    /// [`StripeError::MalformedBody`] naming the field.
    pub fn object<T: DeserializeOwned>(&self) -> Result<T, StripeError> {
        T::deserialize(&self.data.object).map_err(|error| StripeError::MalformedBody {
            reason: format!("data.object of {} event: {error}", self.event_type),
        })
    }

    /// The event's creation time; out-of-range values (which Stripe never sends) read as the
    /// epoch rather than failing an otherwise valid delivery.
    pub fn created_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.created, 0).unwrap_or_default()
    }

    fn check_shape(&self) -> Result<(), StripeError> {
        let malformed = |reason: &str| StripeError::MalformedBody {
            reason: reason.to_owned(),
        };
        if self.object != "event" {
            return Err(malformed("`object` is not \"event\""));
        }
        let well_formed_id = self.id.starts_with("evt_")
            && self.id.len() <= MAX_EVENT_ID_LENGTH
            && self
                .id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if !well_formed_id {
            return Err(malformed("`id` is not an `evt_…` identifier"));
        }
        if self.event_type.is_empty() || self.event_type.len() > MAX_EVENT_ID_LENGTH {
            return Err(malformed("`type` is empty or too long"));
        }
        if !self.data.object.is_object() {
            return Err(malformed("`data.object` is not a JSON object"));
        }
        Ok(())
    }
}

/// Parses a body, refusing one larger than `max_body_bytes` before reading it.
pub fn parse_event(body: &[u8], max_body_bytes: usize) -> Result<Event, StripeError> {
    check_body_size(body, max_body_bytes)?;
    let event: Event =
        serde_json::from_slice(body).map_err(|error| StripeError::MalformedBody {
            reason: error.to_string(),
        })?;
    event.check_shape()?;
    Ok(event)
}

fn check_body_size(body: &[u8], max_body_bytes: usize) -> Result<(), StripeError> {
    if body.len() > max_body_bytes {
        return Err(StripeError::BodyTooLarge {
            size_bytes: body.len(),
            max_bytes: max_body_bytes,
        });
    }
    Ok(())
}

/// An event that passed every check a delivery needs before the ledger may act on it: the
/// body is within its bound, its signature matches a configured secret within the tolerance,
/// it parses as an event, and its `livemode` agrees with that secret's environment. It can
/// only be made by [`verify_event`].
#[derive(Clone, PartialEq)]
pub struct VerifiedEvent {
    event: Event,
    environment: Environment,
}

impl VerifiedEvent {
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// An event that [`verify_event`] accepted earlier and the webhook endpoint kept (a parked
    /// delivery), restored to be mapped again. Crate-private: only code that stored the event
    /// after verifying it may vouch for it; its signature cannot be checked again, because
    /// its timestamp is outside the tolerance by then.
    pub(crate) fn restore(event: Event, environment: Environment) -> VerifiedEvent {
        VerifiedEvent { event, environment }
    }

    /// The environment of the secret that verified the event (and that `livemode` matched).
    pub fn environment(&self) -> Environment {
        self.environment
    }

    pub fn id(&self) -> &str {
        &self.event.id
    }

    pub fn event_type(&self) -> &str {
        &self.event.event_type
    }

    /// The gateway's time of the fact, for the ledger event's "occurred at".
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.event.created_at()
    }
}

impl fmt::Debug for VerifiedEvent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("VerifiedEvent")
            .field("id", &self.event.id)
            .field("type", &self.event.event_type)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

/// Everything a webhook endpoint checks before recording anything, in the order that costs
/// least for a bad delivery: size, signature, shape, livemode. `signature_header` is the
/// `Stripe-Signature` value (`None` when absent), `body` the raw bytes as received.
pub fn verify_event(
    signature_header: Option<&str>,
    body: &[u8],
    secrets: &WebhookSecrets,
    now: DateTime<Utc>,
    max_body_bytes: usize,
) -> Result<VerifiedEvent, StripeError> {
    check_body_size(body, max_body_bytes)?;
    let environment = verify_signature(signature_header, body, secrets, now)?;
    let event = parse_event(body, max_body_bytes)?;
    let expected_livemode = environment == Environment::Live;
    if event.livemode != expected_livemode {
        return Err(StripeError::LivemodeMismatch {
            livemode: event.livemode,
            environment,
        });
    }
    Ok(VerifiedEvent { event, environment })
}
