//! Sign-in with an API key (the form's field is `key`), and sign-out.
//!
//! There is no session before sign-in, so the sign-in form's CSRF token is a double submit:
//! the same random value in a SameSite=Strict cookie and in the form, which another site can
//! neither read nor set.

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use ledger_api::auth::{authenticate, ApiKey};
use ledger_api::error::ApiError;
use serde::Deserialize;

use crate::current::Current;
use crate::error::ConsoleError;
use crate::session::{
    cookie, cookie_value, over_tls, random_token, removal, same_token, SESSION_COOKIE, SESSION_TTL,
    SIGN_IN_COOKIE,
};
use crate::ConsoleState;

/// How long the sign-in form may stay open before it has to be reloaded.
const SIGN_IN_FORM_TTL: std::time::Duration = std::time::Duration::from_secs(60 * 60);
/// Longer than any key; anything longer is refused before it is parsed.
const MAX_KEY_CHARS: usize = 100;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    csrf: String,
    message: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    key: Option<String>,
    csrf: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf: Option<String>,
}

/// The sign-in form, with a fresh token in the form and its cookie.
fn sign_in_page(status: StatusCode, message: Option<String>, secure: bool) -> Response {
    let csrf = random_token();
    let page = SignInPage {
        csrf: csrf.clone(),
        message,
    };
    match page.render() {
        Ok(html) => (
            status,
            [(
                header::SET_COOKIE,
                cookie(SIGN_IN_COOKIE, csrf, SIGN_IN_FORM_TTL, secure),
            )],
            Html(html),
        )
            .into_response(),
        Err(error) => ConsoleError::from(error).into_response(),
    }
}

pub async fn form(
    State(state): State<ConsoleState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    if Current::of(&state, &headers).await.is_ok() {
        return Redirect::to("/console/payments").into_response();
    }
    sign_in_page(StatusCode::OK, None, over_tls(&headers, &uri))
}

pub async fn submit(
    State(state): State<ConsoleState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let secure = over_tls(&headers, &uri);
    let expected = cookie_value(&headers, SIGN_IN_COOKIE);
    let token_matches = matches!(
        (form.csrf.as_deref(), expected.as_deref()),
        (Some(presented), Some(expected)) if same_token(presented, expected)
    );
    if !token_matches {
        return ConsoleError::Csrf.into_response();
    }
    let refused = || {
        sign_in_page(
            StatusCode::UNAUTHORIZED,
            Some("That key was refused: it is not a key of this ledger, or it was revoked.".into()),
            secure,
        )
    };
    let text = form.key.unwrap_or_default();
    let text = text.trim();
    if text.chars().count() > MAX_KEY_CHARS {
        return refused();
    }
    let Ok(key) = ApiKey::parse(text) else {
        return refused();
    };
    match authenticate(&state.pool, &key).await {
        Ok(_) => {}
        Err(ApiError::Unauthenticated) => return refused(),
        Err(error) => return ConsoleError::Internal(error.to_string()).into_response(),
    }
    let Some(session_id) = state.sessions.open(key) else {
        return ConsoleError::TooManySessions.into_response();
    };
    let mut response = Redirect::to("/console/payments").into_response();
    let headers = response.headers_mut();
    for value in [
        cookie(SESSION_COOKIE, session_id, SESSION_TTL, secure),
        removal(SIGN_IN_COOKIE, secure),
    ] {
        if let Ok(value) = value.parse() {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

pub async fn sign_out(
    State(state): State<ConsoleState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.check_csrf(form.csrf.as_deref())?;
    state.sessions.close(&current.session_id);
    Ok((
        [(
            header::SET_COOKIE,
            removal(SESSION_COOKIE, over_tls(&headers, &uri)),
        )],
        Redirect::to("/console/sign-in"),
    )
        .into_response())
}
