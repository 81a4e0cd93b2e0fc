//! The `Stripe-Signature` header: verification exactly as Stripe documents it, and signing
//! the way Stripe signs (for tests and `ledger demo`).
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`. Each `v1` is the lower-case
//! hex HMAC-SHA256, keyed with the endpoint secret, of `"<t>.<raw body>"`. Stripe sends several
//! `v1` values while a secret is being rolled; schemes other than `v1` (the test-only `v0`)
//! are ignored, as Stripe's own libraries ignore them.
//!
//! A delivery is accepted when any `v1` matches any configured secret and `t` lies within
//! [`TOLERANCE_SECONDS`] of `now`, in the past or the future. The signature is checked before
//! the timestamp, as Stripe's libraries do, so a forged header reads "no secret matched" and
//! only a genuine but delayed (or replayed) delivery reads "timestamp outside tolerance".
//! Comparisons are constant-time (`Mac::verify_slice`). `now` is a parameter: nothing here
//! reads a clock.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use ledger_core::ids::Environment;
use sha2::Sha256;

use super::error::StripeError;
use super::secrets::{WebhookSecret, WebhookSecrets};

/// The HTTP header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// How far the signed timestamp may be from the receiver's clock, either way (Stripe's
/// libraries default to 300 s).
pub const TOLERANCE_SECONDS: i64 = 300;

/// A real header is under 300 bytes even mid-rotation; the bound stops a header from costing
/// more than a few HMAC comparisons.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 4 * 1024;

/// At most this many `v1` values are compared.
pub const MAX_V1_SIGNATURES: usize = 8;

/// Bytes in a SHA-256 MAC.
const SIGNATURE_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A parsed header: the signed timestamp and the raw `v1` signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SignatureHeader {
    timestamp: i64,
    v1_signatures: Vec<[u8; SIGNATURE_BYTES]>,
}

impl SignatureHeader {
    fn parse(header: &str) -> Result<SignatureHeader, StripeError> {
        let malformed = |reason| StripeError::MalformedSignatureHeader { reason };
        if header.len() > MAX_SIGNATURE_HEADER_BYTES {
            return Err(malformed("it is longer than 4096 bytes"));
        }
        let mut timestamp = None;
        let mut v1_signatures = Vec::new();
        for element in header.split(',') {
            let (scheme, value) = element
                .trim()
                .split_once('=')
                .ok_or(malformed("an element is not `key=value`"))?;
            match scheme {
                "t" if timestamp.is_some() => return Err(malformed("`t` appears twice")),
                "t" => {
                    let seconds = value
                        .parse::<i64>()
                        .map_err(|_| malformed("`t` is not a whole number of seconds"))?;
                    timestamp = Some(seconds);
                }
                "v1" if v1_signatures.len() >= MAX_V1_SIGNATURES => {
                    return Err(malformed("it carries more than 8 v1 signatures"))
                }
                "v1" => v1_signatures.push(decode_signature(value)?),
                // v0 (test-mode SHA-1) and any scheme Stripe adds later are not ours to check.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(malformed("it has no `t=` timestamp"))?;
        if v1_signatures.is_empty() {
            return Err(StripeError::NoV1Signature);
        }
        Ok(SignatureHeader {
            timestamp,
            v1_signatures,
        })
    }
}

fn decode_signature(value: &str) -> Result<[u8; SIGNATURE_BYTES], StripeError> {
    let mut signature = [0_u8; SIGNATURE_BYTES];
    hex::decode_to_slice(value, &mut signature).map_err(|_| {
        StripeError::MalformedSignatureHeader {
            reason: "a v1 signature is not 64 hexadecimal digits",
        }
    })?;
    Ok(signature)
}

/// The keyed MAC over `"<timestamp>.<body>"`, ready to finalize or verify.
fn signed_payload_mac(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = secret.keyed_mac();
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Verifies a delivery's signature header against every configured secret and returns the
/// environment of the secret that matched. `header` is `None` when the request had no
/// `Stripe-Signature` header; `body` is the raw request body, byte for byte as received.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secrets: &WebhookSecrets,
    now: DateTime<Utc>,
) -> Result<Environment, StripeError> {
    let header = header.ok_or(StripeError::MissingSignatureHeader)?;
    let header = SignatureHeader::parse(header)?;
    let environment = matching_environment(&header, body, secrets)?;
    let age_seconds = now.timestamp().saturating_sub(header.timestamp);
    if age_seconds.saturating_abs() > TOLERANCE_SECONDS {
        return Err(StripeError::TimestampOutsideTolerance {
            timestamp: header.timestamp,
            tolerance_seconds: TOLERANCE_SECONDS,
        });
    }
    Ok(environment)
}

fn matching_environment(
    header: &SignatureHeader,
    body: &[u8],
    secrets: &WebhookSecrets,
) -> Result<Environment, StripeError> {
    for secret in secrets.iter() {
        let mac = signed_payload_mac(secret, header.timestamp, body);
        let matched = header
            .v1_signatures
            .iter()
            .any(|signature| mac.clone().verify_slice(signature).is_ok());
        if matched {
            return Ok(secret.environment());
        }
    }
    Err(StripeError::NoSecretMatched)
}

/// The hex `v1` signature Stripe would compute for this body at this time.
pub fn v1_signature(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> String {
    hex::encode(
        signed_payload_mac(secret, timestamp, body)
            .finalize()
            .into_bytes(),
    )
}

/// A complete `Stripe-Signature` header value, `t=<timestamp>,v1=<hex>`, as Stripe sends it.
pub fn sign(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", v1_signature(secret, timestamp, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timestamp_several_v1_and_ignores_other_schemes() {
        let first = "a".repeat(64);
        let second = "B".repeat(64);
        let header = format!("t=1700000000, v1={first},v0=abc,v1={second},v9=x");
        let parsed = SignatureHeader::parse(&header).unwrap();
        assert_eq!(parsed.timestamp, 1_700_000_000);
        assert_eq!(parsed.v1_signatures, vec![[0xaa; 32], [0xbb; 32]]);
    }

    #[test]
    fn refuses_headers_that_cannot_be_read() {
        let signature = "0".repeat(64);
        for header in [
            "",
            "garbage",
            &format!("v1={signature}"),
            &format!("t=12x,v1={signature}"),
            &format!("t=1,t=2,v1={signature}"),
            "t=1,v1=abc",
            &format!("t=1,v1={}", "z".repeat(64)),
            &format!("t=1,{}", format!("v1={signature},").repeat(9)),
        ] {
            assert!(
                matches!(
                    SignatureHeader::parse(header),
                    Err(StripeError::MalformedSignatureHeader { .. })
                ),
                "{header}"
            );
        }
        assert_eq!(
            SignatureHeader::parse("t=1,v0=abc"),
            Err(StripeError::NoV1Signature)
        );
    }
}
