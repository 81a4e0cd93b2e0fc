//! Queries answered from the log itself: a payment or batch is its folded stream, so these
//! answers are never behind the writes that preceded them. Only the global `events` page may
//! be read on a standby (see `crate::replicas`).

use async_graphql::{Context, Object};
use ledger_core::ids::PaymentId;
use ledger_core::settlement::SettlementBatchState;
use ledger_store::{LogReader, StoreError, StreamType};
use uuid::Uuid;

use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, IntoGraphql};
use crate::graphql::context::{caller, state, visible_history};
use crate::graphql::scalars::Position;
use crate::graphql::types::{LedgerEvent, Payment, SettlementBatch, WebhookDelivery};
use ledger_stripe::webhooks;

/// The most events one `events` page returns.
pub const MAX_EVENTS_PAGE: usize = 500;
/// An `events` page when `first` is absent or null.
pub const DEFAULT_EVENTS_PAGE: usize = 100;

#[derive(Default)]
pub struct LogQuery;

#[Object]
impl LogQuery {
    /// One payment, as its events made it; null when it does not exist in the caller's
    /// environment.
    async fn payment(
        &self,
        context: &Context<'_>,
        id: Uuid,
    ) -> async_graphql::Result<Option<Payment>> {
        payment(context, id).await.graphql()
    }

    /// One settlement batch with its items and payouts.
    async fn settlement_batch(
        &self,
        context: &Context<'_>,
        id: Uuid,
    ) -> async_graphql::Result<Option<SettlementBatch>> {
        settlement_batch(context, id).await.graphql()
    }

    /// Recent Stripe webhook deliveries and what became of each, newest first; searchable by
    /// Stripe event id (`evt_…`) and payment.
    #[graphql(complexity = "crate::graphql::list_complexity(Some(first), 50, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        context: &Context<'_>,
        stripe_event_id: Option<String>,
        payment_id: Option<Uuid>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<WebhookDelivery>> {
        webhook_deliveries(context, stripe_event_id, payment_id, first)
            .await
            .graphql()
    }

    /// One stream's history (`streamId`), or the global log from a position, in position
    /// order. Page by asking again from the last position returned plus one; a page shorter
    /// than `first` (default 100, at most 500) is the end of the log.
    #[graphql(
        complexity = "crate::graphql::list_complexity(first, DEFAULT_EVENTS_PAGE, child_complexity)"
    )]
    async fn events(
        &self,
        context: &Context<'_>,
        stream_id: Option<Uuid>,
        from_position: Option<Position>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<LedgerEvent>> {
        events(context, stream_id, from_position, first)
            .await
            .graphql()
    }
}

async fn webhook_deliveries(
    context: &Context<'_>,
    stripe_event_id: Option<String>,
    payment_id: Option<Uuid>,
    first: i32,
) -> ApiResult<Vec<WebhookDelivery>> {
    let principal = caller(context, Permission::ReadOrdersAndDisputes)?;
    let limit = u32::try_from(first)
        .ok()
        .filter(|first| (1..=webhooks::MAX_RECENT_DELIVERIES).contains(first))
        .ok_or_else(|| {
            ApiError::validation(
                "first",
                format!(
                    "first must be between 1 and {}",
                    webhooks::MAX_RECENT_DELIVERIES
                ),
            )
        })?;
    let filter = webhooks::DeliveryFilter {
        stripe_event_id,
        payment_id: payment_id.map(PaymentId::from_uuid),
    };
    let rows =
        webhooks::recent_deliveries(&state(context)?.pool, principal.environment, &filter, limit)
            .await
            .map_err(ApiError::internal)?;
    Ok(rows.iter().map(WebhookDelivery::from).collect())
}

async fn payment(context: &Context<'_>, id: Uuid) -> ApiResult<Option<Payment>> {
    let principal = caller(context, Permission::ReadPayments)?;
    let app = state(context)?;
    let Some(folded) = of_this_kind(
        app.handler
            .load_folded::<ledger_core::payment::PaymentState>(PaymentId::from_uuid(id).as_uuid())
            .await,
    )?
    else {
        return Ok(None);
    };
    Ok(folded
        .state
        .payment
        .as_ref()
        .filter(|payment| payment.environment == principal.environment)
        .map(|payment| Payment::new(id, payment, &folded.summary)))
}

