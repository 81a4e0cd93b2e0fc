//! The endpoint store: create (idempotent per environment and key), list, disable, rotate the
//! secret. Every function takes the caller's environment: an endpoint of the other environment
//! is not found.

use chrono::{DateTime, Duration, Utc};
use ledger_core::ids::Environment;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{from_stored, NotifyError};
use crate::event_types::{NotificationType, ALL_TYPES};
use crate::signing::new_secret;
use crate::url_policy::UrlPolicy;

/// How long the previous secret still signs after a rotation.
pub const PREVIOUS_SECRET_VALIDITY: Duration = Duration::hours(24);
/// Most endpoints one environment may have, disabled ones included.
pub const MAX_ENDPOINTS: i64 = 100;
/// Most event types one endpoint may name.
pub const MAX_EVENT_TYPES: usize = 32;
/// The longest description.
pub const MAX_DESCRIPTION_LENGTH: usize = 512;
/// The longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 255;

/// Whether an endpoint receives notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Enabled => "enabled",
            EndpointStatus::Disabled => "disabled",
        }
    }

    fn parse(text: &str) -> Result<Self, NotifyError> {
        match text {
            "enabled" => Ok(EndpointStatus::Enabled),
            "disabled" => Ok(EndpointStatus::Disabled),
            other => Err(NotifyError::Corrupt(format!("endpoint status {other:?}"))),
        }
    }
}

/// An endpoint as clients see it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: Uuid,
    pub environment: Environment,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub status: EndpointStatus,
    /// `admin` or `failing`, once disabled.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Events up to this position predate the endpoint.
    pub created_position: u64,
}

/// What creating an endpoint asks for.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub idempotency_key: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

/// A created endpoint and its secret, which is shown this once (and again to a retry of the
/// same request with the same key, which must get the same answer).
#[derive(Debug, Clone)]
pub struct CreatedEndpoint {
    pub endpoint: Endpoint,
    pub secret: String,
    /// Whether this answered a retry of an earlier request.
    pub replayed: bool,
}

/// A rotated secret.
#[derive(Debug, Clone)]
pub struct RotatedSecret {
    pub endpoint: Endpoint,
    pub secret: String,
    /// Until when the previous secret signs too.
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// The endpoints' store.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pool: PgPool,
    policy: UrlPolicy,
}

/// Checks the requested event types: `*` alone or known types, no repeats.
fn event_types(requested: &[String]) -> Result<Vec<String>, NotifyError> {
    if requested.is_empty() || requested.len() > MAX_EVENT_TYPES {
        return Err(NotifyError::invalid(
            "eventTypes",
            format!("name 1 to {MAX_EVENT_TYPES} event types, or `*` for all"),
        ));
    }
    let mut types = Vec::with_capacity(requested.len());
    for name in requested {
        let name = name.trim();
        if name == ALL_TYPES {
            if requested.len() > 1 {
                return Err(NotifyError::invalid(
                    "eventTypes",
                    "`*` means every type; name it alone",
                ));
            }
        } else {
            name.parse::<NotificationType>()
                .map_err(|message| NotifyError::invalid("eventTypes", message))?;
        }
        if !types.iter().any(|known: &String| known == name) {
            types.push(name.to_owned());
        }
    }
    Ok(types)
}

impl Endpoints {
    pub fn new(pool: PgPool, policy: UrlPolicy) -> Endpoints {
        Endpoints { pool, policy }
    }

