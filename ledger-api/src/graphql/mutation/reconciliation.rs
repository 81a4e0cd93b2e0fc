//! `resolveReconciliationException`: finance marks an exception of a reconciliation run
//! resolved, with the reason.

use async_graphql::{Context, InputObject, Object};
use chrono::SubsecRound;
use ledger_core::ids::{ReconciliationExceptionId, ReconciliationRunId};
use ledger_core::reconciliation::{ReconciliationCommand, ReconciliationEvent, ResolveException};
use ledger_projections::read_models::reconciliation as read_model;
use serde::Serialize;
use uuid::Uuid;

use super::command_context;
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, IntoGraphql};
use crate::graphql::context::{caller, state};
use crate::graphql::parse;
use crate::graphql::scalars::Position;
use crate::graphql::types::reconciliation::{
    ReconciliationException, ReconciliationExceptionResult,
};
use crate::graphql::types::LedgerEvent;

#[derive(InputObject, Serialize)]
pub struct ResolveReconciliationExceptionInput {
    pub idempotency_key: String,
    pub exception_id: Uuid,
    /// Why the exception needs nothing more (what was done about it).
    pub reason: String,
}

#[derive(Default)]
pub struct ReconciliationMutation;

#[Object]
impl ReconciliationMutation {
    /// Marks an exception of a reconciliation run resolved, with the reason; the caller's key
    /// is recorded as who resolved it. An exception is resolved once.
    async fn resolve_reconciliation_exception(
        &self,
        context: &Context<'_>,
        input: ResolveReconciliationExceptionInput,
    ) -> async_graphql::Result<ReconciliationExceptionResult> {
        resolve_exception(context, input).await.graphql()
    }
}

async fn resolve_exception(
    context: &Context<'_>,
    input: ResolveReconciliationExceptionInput,
) -> ApiResult<ReconciliationExceptionResult> {
    let principal = caller(context, Permission::RunReconciliation)?;
    let app = state(context)?;
    resolve_reconciliation_exception(&app.pool, &app.handler, &principal, input).await
}

/// Resolves an exception through the command handler, as `resolveReconciliationException`
/// does; the console's form comes here too, so there is one path that records the event.
pub async fn resolve_reconciliation_exception(
    pool: &sqlx::PgPool,
    handler: &ledger_store::commands::CommandHandler,
    principal: &crate::auth::Principal,
    input: ResolveReconciliationExceptionInput,
) -> ApiResult<ReconciliationExceptionResult> {
    principal.require(Permission::RunReconciliation)?;
    let command_context = command_context(
        principal,
        "resolveReconciliationException",
        &input,
        &input.idempotency_key,
    )?;
    let reason = parse::short_text("reason", &input.reason)?;
    // The run of an exception is known only to the read model; an exception it does not show
    // yet is not found, which a retry after the projection lag answers.
    let row = read_model::exception(pool, principal.environment, input.exception_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no reconciliation exception {} in this environment",
                input.exception_id
            ))
        })?;
    let run_id = ReconciliationRunId::from_uuid(row.run_id);
    let command = ReconciliationCommand::ResolveException(ResolveException {
        exception_id: ReconciliationExceptionId::from_uuid(input.exception_id),
        reason,
        resolved_by: parse::short_text("resolvedBy", &command_context.actor_id)?,
        // The database keeps microseconds: recorded so, the event, the answer and the read
        // model all say the same time.
        resolved_at: command_context.occurred_at.trunc_subsecs(6),
    });
    let handled = handler
        .handle_reconciliation(run_id, &command, &command_context)
        .await?;
    // The read model shows the row with the recorded resolution once it has applied the
    // event: the same row is built here from the event, for a replay from the original one.
    let mut exception = ReconciliationException::new(row)?;
    for event in &handled.events {
        if event.stream_id != run_id.as_uuid() {
            continue;
        }
        let decoded = ledger_store::commands::decode::<ReconciliationEvent>(event)?;
        if let ReconciliationEvent::ReconciliationExceptionResolved(resolved) = decoded {
            if resolved.exception_id.as_uuid() == exception.id {
                exception.resolved = true;
                exception.resolved_at = Some(resolved.resolved_at);
                exception.resolved_by = Some(resolved.resolved_by.to_string());
                exception.resolution_reason = Some(resolved.reason.to_string());
            }
        }
    }
    Ok(ReconciliationExceptionResult {
        exception,
        events: handled.events.iter().map(LedgerEvent::from).collect(),
        position: Position(handled.position),
        replayed: handled.replayed,
    })
}
