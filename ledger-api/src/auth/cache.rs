//! Keys verified recently, so that a request does not look its key up in the database again.
//!
//! The trade-off, deliberately bounded: a key revoked by another process (`ledger keys
//! revoke`) keeps working in this one for at most [`KEY_CACHE_TTL`]. Unknown and revoked keys
//! are never cached, so a refusal is always current, and a new key works at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::keys::{authenticate, bearer_key, Principal};
use crate::error::ApiError;

/// How long a verified key is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Keys remembered at most; past this the cache starts over rather than grow.
const KEY_CACHE_CAPACITY: usize = 10_000;

/// Key hash → the principal it resolved to, and when.
type Verified = HashMap<[u8; 32], (Principal, Instant)>;

#[derive(Clone, Default)]
pub struct KeyCache {
    verified: Arc<Mutex<Verified>>,
}

impl KeyCache {
    /// The principal of an `Authorization: Bearer lk_…` header.
    pub async fn authenticate_bearer(
        &self,
        pool: &PgPool,
        authorization: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let key = bearer_key(authorization)?;
        let hash = key.hash();
        if let Some(principal) = self.recent(&hash) {
            return Ok(principal);
        }
        let principal = authenticate(pool, &key).await?;
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if verified.len() >= KEY_CACHE_CAPACITY {
            verified.clear();
        }
        verified.insert(hash, (principal, Instant::now()));
        Ok(principal)
    }

    fn recent(&self, hash: &[u8; 32]) -> Option<Principal> {
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        verified
            .get(hash)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(principal, _)| *principal)
    }
}
