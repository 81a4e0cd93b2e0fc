//! Stripe's error answer: `{"error": {"type", "code", "decline_code", "message", "param", …}}`
//! with Stripe's HTTP status for each kind (400 invalid request, 401 authentication, 402 card
//! error, 404 missing resource or route).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// One error as Stripe renders it; boxed, since every fallible call returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError(Box<ErrorDetail>);

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDetail {
    pub status: StatusCode,
    /// `invalid_request_error`, `card_error`, `idempotency_error`, `api_error`.
    pub error_type: &'static str,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// Fields a card error carries beside them: `charge`, `payment_intent`,
    /// `payment_method`.
    pub extra: Map<String, Value>,
}

const DOCS: &str = "https://stripe.com/docs/error-codes";

impl ApiError {
    fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> ApiError {
        ApiError(Box::new(ErrorDetail {
            status,
            error_type,
            code: None,
            decline_code: None,
            message: message.into(),
            param: None,
            extra: Map::new(),
        }))
    }

    pub fn with_code(mut self, code: &str) -> ApiError {
        self.code = Some(code.to_owned());
        self
    }

    pub fn with_param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_owned());
        self
    }

    /// A parameter missing or malformed.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
            .with_code("parameter_invalid")
            .with_param(param)
    }

    pub fn missing_param(param: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("Missing required param: {param}."),
        )
        .with_code("parameter_missing")
        .with_param(param)
    }

    pub fn unknown_param(param: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("Received unknown parameter: {param}"),
        )
        .with_code("parameter_unknown")
        .with_param(param)
    }

    /// A request that is well-formed but not allowed in the object's state.
    pub fn invalid_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).with_code(code)
    }

    /// `No such payment_intent: 'pi_…'`.
    pub fn resource_missing(object: &str, id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("No such {object}: '{id}'"),
        )
        .with_code("resource_missing")
        .with_param("id")
    }

    pub fn unrecognized_url(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."),
        )
    }

    pub fn authentication(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
    }

    pub fn idempotency_mismatch(key: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "idempotency_error",
            format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
        )
    }

    /// A card error: HTTP 402, `card_error`.
    pub fn card(
        code: &str,
        decline_code: Option<&str>,
        message: &str,
        param: Option<&str>,
    ) -> ApiError {
        let mut error =
            ApiError::new(StatusCode::PAYMENT_REQUIRED, "card_error", message).with_code(code);
        error.decline_code = decline_code.map(str::to_owned);
        error.param = param.map(str::to_owned);
        error
    }

    pub fn too_many_objects(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request_error",
            format!("The sandbox holds as many {what} as it may; restart it to start afresh."),
        )
        .with_code("rate_limit")
    }

    /// The `error` object alone, as Stripe embeds it in `last_payment_error`.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        if let Some(code) = &self.code {
            error.insert("code".into(), json!(code));
            error.insert("doc_url".into(), json!(format!("{DOCS}#{code}")));
        }
        if let Some(decline_code) = &self.decline_code {
            error.insert("decline_code".into(), json!(decline_code));
        }
        error.insert("message".into(), json!(self.message));
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        error.insert("type".into(), json!(self.error_type));
        for (key, value) in &self.extra {
            error.insert(key.clone(), value.clone());
        }
        Value::Object(error)
    }
}

impl std::ops::Deref for ApiError {
    type Target = ErrorDetail;

    fn deref(&self) -> &ErrorDetail {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ErrorDetail {
        &mut self.0
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.body() }))).into_response()
    }
}
