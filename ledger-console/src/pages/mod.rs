//! One module per page; each reads the read models it shows and renders its template.

pub mod audit;
pub mod balances;
pub mod exceptions;
pub mod launch_metrics;
pub mod payments;
pub mod reconciliation;
pub mod sign_in;
pub mod webhook_health;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use crate::current::Current;
use crate::ConsoleState;

/// `/console`: the payment lookup when signed in, else the sign-in page.
pub async fn home(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    match Current::of(&state, &headers).await {
        Ok(_) => Redirect::to("/console/payments").into_response(),
        Err(error) => error.into_response(),
    }
}

/// Renders a template as the page's HTML.
pub(crate) fn html(
    template: &impl askama::Template,
) -> Result<Response, crate::error::ConsoleError> {
    Ok(axum::response::Html(template.render()?).into_response())
}
