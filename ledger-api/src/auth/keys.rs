//! The `api_keys` table: create, list, revoke, and authenticate a presented key.

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use sqlx::PgPool;
use uuid::Uuid;

use super::api_key::ApiKey;
use super::role::Role;
use crate::error::ApiError;

/// A stored key, as listings show it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub environment: Environment,
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who is calling: an authenticated key's id, role and environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub key_id: Uuid,
    pub role: Role,
    pub environment: Environment,
}

fn environment_from(text: &str) -> Result<Environment, ApiError> {
    text.parse()
        .map_err(|_| ApiError::internal(format!("api_keys holds an unknown environment {text:?}")))
}

/// Creates a key and returns it with its record; the key is never retrievable again.
#[tracing::instrument(skip(pool))]
pub async fn create_key(
    pool: &PgPool,
    role: Role,
    environment: Environment,
    name: &str,
) -> Result<(ApiKey, KeyRecord), ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::validation(
            "name",
            "a key name must have 1 to 200 characters",
        ));
    }
    let key = ApiKey::generate(environment);
    let key_hash = key.hash();
    let id = Uuid::new_v4();
    let row = sqlx::query!(
        r#"INSERT INTO api_keys (id, name, role, environment, key_hash, key_prefix)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING created_at"#,
        id,
        name,
        role.as_str(),
        environment.as_str(),
        key_hash.as_slice(),
        key.prefix(),
    )
    .fetch_one(pool)
    .await?;
    let record = KeyRecord {
        id,
        name: name.to_owned(),
        role,
        environment,
        key_prefix: key.prefix(),
        created_at: row.created_at,
        revoked_at: None,
    };
    Ok((key, record))
}

#[tracing::instrument(skip(pool))]
pub async fn list_keys(pool: &PgPool) -> Result<Vec<KeyRecord>, ApiError> {
    let rows = sqlx::query!(
        r#"SELECT id, name, role, environment, key_prefix, created_at, revoked_at
           FROM api_keys ORDER BY created_at, id"#
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(KeyRecord {
                id: row.id,
                name: row.name,
                role: row.role.parse().map_err(ApiError::internal)?,
                environment: environment_from(&row.environment)?,
                key_prefix: row.key_prefix,
                created_at: row.created_at,
                revoked_at: row.revoked_at,
            })
        })
        .collect()
}

/// Revokes a key; revoking twice is harmless. Unknown ids are NOT_FOUND.
#[tracing::instrument(skip(pool))]
pub async fn revoke_key(pool: &PgPool, id: Uuid) -> Result<(), ApiError> {
    let revoked = sqlx::query!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1",
        id
    )
    .execute(pool)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(ApiError::NotFound(format!("no API key with id {id}")));
    }
    Ok(())
}

/// Resolves an `Authorization` value, `Bearer lk_…`, to its principal: the one check every
/// transport makes (HTTP requests, websocket connections). Absent, malformed, unknown and
/// revoked keys are refused alike, so a caller learns nothing about which keys exist.
pub async fn authenticate_bearer(
    pool: &PgPool,
    authorization: Option<&str>,
) -> Result<Principal, ApiError> {
    authenticate(pool, &bearer_key(authorization)?).await
}

/// The key of an `Authorization: Bearer lk_…` value, or UNAUTHENTICATED.
pub fn bearer_key(authorization: Option<&str>) -> Result<ApiKey, ApiError> {
    let presented = authorization
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthenticated)?;
    ApiKey::parse(presented.trim()).map_err(|_| ApiError::Unauthenticated)
}

/// Resolves a presented key to its principal; unknown and revoked keys are refused alike.
#[tracing::instrument(skip_all)]
pub async fn authenticate(pool: &PgPool, key: &ApiKey) -> Result<Principal, ApiError> {
    let key_hash = key.hash();
    let row = sqlx::query!(
        r#"SELECT id, role, environment FROM api_keys
           WHERE key_hash = $1 AND revoked_at IS NULL"#,
        key_hash.as_slice(),
    )
    .fetch_optional(pool)
    .await?;
    let row = row.ok_or(ApiError::Unauthenticated)?;
    Ok(Principal {
        key_id: row.id,
        role: row.role.parse().map_err(ApiError::internal)?,
        environment: environment_from(&row.environment)?,
    })
}
