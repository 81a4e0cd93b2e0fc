//! Server-side sessions: the browser holds only an opaque random id in a cookie; the key it
//! signed in with stays here, in memory, and is checked again on every request (so a revoked
//! key ends its sessions at once). A restart signs everyone out, which is acceptable for a
//! staff console and keeps keys off disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cookie::{Cookie, SameSite};
use ledger_api::auth::ApiKey;
use rand::RngCore as _;

/// How long a session lasts after sign-in, whatever is done with it: a working day.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions kept at most; past this a sign-in is refused rather than memory grown.
pub const MAX_SESSIONS: usize = 10_000;
/// The cookie holding the session id.
pub const SESSION_COOKIE: &str = "ledger_console_session";
/// The cookie holding the sign-in form's CSRF token (double submit: there is no session yet).
pub const SIGN_IN_COOKIE: &str = "ledger_console_sign_in";
/// Every console cookie is scoped to the console.
pub const COOKIE_PATH: &str = "/console";

/// One signed-in browser.
#[derive(Clone)]
pub struct Session {
    pub key: ApiKey,
    /// The token every form of this session carries back.
    pub csrf: String,
    expires_at: Instant,
}

#[derive(Clone, Default)]
pub struct Sessions {
    by_id: Arc<Mutex<HashMap<String, Session>>>,
}

impl Sessions {
    /// A new session for the key: its id, or `None` when [`MAX_SESSIONS`] live ones exist.
    pub fn open(&self, key: ApiKey) -> Option<String> {
        let mut by_id = self.lock();
        if by_id.len() >= MAX_SESSIONS {
            let now = Instant::now();
            by_id.retain(|_, session| session.expires_at > now);
            if by_id.len() >= MAX_SESSIONS {
                return None;
            }
        }
        let id = random_token();
        let session = Session {
            key,
            csrf: random_token(),
            expires_at: Instant::now() + SESSION_TTL,
        };
        by_id.insert(id.clone(), session);
        Some(id)
    }

    /// The live session of that id; an expired one is forgotten.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut by_id = self.lock();
        match by_id.get(id) {
            Some(session) if session.expires_at > Instant::now() => Some(session.clone()),
            Some(_) => {
                by_id.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// 256 random bits, hex: session ids and CSRF tokens. `rand::rng()` is a CSPRNG seeded from
/// the operating system.
pub fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected.bytes())
            .fold(0_u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// A console cookie: HttpOnly, SameSite=Strict, scoped to `/console`, Secure when the
/// browser reached us over TLS.
pub fn cookie(name: &'static str, value: String, max_age: Duration, secure: bool) -> String {
    let max_age = cookie::time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(0));
    Cookie::build((name, value))
        .path(COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(max_age)
        .build()
        .to_string()
}

/// A cookie that tells the browser to forget `name`.
pub fn removal(name: &'static str, secure: bool) -> String {
    cookie(name, String::new(), Duration::ZERO, secure)
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// Whether the browser reached us over TLS: directly, or through a proxy that says so.
pub fn over_tls(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> bool {
    uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::ids::Environment;

    #[test]
    fn sessions_open_find_and_close() {
        let sessions = Sessions::default();
        let id = sessions.open(ApiKey::generate(Environment::Test)).unwrap();
        assert_eq!(id.len(), 64);
        let session = sessions.get(&id).unwrap();
        assert_eq!(session.csrf.len(), 64);
        assert_ne!(session.csrf, id);
        assert!(sessions.get("not-an-id").is_none());
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", "abc"));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let plain = cookie(SESSION_COOKIE, "x".into(), SESSION_TTL, false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(plain.contains("Max-Age=28800") && plain.contains("Path=/console"));
        assert!(!plain.contains("Secure"));
        assert!(cookie(SESSION_COOKIE, "x".into(), SESSION_TTL, true).contains("Secure"));
    }
}
