//! What can go wrong on a console request, and the page each answers with.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session (or an expired one, or its key was revoked): the sign-in page.
    #[error("sign in with an API key")]
    SignedOut,
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "this form has expired or did not come from the console: reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("too many people are signed in; try again later")]
    TooManySessions,
    #[error("a page failed: {0}")]
    Internal(String),
}

impl From<ledger_projections::ProjectionError> for ConsoleError {
    fn from(error: ledger_projections::ProjectionError) -> Self {
        ConsoleError::Internal(error.to_string())
    }
}

impl From<ledger_store::StoreError> for ConsoleError {
    fn from(error: ledger_store::StoreError) -> Self {
        ConsoleError::Internal(error.to_string())
    }
}

impl From<askama::Error> for ConsoleError {
    fn from(error: askama::Error) -> Self {
        ConsoleError::Internal(format!("a template: {error}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            ConsoleError::SignedOut => {
                return Redirect::to("/console/sign-in").into_response();
            }
            ConsoleError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not for this key"),
            ConsoleError::Csrf => (StatusCode::FORBIDDEN, "Refused"),
            ConsoleError::BadInput(_) => (StatusCode::BAD_REQUEST, "Check what you entered"),
            ConsoleError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            ConsoleError::TooManySessions => (StatusCode::SERVICE_UNAVAILABLE, "Busy"),
            ConsoleError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Something failed"),
        };
        let message = match &self {
            ConsoleError::Internal(detail) => {
                tracing::error!(%detail, "a console page failed");
                "The page could not be made; the server's log says why.".to_owned()
            }
            other => other.to_string(),
        };
        let page = ErrorPage { title, message };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (
                status,
                [(header::CONTENT_TYPE, "text/plain")],
                title.to_owned(),
            )
                .into_response(),
        }
    }
}
