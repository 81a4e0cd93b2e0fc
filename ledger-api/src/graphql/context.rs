//! What every resolver can reach: the application's shared state and the caller.

use async_graphql::Context;
use ledger_core::payment::RefundApprovalThresholds;
use sqlx::PgPool;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::live::LiveLog;
use ledger_store::commands::CommandHandler;
use ledger_store::RecordedEvent;
use uuid::Uuid;

/// Shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub handler: CommandHandler,
    /// When a payment's refunds in all need an admin key (per currency).
    pub refund_approval: RefundApprovalThresholds,
    /// Where reads go: a standby in rotation or the primary (see [`crate::replicas`]).
    pub reads: crate::replicas::ReadPools,
    /// The log as it grows, shared by every subscription.
    pub live: LiveLog,
    /// Stripe webhooks, when their secrets are configured: a reconciliation import retries the
    /// payout events parked until the batch it records existed.
    pub webhooks: Option<ledger_stripe::webhooks::WebhookState>,
    /// The projections' checkpoints, read once for all the queries waiting for a position.
    pub checkpoints: std::sync::Arc<crate::graphql::query::read_models::page::SharedCheckpoints>,
    /// Keys verified recently (see [`crate::auth::KeyCache`] for the revocation bound).
    pub keys: crate::auth::KeyCache,
    /// Outbound notification endpoints.
    pub endpoints: ledger_notify::Endpoints,
}

/// The caller of the request being resolved, refused unless its role allows `permission`.
pub fn caller(context: &Context<'_>, permission: Permission) -> ApiResult<Principal> {
    let principal = context
        .data_opt::<Principal>()
        .copied()
        .ok_or(ApiError::Unauthenticated)?;
    principal.require(permission)?;
    Ok(principal)
}

/// The handler of a command that is one line of an atomic `POST /commands` request: it
/// decides the command in the request's unit instead of appending it alone.
pub struct UnitLine(pub CommandHandler);

/// The handler a mutation runs its command through: the application's, or its line's in an
/// atomic bulk request.
pub fn command_handler<'a>(context: &Context<'a>) -> ApiResult<&'a CommandHandler> {
    match context.data_opt::<UnitLine>() {
        Some(UnitLine(handler)) => Ok(handler),
        None => Ok(&state(context)?.handler),
    }
}

pub fn state<'a>(context: &Context<'a>) -> ApiResult<&'a AppState> {
    context
        .data::<AppState>()
        .map_err(|_| ApiError::internal("application state missing from the schema"))
}

/// Whether an event was recorded in the caller's environment: the one test that keeps an
/// environment's events from the other's keys.
pub fn belongs_to(event: &RecordedEvent, principal: &Principal) -> bool {
    event
        .metadata
        .get("environment")
        .and_then(serde_json::Value::as_str)
        == Some(principal.environment.as_str())
}

/// A stream's whole history, or `None` when any of it lies outside the caller's environment
/// (an empty history is a stream that does not exist).
pub async fn visible_history(
    app: &AppState,
    principal: &Principal,
    stream_id: Uuid,
) -> ApiResult<Option<Vec<RecordedEvent>>> {
    let history = app.handler.store().read_stream(stream_id, 1).await?;
    Ok(history
        .iter()
        .all(|event| belongs_to(event, principal))
        .then_some(history))
}
