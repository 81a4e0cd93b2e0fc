//! The `Stripe-Signature` header, as Stripe computes it: `t=<unix seconds>,v1=<hex>`, where
//! `v1` is HMAC-SHA256 keyed with the whole endpoint secret (`whsec_` included) over
//! `"<t>.<raw body>"`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}