async fn settlement_batch(context: &Context<'_>, id: Uuid) -> ApiResult<Option<SettlementBatch>> {
    let principal = caller(context, Permission::ReadPayments)?;
    if !principal.role.may(Permission::ReadSettlements)
        && !principal.role.may(Permission::RecordSettlements)
    {
        return Err(ApiError::Forbidden(format!(
            "the {} role may not read settlement batches",
            principal.role
        )));
    }
    let app = state(context)?;
    let Some(folded) = of_this_kind(app.handler.load_folded::<SettlementBatchState>(id).await)?
    else {
        return Ok(None);
    };
    Ok(folded
        .state
        .batch
        .as_ref()
        .filter(|batch| batch.environment == principal.environment)
        .map(|batch| SettlementBatch::new(id, batch, &folded.summary)))
}

/// The permission that reads each kind of stream's history.
const HISTORY_PERMISSIONS: [Permission; 3] = [
    Permission::ReadPaymentHistory,
    Permission::ReadSettlements,
    Permission::ReadReconciliations,
];

fn history_permission(kind: StreamType) -> Permission {
    match kind {
        StreamType::Payment => Permission::ReadPaymentHistory,
        StreamType::SettlementBatch => Permission::ReadSettlements,
        StreamType::ReconciliationRun => Permission::ReadReconciliations,
    }
}

/// A stream folded, or `None` when the id is a stream of another kind (a settlement batch's
/// id asked for as a payment): to a query that is an id that names nothing of its kind.
fn of_this_kind<T>(loaded: Result<T, StoreError>) -> ApiResult<Option<T>> {
    match loaded {
        Ok(folded) => Ok(Some(folded)),
        Err(StoreError::StreamTypeMismatch { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

async fn events(
    context: &Context<'_>,
    stream_id: Option<Uuid>,
    from_position: Option<Position>,
    first: Option<i32>,
) -> ApiResult<Vec<LedgerEvent>> {
    let first = first
        .map_or(Ok(DEFAULT_EVENTS_PAGE), usize::try_from)
        .ok()
        .filter(|first| (1..=MAX_EVENTS_PAGE).contains(first))
        .ok_or_else(|| {
            ApiError::validation(
                "first",
                format!("first must be between 1 and {MAX_EVENTS_PAGE}"),
            )
        })?;
    let from = from_position.map_or(1, |position| position.0.max(1));
    let app = state(context)?;
    match stream_id {
        Some(stream_id) => {
            let principal = caller(context, Permission::ReadPayments)?;
            let history = visible_history(app, &principal, stream_id)
                .await?
                .unwrap_or_default();
            // A stream's history needs the read permission of its kind; an id that names no
            // stream of the caller's environment needs one of them, so that the answer does
            // not tell a caller without any of them what exists.
            let needed = match history.first() {
                Some(event) => vec![history_permission(event.stream_type)],
                None => HISTORY_PERMISSIONS.to_vec(),
            };
            if !needed
                .iter()
                .any(|permission| principal.role.may(*permission))
            {
                return Err(ApiError::Forbidden(format!(
                    "the {} role may not read the history of this stream",
                    principal.role
                )));
            }
            Ok(history
                .iter()
                .filter(|event| event.position >= from)
                .take(first)
                .map(LedgerEvent::from)
                .collect())
        }
        None => {
            let principal = caller(context, Permission::ReadGlobalLog)?;
            // Filtered by environment in the query, so a page is never cut short by a run of
            // the other environment's events.
            // The global log may come from a standby: a prefix of the primary's, never one
            // with a gap (see `ledger_store::log_reader`).
            let page = app
                .reads
                .any()
                .run(|pool| async move {
                    Ok(LogReader::new(pool)
                        .read_all_of_environment(principal.environment, from, first)
                        .await?)
                })
                .await?;
            Ok(page.iter().map(LedgerEvent::from).collect())
        }
    }
}
