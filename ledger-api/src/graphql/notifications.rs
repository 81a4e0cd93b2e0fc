//! Outbound notification endpoints (admin): `createWebhookEndpoint`, `webhookEndpoints`,
//! `disableWebhookEndpoint`, `rotateWebhookEndpointSecret`, `replayWebhookDeliveries` and
//! `webhookEndpointDeliveries`, all in the caller's environment, over `ledger-notify`. Kept in
//! one module (queries, mutations and their types) since they share one permission and one
//! store.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use ledger_notify::deliveries::{self, Delivery};
use ledger_notify::{Endpoint, EndpointStatus, NewEndpoint};
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, IntoGraphql};
use crate::graphql::context::{caller, state, AppState};
use crate::graphql::scalars::Position;

/// Whether an endpoint receives notifications.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WebhookEndpointStatus {
    Enabled,
    Disabled,
}

/// Where notifications go. The secret is shown only when created or rotated.
#[derive(SimpleObject)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    /// `*` or notification types (`payment.captured`, …).
    pub event_types: Vec<String>,
    pub description: String,
    pub status: WebhookEndpointStatus,
    /// `admin` (disabled by someone) or `failing` (every attempt failed for 3 days).
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Endpoint> for WebhookEndpoint {
    fn from(endpoint: Endpoint) -> Self {
        WebhookEndpoint {
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
            description: endpoint.description,
            status: match endpoint.status {
                EndpointStatus::Enabled => WebhookEndpointStatus::Enabled,
                EndpointStatus::Disabled => WebhookEndpointStatus::Disabled,
            },
            disabled_reason: endpoint.disabled_reason,
            created_at: endpoint.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    pub idempotency_key: String,
    /// `https://…` (`http://` too in test mode).
    pub url: String,
    /// `["*"]` for every type, or up to 32 notification types.
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

#[derive(SimpleObject)]
pub struct CreateWebhookEndpointResult {
    pub endpoint: WebhookEndpoint,
    /// `lwhsec_…`: verify `Ledger-Signature` with it. Shown only here (and to a retry with the
    /// same idempotency key).
    pub secret: String,
    pub replayed: bool,
}

#[derive(SimpleObject)]
pub struct RotateWebhookEndpointSecretResult {
    pub endpoint: WebhookEndpoint,
    /// The new secret; the old one keeps signing too until `previousSecretExpiresAt`.
    pub secret: String,
    pub previous_secret_expires_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct ReplayWebhookDeliveriesResult {
    /// Notifications queued again (each with its original id).
    pub queued: u64,
}

/// One notification's delivery to the endpoint (a replay is another delivery of it).
#[derive(SimpleObject)]
pub struct WebhookEndpointDelivery {
    /// Cursor for `before`.
    pub id: String,
    pub notification_id: Uuid,
    /// 0 for the first sending, one more per replay.
    pub round: i32,
    pub position: Position,
    #[graphql(name = "type")]
    pub notification_type: String,
    /// `pending`, `delivered` or `failed` (given up after 3 days).
    pub status: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    /// At most 1 KiB of the endpoint's answer.
    pub last_response: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for WebhookEndpointDelivery {
    fn from(delivery: Delivery) -> Self {
        WebhookEndpointDelivery {
            id: delivery.delivery_id.to_string(),
            notification_id: delivery.notification_id,
            round: delivery.round,
            position: Position(delivery.position),
            notification_type: delivery.notification_type,
            status: delivery.status,
            attempts: delivery.attempts,
            created_at: delivery.created_at,
            last_attempt_at: delivery.last_attempt_at,
            last_status_code: delivery.last_status_code,
            last_latency_ms: delivery.last_latency_ms,
            last_error: delivery.last_error,
            last_response: delivery.last_response,
            next_attempt_at: delivery.next_attempt_at,
            delivered_at: delivery.delivered_at,
        }
    }
}

fn admin<'a>(context: &'a Context<'_>) -> ApiResult<(Principal, &'a AppState)> {
    let principal = caller(context, Permission::ManageNotificationEndpoints)?;
    Ok((principal, state(context)?))
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// The environment's notification endpoints (at most 100), oldest first.
    async fn webhook_endpoints(
        &self,
        context: &Context<'_>,
    ) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        list_endpoints(context).await.graphql()
    }

    /// An endpoint's deliveries, newest first: attempts, status codes, latency, next retry.
    async fn webhook_endpoint_deliveries(
        &self,
        context: &Context<'_>,
        endpoint_id: Uuid,
        #[graphql(default = 20)] first: i32,
        before: Option<String>,
    ) -> async_graphql::Result<Vec<WebhookEndpointDelivery>> {
        endpoint_deliveries(context, endpoint_id, first, before)
            .await
            .graphql()
    }
}

async fn list_endpoints(context: &Context<'_>) -> ApiResult<Vec<WebhookEndpoint>> {
    let (principal, app) = admin(context)?;
    let endpoints = app.endpoints.list(principal.environment).await?;
    Ok(endpoints.into_iter().map(WebhookEndpoint::from).collect())
}

async fn endpoint_deliveries(
    context: &Context<'_>,
    endpoint_id: Uuid,
    first: i32,
    before: Option<String>,
) -> ApiResult<Vec<WebhookEndpointDelivery>> {
    let (principal, app) = admin(context)?;
    let before = before
        .map(|cursor| {
            cursor
                .parse::<i64>()
                .map_err(|_| ApiError::validation("before", "not a cursor of this list"))
        })
        .transpose()?;
    let listed = deliveries::list(
        &app.pool,
        principal.environment,
        endpoint_id,
        i64::from(first),
        before,
    )
    .await?;
    Ok(listed
        .into_iter()
        .map(WebhookEndpointDelivery::from)
        .collect())
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Registers an endpoint for notifications of this environment. The answer carries its
    /// signing secret, shown this once.
    async fn create_webhook_endpoint(
        &self,
        context: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<CreateWebhookEndpointResult> {
        create_endpoint(context, input).await.graphql()
    }

    /// Stops notifications to an endpoint (those pending are not sent).
    async fn disable_webhook_endpoint(
        &self,
        context: &Context<'_>,
        endpoint_id: Uuid,
    ) -> async_graphql::Result<WebhookEndpoint> {
        disable_endpoint(context, endpoint_id).await.graphql()
    }

    /// Gives an endpoint a new secret; the old one keeps signing for 24 hours (two `v1=`).
    async fn rotate_webhook_endpoint_secret(
        &self,
        context: &Context<'_>,
        endpoint_id: Uuid,
    ) -> async_graphql::Result<RotateWebhookEndpointSecretResult> {
        rotate_secret(context, endpoint_id).await.graphql()
    }

    /// Sends the endpoint's notifications of log positions `fromPosition..=toPosition`
    /// again (at most 10,000), with their original ids.
    async fn replay_webhook_deliveries(
        &self,
        context: &Context<'_>,
        endpoint_id: Uuid,
        from_position: Position,
        to_position: Position,
    ) -> async_graphql::Result<ReplayWebhookDeliveriesResult> {
        replay(context, endpoint_id, from_position, to_position)
            .await
            .graphql()
    }
}

async fn create_endpoint(
    context: &Context<'_>,
    input: CreateWebhookEndpointInput,
) -> ApiResult<CreateWebhookEndpointResult> {
    let (principal, app) = admin(context)?;
    let created = app
        .endpoints
        .create(
            principal.environment,
            NewEndpoint {
                idempotency_key: input.idempotency_key,
                url: input.url,
                event_types: input.event_types,
                description: input.description,
            },
        )
        .await?;
    Ok(CreateWebhookEndpointResult {
        endpoint: created.endpoint.into(),
        secret: created.secret,
        replayed: created.replayed,
    })
}

async fn disable_endpoint(context: &Context<'_>, endpoint_id: Uuid) -> ApiResult<WebhookEndpoint> {
    let (principal, app) = admin(context)?;
    Ok(app
        .endpoints
        .disable(principal.environment, endpoint_id)
        .await?
        .into())
}

async fn rotate_secret(
    context: &Context<'_>,
    endpoint_id: Uuid,
) -> ApiResult<RotateWebhookEndpointSecretResult> {
    let (principal, app) = admin(context)?;
    let rotated = app
        .endpoints
        .rotate_secret(principal.environment, endpoint_id)
        .await?;
    Ok(RotateWebhookEndpointSecretResult {
        endpoint: rotated.endpoint.into(),
        secret: rotated.secret,
        previous_secret_expires_at: rotated.previous_secret_expires_at,
    })
}

async fn replay(
    context: &Context<'_>,
    endpoint_id: Uuid,
    from_position: Position,
    to_position: Position,
) -> ApiResult<ReplayWebhookDeliveriesResult> {
    let (principal, app) = admin(context)?;
    let queued = deliveries::replay(
        &app.pool,
        principal.environment,
        endpoint_id,
        from_position.0,
        to_position.0,
    )
    .await?;
    Ok(ReplayWebhookDeliveriesResult { queued })
}
