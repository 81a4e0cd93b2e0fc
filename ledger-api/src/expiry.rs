//! Authorizations past their `expiresAt` expire: `ledger serve` looks for them every
//! [`EXPIRY_SWEEP_INTERVAL`] and records `AuthorizationExpired` for each through the command
//! handler, as the actor `system`. The rules decide as for any command (an authorization
//! captured or voided meanwhile is refused and left alone), so the read model that finds the
//! candidates may lag without harm.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger_core::ids::PaymentId;
use ledger_core::payment::{ExpireAuthorization, PaymentCommand};
use ledger_projections::read_models::payments::{due_expiries, DueExpiry};
use ledger_store::commands::{CommandContext, CommandHandler};
use ledger_store::StoreError;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;

/// How often `ledger serve` looks for expired authorizations.
pub const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// Candidates read per query; a sweep pages through all of them.
const EXPIRY_PAGE: usize = 500;
/// The actor of the events the sweep records.
pub const SYSTEM_ACTOR: &str = "system";

/// Records the expiry of every authorization due at `now`; returns how many expired.
pub async fn expire_due_authorizations(
    handler: &CommandHandler,
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    let mut expired = 0;
    let mut after = None;
    loop {
        let page = due_expiries(pool, now, after, EXPIRY_PAGE).await?;
        for due in &page {
            if expire(handler, due, now).await? {
                expired += 1;
            }
        }
        match page.last() {
            Some(last) if page.len() == EXPIRY_PAGE => {
                after = Some((last.expires_at, last.payment_id));
            }
            _ => return Ok(expired),
        }
    }
}

/// Whether the authorization expired now; `false` when the rules refuse (captured in full,
/// voided or expired since the read model saw it).
async fn expire(
    handler: &CommandHandler,
    due: &DueExpiry,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let context = CommandContext {
        environment: due.environment,
        actor_id: SYSTEM_ACTOR.to_owned(),
        actor_role: SYSTEM_ACTOR.to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        // The fact happened when the authorization ran out, not when the sweep noticed.
        occurred_at: due.expires_at,
        idempotency: None,
    };
    let command = PaymentCommand::Expire(ExpireAuthorization { now });
    match handler
        .handle_payment(PaymentId::from_uuid(due.payment_id), &command, &context)
        .await
    {
        Ok(_) => Ok(true),
        Err(StoreError::Rejected(_)) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Sweeps every `interval` until `stop` completes. A failed sweep is logged and tried again
/// at the next tick: the candidates are still there.
pub async fn sweep_expiries(
    handler: CommandHandler,
    pool: PgPool,
    interval: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
        }
        match expire_due_authorizations(&handler, &pool, Utc::now()).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "authorizations past their expiry expired"),
            Err(error) => tracing::warn!(%error, "the sweep of expired authorizations failed"),
        }
    }
}
