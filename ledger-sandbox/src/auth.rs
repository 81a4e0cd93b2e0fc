//! Authentication as Stripe does it: the secret key as `Authorization: Bearer sk_test_…`, or
//! as the user name of HTTP Basic auth. The sandbox takes test keys only; a live key is
//! refused, so that nothing configured for production can be pointed at it by mistake.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::api_error::ApiError;

/// The authenticated key, for idempotency (Stripe scopes idempotency keys per account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey(pub String);

/// Stripe's keys are about 100 characters; longer is not a key.
const MAX_KEY_LENGTH: usize = 255;

const TEST_PREFIXES: &[&str] = &["sk_test_", "rk_test_"];
const LIVE_PREFIXES: &[&str] = &["sk_live_", "rk_live_"];

pub async fn authenticate(mut request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match key_of(header) {
        Ok(key) => {
            request.extensions_mut().insert(key);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

fn key_of(header: Option<&str>) -> Result<ApiKey, ApiError> {
    let Some(header) = header.map(str::trim).filter(|header| !header.is_empty()) else {
        return Err(ApiError::authentication(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        ));
    };
    let key = match header.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim().to_owned(),
        Some((scheme, encoded)) if scheme.eq_ignore_ascii_case("basic") => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    ApiError::authentication(
                        "Invalid API Key provided: the Basic credentials are not base64.",
                    )
                })?;
            // The key is the user name; the password is empty.
            decoded.split(':').next().unwrap_or_default().to_owned()
        }
        _ => {
            return Err(ApiError::authentication(
                "Invalid API Key provided: use 'Authorization: Bearer sk_test_…'.",
            ))
        }
    };
    if LIVE_PREFIXES.iter().any(|prefix| key.starts_with(prefix)) {
        return Err(ApiError::authentication(format!(
            "Invalid API Key provided: {}. The sandbox takes test keys only (sk_test_…); a live key (sk_live_…) is never accepted here.",
            redact(&key)
        )));
    }
    let well_formed = key.len() <= MAX_KEY_LENGTH
        && TEST_PREFIXES
            .iter()
            .any(|prefix| key.len() > prefix.len() && key.starts_with(prefix))
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if !well_formed {
        return Err(ApiError::authentication(format!(
            "Invalid API Key provided: {}",
            redact(&key)
        )));
    }
    Ok(ApiKey(key))
}

/// Stripe shows the start and the last four characters of a refused key.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().take(MAX_KEY_LENGTH).collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len());
    }
    let start: String = chars[..8].iter().collect();
    let end: String = chars[chars.len() - 4..].iter().collect();
    format!("{start}{}{end}", "*".repeat(chars.len() - 12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_keys_pass_live_keys_and_others_do_not() {
        assert_eq!(key_of(Some("Bearer sk_test_abc")).unwrap().0, "sk_test_abc");
        let basic = base64::engine::general_purpose::STANDARD.encode("sk_test_abc:");
        assert_eq!(
            key_of(Some(&format!("Basic {basic}"))).unwrap().0,
            "sk_test_abc"
        );
        let live = key_of(Some("Bearer sk_live_0123456789abcdef")).unwrap_err();
        assert!(live.message.contains("test keys only"), "{}", live.message);
        assert!(!live.message.contains("0123456789ab"), "{}", live.message);
        assert!(key_of(None).is_err());
        assert!(key_of(Some("Bearer pk_test_abc")).is_err());
    }
}
