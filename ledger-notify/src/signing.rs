//! Secrets and the `Ledger-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, one `v1=` per secret that is valid (two for a day after a rotation, as
//! Stripe does), so a receiver that checks either secret accepts it.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of every endpoint secret.
pub const SECRET_PREFIX: &str = "lwhsec_";

/// The header a notification is signed in.
pub const SIGNATURE_HEADER: &str = "Ledger-Signature";

/// A new secret: 32 random bytes from the OS-seeded generator, hex, after [`SECRET_PREFIX`].
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

/// The hex HMAC-SHA256 of `"<timestamp>.<body>"` with `secret` (the whole `lwhsec_…` text is
/// the key).
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The header's value for `body` signed at `timestamp` with each of `secrets`.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    timestamp: i64,
    body: &str,
) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&sign(secret, timestamp, body));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // Computed independently with Python:
        // hmac.new(b"lwhsec_test", b"1700000000.{}", "sha256").hexdigest()
        assert_eq!(
            sign("lwhsec_test", 1_700_000_000, "{}"),
            "ac40191bbba06b43bd830de110326d0a9696c34aabcef59ee232e3b3fa854a74"
        );
    }

    #[test]
    fn two_secrets_give_two_signatures() {
        let header = signature_header(["lwhsec_a", "lwhsec_b"], 5, "x");
        let parts: Vec<&str> = header.split(',').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "t=5");
        assert_eq!(parts[1], format!("v1={}", sign("lwhsec_a", 5, "x")));
        assert_eq!(parts[2], format!("v1={}", sign("lwhsec_b", 5, "x")));
        assert_ne!(parts[1], parts[2]);
    }

    #[test]
    fn secrets_are_fresh() {
        let one = new_secret();
        assert!(one.starts_with(SECRET_PREFIX));
        assert_eq!(one.len(), SECRET_PREFIX.len() + 64);
        assert_ne!(one, new_secret());
    }
}
