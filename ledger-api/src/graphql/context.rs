//! What every resolver can reach: the application's shared state and the caller.

use async_graphql::Context;
use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use ledger_store::commands::CommandHandler;

/// Shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub handler: CommandHandler,
    /// Refunds above this many major units of any currency need an admin key.
    pub refund_approval_threshold: Decimal,
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

pub fn state<'a>(context: &Context<'a>) -> ApiResult<&'a AppState> {
    context
        .data::<AppState>()
        .map_err(|_| ApiError::internal("application state missing from the schema"))
}
