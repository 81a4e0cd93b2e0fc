//! Queries answered from the read models (`ledger-projections`): searches and lists that a
//! single stream cannot answer. These may trail the log by the projection lag; a client that
//! must see its own write passes the `position` its mutation returned as `waitForPosition`.
//!
//! Layout: `page` (page sizes, cursors, waiting for a position), `convert` (stored names to
//! GraphQL values), one module per read model. Resolvers here only check the caller and
//! delegate; every query is filtered by the caller's environment.

pub(crate) mod convert;
pub mod disputes;
pub mod finance;
pub mod page;
pub mod payments;
pub mod settlement;

use async_graphql::{Context, Object};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use ledger_projections::Projection;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult, IntoGraphql};
use crate::graphql::context::{caller, state};
use crate::graphql::scalars::Position;
use crate::replicas::ReadRoute;
use disputes::{DisputeConnection, DisputeFilter};
use finance::{Balance, MerchantMetrics, MerchantSummary};
use page::page_size;
use payments::{Order, PaymentConnection, PaymentFilter};
use settlement::{SettlementBatchConnection, SettlementBatchFilter, SettlementException};

/// How far ahead `disputesDueSoon` looks at most.
const MAX_DUE_SOON_HOURS: i32 = 24 * 30;

#[derive(Default)]
pub struct ReadModelQuery;

#[Object]
impl ReadModelQuery {
    /// How far the read models are behind the log, in events.
    async fn projection_lag(&self, context: &Context<'_>) -> async_graphql::Result<i64> {
        projection_lag(context).await.graphql()
    }

