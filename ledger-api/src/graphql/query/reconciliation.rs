//! Reconciliation for finance and auditors: the runs of imported payout reports and the
//! exceptions they found. Read from the reconciliation read model, so answers may trail the
//! log by the projection lag (`waitForPosition` reads one's own writes).

use async_graphql::{Context, Object};
use ledger_core::ids::Environment as CoreEnvironment;
use ledger_projections::read_models::reconciliation::{
    self as read_model, ExceptionCursor, RunCursor,
};
use ledger_projections::Projection;
use sqlx::PgPool;
use uuid::Uuid;

use super::read_models::page::{self, decode_cursor, encode_cursor, page_of, page_size};
use crate::auth::Permission;
use crate::error::{ApiResult, IntoGraphql};
use crate::graphql::context::{caller, state};
use crate::graphql::loaders::reconciliation::run_payouts_loader;
use crate::graphql::scalars::Position;
use crate::graphql::types::reconciliation::{
    ReconciliationException, ReconciliationExceptionConnection, ReconciliationExceptionEdge,
    ReconciliationExceptionFilter, ReconciliationRun, ReconciliationRunConnection,
    ReconciliationRunEdge, ReconciliationRunExceptionFilter, ReconciliationRunFilter,
};
use crate::replicas::ReadRoute;

async fn list_runs(
    pool: &PgPool,
    environment: CoreEnvironment,
    filter: ReconciliationRunFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<ReconciliationRunConnection> {
    let after = decode_cursor::<RunCursor>(after)?;
    let filter = read_model::RunFilter {
        status: filter.status.map(Into::into),
    };
    let rows = read_model::list_runs(pool, environment, &filter, after, size + 1).await?;
    let payouts = run_payouts_loader(pool, environment);
    let nodes = rows
        .into_iter()
        .map(|row| ReconciliationRun::new(row, environment, &payouts))
        .collect::<ApiResult<Vec<_>>>()?;
    let (edges, page_info) = page_of(
        nodes,
        size,
        |node| encode_cursor::<RunCursor>((node.started_at, node.id)),
        |cursor, node| ReconciliationRunEdge { cursor, node },
    );
    Ok(ReconciliationRunConnection { edges, page_info })
}

pub(crate) async fn list_exceptions(
    pool: &PgPool,
    environment: CoreEnvironment,
    filter: ReconciliationExceptionFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<ReconciliationExceptionConnection> {
    let after = decode_cursor::<ExceptionCursor>(after)?;
    let rows =
        read_model::list_exceptions(pool, environment, &filter.into(), after, size + 1).await?;
    let nodes = rows
        .into_iter()
        .map(ReconciliationException::new)
        .collect::<ApiResult<Vec<_>>>()?;
    let (edges, page_info) = page_of(
        nodes,
        size,
        |node| encode_cursor::<ExceptionCursor>(node.cursor),
        |cursor, node| ReconciliationExceptionEdge { cursor, node },
    );
    Ok(ReconciliationExceptionConnection { edges, page_info })
}

#[derive(Default)]
pub struct ReconciliationQuery;

#[Object]
impl ReconciliationQuery {
    /// Reconciliation runs, newest first, a page at a time.
    #[graphql(complexity = "crate::graphql::page_complexity(first, child_complexity)")]
    async fn reconciliation_runs(
        &self,
        context: &Context<'_>,
        filter: Option<ReconciliationRunFilter>,
        first: Option<i32>,
        after: Option<String>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<ReconciliationRunConnection> {
        reconciliation_runs(context, filter, first, after, wait_for_position)
            .await
            .graphql()
    }

    /// One run with its summary, payouts and exceptions; null when no such run exists in the
    /// caller's environment.
    async fn reconciliation_run(
        &self,
        context: &Context<'_>,
        id: Uuid,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<Option<ReconciliationRun>> {
        reconciliation_run(context, id, wait_for_position)
            .await
            .graphql()
    }

    /// Exceptions in the order they were found (oldest first, each run's in report order), a
    /// page at a time: finance's work list with `filter: {resolved: false}`.
    #[graphql(complexity = "crate::graphql::page_complexity(first, child_complexity)")]
    async fn reconciliation_exceptions(
        &self,
        context: &Context<'_>,
        filter: Option<ReconciliationExceptionFilter>,
        first: Option<i32>,
        after: Option<String>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<ReconciliationExceptionConnection> {
        reconciliation_exceptions(context, filter, first, after, wait_for_position)
            .await
            .graphql()
    }
}

async fn reconciliation_runs(
    context: &Context<'_>,
    filter: Option<ReconciliationRunFilter>,
    first: Option<i32>,
    after: Option<String>,
    wait_for_position: Option<Position>,
) -> ApiResult<ReconciliationRunConnection> {
    let principal = caller(context, Permission::ReadReconciliations)?;
    let size = page_size(first)?;
    let app = state(context)?;
    let route =
        page::wait_for_position(app, wait_for_position, &[Projection::Reconciliation]).await?;
    let filter = filter.unwrap_or_default();
    route
        .run(|pool| {
            let filter = filter.clone();
            let after = after.as_deref();
            async move { list_runs(&pool, principal.environment, filter, size, after).await }
        })
        .await
}

async fn reconciliation_run(
    context: &Context<'_>,
    id: Uuid,
    wait_for_position: Option<Position>,
) -> ApiResult<Option<ReconciliationRun>> {
    let principal = caller(context, Permission::ReadReconciliations)?;
    let app = state(context)?;
    let route =
        page::wait_for_position(app, wait_for_position, &[Projection::Reconciliation]).await?;
    route
        .run(|pool| async move {
            let row = read_model::run(&pool, principal.environment, id).await?;
            let payouts = run_payouts_loader(&pool, principal.environment);
            row.map(|row| ReconciliationRun::new(row, principal.environment, &payouts))
                .transpose()
        })
        .await
}

async fn reconciliation_exceptions(
    context: &Context<'_>,
    filter: Option<ReconciliationExceptionFilter>,
    first: Option<i32>,
    after: Option<String>,
    wait_for_position: Option<Position>,
) -> ApiResult<ReconciliationExceptionConnection> {
    let principal = caller(context, Permission::ReadReconciliations)?;
    let size = page_size(first)?;
    let app = state(context)?;
    let route =
        page::wait_for_position(app, wait_for_position, &[Projection::Reconciliation]).await?;
    let filter = filter.unwrap_or_default();
    routed_exceptions(
        &route,
        principal.environment,
        filter,
        size,
        after.as_deref(),
    )
    .await
}

/// [`list_exceptions`] on the database `route` chooses.
async fn routed_exceptions(
    route: &ReadRoute,
    environment: CoreEnvironment,
    filter: ReconciliationExceptionFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<ReconciliationExceptionConnection> {
    route
        .run(|pool| {
            let filter = filter.clone();
            async move { list_exceptions(&pool, environment, filter, size, after).await }
        })
        .await
}

/// A run's exceptions (`ReconciliationRun.exceptions`), within the run's environment.
pub(crate) async fn run_exceptions(
    context: &Context<'_>,
    run: &ReconciliationRun,
    filter: Option<ReconciliationRunExceptionFilter>,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<ReconciliationExceptionConnection> {
    let size = page_size(first)?;
    let route = state(context)?.reads.any();
    let filter = filter.unwrap_or_default();
    let filter = ReconciliationExceptionFilter {
        run_id: Some(run.id),
        class: filter.class,
        resolved: filter.resolved,
        payout_id: filter.payout_id,
        payment_id: filter.payment_id,
    };
    routed_exceptions(&route, run.core_environment, filter, size, after.as_deref()).await
}