    /// Creates an endpoint, or answers a retry of the same request with the endpoint it made.
    pub async fn create(
        &self,
        environment: Environment,
        request: NewEndpoint,
    ) -> Result<CreatedEndpoint, NotifyError> {
        let key = request.idempotency_key.trim();
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LENGTH {
            return Err(NotifyError::invalid(
                "idempotencyKey",
                format!("an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters"),
            ));
        }
        let url = self.policy.check(environment, &request.url)?;
        let types = event_types(&request.event_types)?;
        let description = request.description.unwrap_or_default();
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION_LENGTH
            || description.chars().any(char::is_control)
        {
            return Err(NotifyError::invalid(
                "description",
                format!(
                    "a description has at most {MAX_DESCRIPTION_LENGTH} characters and no control characters"
                ),
            ));
        }
        // The fingerprint of the request, to tell a retry from a reuse of the key.
        let request_hash = hex::encode(Sha256::digest(
            serde_json::json!({
                "url": request.url,
                "eventTypes": request.event_types,
                "description": description,
            })
            .to_string(),
        ));

        let mut transaction = ledger_store::begin_transaction(&self.pool).await?;
        // One creation per environment at a time: the count limit and the key check hold.
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtext('notification_endpoints:' || $1))",
            environment.as_str()
        )
        .fetch_one(&mut *transaction)
        .await?;
        let earlier = sqlx::query!(
            r#"SELECT endpoint_id, request_hash, secret FROM notification_endpoints
               WHERE environment = $1 AND idempotency_key = $2"#,
            environment.as_str(),
            key
        )
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some(earlier) = earlier {
            transaction.commit().await?;
            if earlier.request_hash != request_hash {
                return Err(NotifyError::IdempotencyKeyReused);
            }
            let endpoint = self.get(environment, earlier.endpoint_id).await?;
            return Ok(CreatedEndpoint {
                endpoint,
                secret: earlier.secret,
                replayed: true,
            });
        }
        let count = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM notification_endpoints WHERE environment = $1"#,
            environment.as_str()
        )
        .fetch_one(&mut *transaction)
        .await?;
        if count >= MAX_ENDPOINTS {
            return Err(NotifyError::TooManyEndpoints(MAX_ENDPOINTS));
        }
        // The dispatcher holds this row for the whole of a batch, from reading its events to
        // reading the endpoints. Waiting for it here, the endpoint's `created_position` is read
        // after any batch in progress commits, so no batch can pass events after that position
        // without seeing the endpoint; and a batch that starts meanwhile waits for this one.
        sqlx::query!("SELECT position FROM notification_checkpoint WHERE id FOR SHARE")
            .fetch_one(&mut *transaction)
            .await?;
        let endpoint_id = Uuid::new_v4();
        let secret = new_secret();
        sqlx::query!(
            r#"INSERT INTO notification_endpoints
                   (endpoint_id, environment, url, event_types, description, status, secret,
                    created_position, idempotency_key, request_hash)
               SELECT $1, $2, $3, $4, $5, 'enabled', $6, last_position, $7, $8 FROM log_head"#,
            endpoint_id,
            environment.as_str(),
            url.as_str(),
            &types,
            description,
            secret,
            key,
            request_hash,
        )
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        let endpoint = self.get(environment, endpoint_id).await?;
        Ok(CreatedEndpoint {
            endpoint,
            secret,
            replayed: false,
        })
    }

    /// One endpoint of the environment.
    pub async fn get(&self, environment: Environment, id: Uuid) -> Result<Endpoint, NotifyError> {
        let row = sqlx::query!(
            r#"SELECT endpoint_id, url, event_types, description, status, disabled_reason,
                      created_at, created_position
               FROM notification_endpoints WHERE environment = $1 AND endpoint_id = $2"#,
            environment.as_str(),
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(NotifyError::EndpointNotFound(id))?;
        Ok(Endpoint {
            id: row.endpoint_id,
            environment,
            url: row.url,
            event_types: row.event_types,
            description: row.description,
            status: EndpointStatus::parse(&row.status)?,
            disabled_reason: row.disabled_reason,
            created_at: row.created_at,
            created_position: from_stored(row.created_position)?,
        })
    }

    /// Every endpoint of the environment (at most [`MAX_ENDPOINTS`]), oldest first.
    pub async fn list(&self, environment: Environment) -> Result<Vec<Endpoint>, NotifyError> {
        let rows = sqlx::query!(
            r#"SELECT endpoint_id, url, event_types, description, status, disabled_reason,
                      created_at, created_position
               FROM notification_endpoints WHERE environment = $1
               ORDER BY created_at, endpoint_id
               LIMIT $2"#,
            environment.as_str(),
            MAX_ENDPOINTS
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Endpoint {
                    id: row.endpoint_id,
                    environment,
                    url: row.url,
                    event_types: row.event_types,
                    description: row.description,
                    status: EndpointStatus::parse(&row.status)?,
                    disabled_reason: row.disabled_reason,
                    created_at: row.created_at,
                    created_position: from_stored(row.created_position)?,
                })
            })
            .collect()
    }

    /// Disables an endpoint: nothing more is sent to it, what is pending stays pending.
    /// Disabling a disabled endpoint changes nothing.
    pub async fn disable(
        &self,
        environment: Environment,
        id: Uuid,
    ) -> Result<Endpoint, NotifyError> {
        sqlx::query!(
            r#"UPDATE notification_endpoints
               SET status = 'disabled', disabled_reason = 'admin', disabled_at = now()
               WHERE environment = $1 AND endpoint_id = $2 AND status = 'enabled'"#,
            environment.as_str(),
            id
        )
        .execute(&self.pool)
        .await?;
        self.get(environment, id).await
    }

    /// Gives the endpoint a new secret; the current one keeps signing (as a second `v1=`)
    /// for [`PREVIOUS_SECRET_VALIDITY`].
    pub async fn rotate_secret(
        &self,
        environment: Environment,
        id: Uuid,
    ) -> Result<RotatedSecret, NotifyError> {
        let secret = new_secret();
        let expires_at = Utc::now() + PREVIOUS_SECRET_VALIDITY;
        let updated = sqlx::query!(
            r#"UPDATE notification_endpoints
               SET previous_secret = secret, previous_secret_expires_at = $3, secret = $4
               WHERE environment = $1 AND endpoint_id = $2"#,
            environment.as_str(),
            id,
            expires_at,
            secret,
        )
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(NotifyError::EndpointNotFound(id));
        }
        Ok(RotatedSecret {
            endpoint: self.get(environment, id).await?,
            secret,
            previous_secret_expires_at: expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_checked() {
        assert!(event_types(&[]).is_err());
        assert!(event_types(&["*".into(), "payment.captured".into()]).is_err());
        assert!(event_types(&["payment.refunded".into()]).is_err());
        assert_eq!(
            event_types(&["payment.captured".into(), "payment.captured".into()]).unwrap(),
            vec!["payment.captured".to_owned()]
        );
    }
}
