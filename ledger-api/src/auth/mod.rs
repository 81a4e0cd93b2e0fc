//! Who may call: API keys (only their hashes are stored), roles and permissions.

pub mod api_key;
pub mod cache;
pub mod keys;
pub mod role;

pub use api_key::ApiKey;
pub use cache::{KeyCache, KEY_CACHE_TTL};
pub use keys::{
    authenticate, authenticate_bearer, create_key, list_keys, revoke_key, KeyRecord, Principal,
};
pub use role::{Permission, Role};

impl Principal {
    /// Refuses with FORBIDDEN unless the principal's role grants the permission.
    pub fn require(&self, permission: Permission) -> Result<(), crate::error::ApiError> {
        if self.role.may(permission) {
            Ok(())
        } else {
            Err(crate::error::ApiError::Forbidden(format!(
                "the {} role may not do this; ask an admin for a key with the right role",
                self.role
            )))
        }
    }
}