    /// Payments, oldest first, a page at a time: pass `pageInfo.endCursor` as `after` for
    /// the next page. Pages stay exact while new payments are recorded.
    #[graphql(complexity = "crate::graphql::page_complexity(first, child_complexity)")]
    async fn payments(
        &self,
        context: &Context<'_>,
        filter: Option<PaymentFilter>,
        first: Option<i32>,
        after: Option<String>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<PaymentConnection> {
        payments(context, filter, first, after, wait_for_position)
            .await
            .graphql()
    }

    /// An order and its payments, with the order-level payment status; null when no such
    /// order exists in the caller's environment.
    async fn order(
        &self,
        context: &Context<'_>,
        id: String,
        merchant_id: Option<String>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<Option<Order>> {
        order(context, id, merchant_id, wait_for_position)
            .await
            .graphql()
    }

    /// Disputes, soonest evidence deadline first (none last), a page at a time.
    #[graphql(complexity = "crate::graphql::page_complexity(first, child_complexity)")]
    async fn disputes(
        &self,
        context: &Context<'_>,
        filter: Option<DisputeFilter>,
        first: Option<i32>,
        after: Option<String>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<DisputeConnection> {
        disputes(context, filter, first, after, wait_for_position)
            .await
            .graphql()
    }

    /// Disputes still needing a response whose evidence is due within `withinHours`,
    /// soonest first: the support team's to-do list.
    #[graphql(complexity = "crate::graphql::page_complexity(first, child_complexity)")]
    async fn disputes_due_soon(
        &self,
        context: &Context<'_>,
        merchant_id: Option<String>,
        #[graphql(default = 72)] within_hours: i32,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<DisputeConnection> {
        disputes_due_soon(context, merchant_id, within_hours, first, after)
            .await
            .graphql()
    }

    /// Settlement batches, newest first, with their payouts, a page at a time.
    #[graphql(complexity = "crate::graphql::page_complexity(first, child_complexity)")]
    async fn settlement_batches(
        &self,
        context: &Context<'_>,
        filter: Option<SettlementBatchFilter>,
        first: Option<i32>,
        after: Option<String>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<SettlementBatchConnection> {
        settlement_batches(context, filter, first, after, wait_for_position)
            .await
            .graphql()
    }

    /// What finance should look at: reserves withheld, failed or late payouts, captures not
    /// settled `unsettledAfterDays` after they were made, each with the latest reconciliation
    /// verdict on its payout or batch. Oldest first, at most 500.
    async fn settlement_exceptions(
        &self,
        context: &Context<'_>,
        merchant_id: Option<String>,
        #[graphql(default = 3)] unsettled_after_days: i32,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<Vec<SettlementException>> {
        settlement_exceptions(
            context,
            merchant_id,
            unsettled_after_days,
            wait_for_position,
        )
        .await
        .graphql()
    }

    /// A merchant's balances per currency and account, now or as of a past time or log
    /// position (`asOf`, `asOfPosition`: at most one).
    async fn balances(
        &self,
        context: &Context<'_>,
        merchant_id: String,
        as_of: Option<DateTime<Utc>>,
        as_of_position: Option<Position>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<Vec<Balance>> {
        balances(
            context,
            merchant_id,
            as_of,
            as_of_position,
            wait_for_position,
        )
        .await
        .graphql()
    }

    /// A merchant's money per currency: pending, settled, in transit, paid out, reserved.
    async fn merchant_summary(
        &self,
        context: &Context<'_>,
        merchant_id: String,
        as_of: Option<DateTime<Utc>>,
        as_of_position: Option<Position>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<Vec<MerchantSummary>> {
        merchant_summary(
            context,
            merchant_id,
            as_of,
            as_of_position,
            wait_for_position,
        )
        .await
        .graphql()
    }

    /// A merchant's daily metrics (UTC days `from..=to`): authorization, refund and dispute
    /// rates, settlement time, and decline codes.
    async fn merchant_metrics(
        &self,
        context: &Context<'_>,
        merchant_id: String,
        from: NaiveDate,
        to: NaiveDate,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<MerchantMetrics> {
        merchant_metrics(context, merchant_id, from, to, wait_for_position)
            .await
            .graphql()
    }
}

async fn payments(
    context: &Context<'_>,
    filter: Option<PaymentFilter>,
    first: Option<i32>,
    after: Option<String>,
    wait_for_position: Option<Position>,
) -> ApiResult<PaymentConnection> {
    let principal = caller(context, Permission::ReadPayments)?;
    let size = page_size(first)?;
    let route = page::wait_for_position(
        state(context)?,
        wait_for_position,
        &[Projection::Payments, Projection::Disputes],
    )
    .await?;
    let filter = filter.unwrap_or_default();
    route
        .run(|pool| {
            let filter = filter.clone();
            let after = after.as_deref();
            async move { payments::list(&pool, principal.environment, filter, size, after).await }
        })
        .await
}

async fn order(
    context: &Context<'_>,
    id: String,
    merchant_id: Option<String>,
    wait_for_position: Option<Position>,
) -> ApiResult<Option<Order>> {
    let principal = caller(context, Permission::ReadOrdersAndDisputes)?;
    let route = page::wait_for_position(
        state(context)?,
        wait_for_position,
        &[
            Projection::Orders,
            Projection::Payments,
            Projection::Disputes,
        ],
    )
    .await?;
    route
        .run(|pool| {
            let (id, merchant_id) = (&id, merchant_id.as_deref());
            async move { payments::order(&pool, principal.environment, id, merchant_id).await }
        })
        .await
}

async fn disputes(
    context: &Context<'_>,
    filter: Option<DisputeFilter>,
    first: Option<i32>,
    after: Option<String>,
    wait_for_position: Option<Position>,
) -> ApiResult<DisputeConnection> {
    let principal = caller(context, Permission::ReadOrdersAndDisputes)?;
    let size = page_size(first)?;
    let route =
        page::wait_for_position(state(context)?, wait_for_position, &[Projection::Disputes])
            .await?;
    let filter = filter.unwrap_or_default();
    list_disputes(&route, principal, filter, size, after.as_deref()).await
}

async fn list_disputes(
    route: &ReadRoute,
    principal: Principal,
    filter: DisputeFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<DisputeConnection> {
    route
        .run(|pool| {
            let filter = filter.clone();
            async move { disputes::list(&pool, principal.environment, filter, size, after).await }
        })
        .await
}

async fn disputes_due_soon(
    context: &Context<'_>,
    merchant_id: Option<String>,
    within_hours: i32,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<DisputeConnection> {
    let principal = caller(context, Permission::ReadOrdersAndDisputes)?;
    let size = page_size(first)?;
    if !(1..=MAX_DUE_SOON_HOURS).contains(&within_hours) {
        return Err(ApiError::validation(
            "withinHours",
            format!("withinHours must be between 1 and {MAX_DUE_SOON_HOURS}"),
        ));
    }
    let filter = DisputeFilter {
        merchant_id,
        status: Some(crate::graphql::types::DisputeStatus::NeedsResponse),
        due_before: Some(Utc::now() + Duration::hours(i64::from(within_hours))),
    };
    let route = state(context)?.reads.any();
    list_disputes(&route, principal, filter, size, after.as_deref()).await
}

async fn settlement_batches(
    context: &Context<'_>,
    filter: Option<SettlementBatchFilter>,
    first: Option<i32>,
    after: Option<String>,
    wait_for_position: Option<Position>,
) -> ApiResult<SettlementBatchConnection> {
    let principal = caller(context, Permission::ReadSettlements)?;
    let size = page_size(first)?;
    let route = page::wait_for_position(
        state(context)?,
        wait_for_position,
        &[Projection::Settlement],
    )
    .await?;
    let filter = filter.unwrap_or_default();
    route
        .run(|pool| {
            let filter = filter.clone();
            let after = after.as_deref();
            async move { settlement::list(&pool, principal.environment, filter, size, after).await }
        })
        .await
}

async fn settlement_exceptions(
    context: &Context<'_>,
    merchant_id: Option<String>,
    unsettled_after_days: i32,
    wait_for_position: Option<Position>,
) -> ApiResult<Vec<SettlementException>> {
    let principal = caller(context, Permission::ReadSettlements)?;
    let route = page::wait_for_position(
        state(context)?,
        wait_for_position,
        &[
            Projection::Settlement,
            Projection::Payments,
            Projection::Reconciliation,
        ],
    )
    .await?;
    route
        .run(|pool| {
            let merchant_id = merchant_id.as_deref();
            async move {
                settlement::exceptions(
                    &pool,
                    principal.environment,
                    merchant_id,
                    unsettled_after_days,
                )
                .await
            }
        })
        .await
}

async fn balances(
    context: &Context<'_>,
    merchant_id: String,
    as_of: Option<DateTime<Utc>>,
    as_of_position: Option<Position>,
    wait_for_position: Option<Position>,
) -> ApiResult<Vec<Balance>> {
    let principal = caller(context, Permission::ReadBalances)?;
    let as_of = finance::as_of(as_of, as_of_position)?;
    let route =
        page::wait_for_position(state(context)?, wait_for_position, &[Projection::Journal]).await?;
    route
        .run(|pool| {
            let merchant_id = &merchant_id;
            async move { finance::balances(&pool, principal.environment, merchant_id, as_of).await }
        })
        .await
}

async fn merchant_summary(
    context: &Context<'_>,
    merchant_id: String,
    as_of: Option<DateTime<Utc>>,
    as_of_position: Option<Position>,
    wait_for_position: Option<Position>,
) -> ApiResult<Vec<MerchantSummary>> {
    let principal = caller(context, Permission::ReadBalances)?;
    let as_of = finance::as_of(as_of, as_of_position)?;
    let route =
        page::wait_for_position(state(context)?, wait_for_position, &[Projection::Journal]).await?;
    route
        .run(|pool| {
            let merchant_id = &merchant_id;
            async move {
                finance::merchant_summary(&pool, principal.environment, merchant_id, as_of).await
            }
        })
        .await
}

async fn merchant_metrics(
    context: &Context<'_>,
    merchant_id: String,
    from: NaiveDate,
    to: NaiveDate,
    wait_for_position: Option<Position>,
) -> ApiResult<MerchantMetrics> {
    let principal = caller(context, Permission::ReadBalances)?;
    let route =
        page::wait_for_position(state(context)?, wait_for_position, &[Projection::Metrics]).await?;
    route
        .run(|pool| {
            let merchant_id = merchant_id.clone();
            async move {
                finance::merchant_metrics(&pool, principal.environment, merchant_id, from, to).await
            }
        })
        .await
}

async fn projection_lag(context: &Context<'_>) -> ApiResult<i64> {
    let pool = &state(context)?.pool;
    let lag = ledger_projections::projection_lag(pool).await?;
    Ok(lag
        .iter()
        .map(|projection| i64::try_from(projection.positions_behind).unwrap_or(i64::MAX))
        .max()
        .unwrap_or(0))
}
