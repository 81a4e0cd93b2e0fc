//! [`WebhookError`]: why a delivery got no 200.
//!
//! Refusals of the delivery itself are [`StripeError`]s (4xx, nothing recorded). Everything
//! else is the ledger failing to record: a 5xx, so that Stripe delivers again later. The
//! client sees a plain message; the details go to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger_projections::ProjectionError;
use ledger_store::StoreError;

use crate::gateway::StripeError;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The delivery is refused: bad signature, stale, too large, malformed, wrong livemode.
    #[error(transparent)]
    Stripe(#[from] StripeError),

    /// The request body broke off while it was read.
    #[error("the request body could not be read: {0}")]
    BodyUnreadable(String),

    /// The event log failed (unreachable, writer stopped, a stored event that does not decode).
    #[error("the event log failed: {0}")]
    Store(#[from] StoreError),

    /// A webhook table could not be read or written.
    #[error("a webhook table failed: {0}")]
    Database(#[from] sqlx::Error),

    /// A read model could not be read or brought up to date.
    #[error("a read model failed: {0}")]
    ReadModel(#[from] ProjectionError),

    /// A row of a webhook table holds something this code never writes.
    #[error("webhook row for {stripe_event_id} is unreadable: {reason}")]
    CorruptRow {
        stripe_event_id: String,
        reason: String,
    },
}

impl WebhookError {
    /// A stable snake_case code for the response body, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Stripe(error) => error.code(),
            WebhookError::BodyUnreadable(_) => "body_unreadable",
            WebhookError::Store(_) | WebhookError::Database(_) | WebhookError::ReadModel(_) => {
                "unavailable"
            }
            WebhookError::CorruptRow { .. } => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            WebhookError::Stripe(error) => StatusCode::from_u16(error.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            WebhookError::BodyUnreadable(_) => StatusCode::BAD_REQUEST,
            WebhookError::Store(_) | WebhookError::Database(_) | WebhookError::ReadModel(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            WebhookError::CorruptRow { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the delivery itself was refused (as opposed to the ledger failing).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            WebhookError::Stripe(_) | WebhookError::BodyUnreadable(_)
        )
    }

    /// What the client is told: the refusal's own words for a 4xx, which name no secret and
    /// no signature; a plain sentence for a 5xx, whose details stay in the log.
    fn public_message(&self) -> String {
        if self.is_refusal() {
            self.to_string()
        } else {
            "the ledger could not record this event right now; deliver it again later".to_owned()
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        if !self.is_refusal() {
            tracing::error!(error = %self, "stripe webhook not recorded");
        }
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": self.public_message() }
        });
        (self.status(), Json(body)).into_response()
    }
}
