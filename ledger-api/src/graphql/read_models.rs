//! Queries answered from the read models (`ledger-projections`): searches and lists that a
//! single stream cannot answer. These may trail the log by the projection lag.

use async_graphql::Object;

#[derive(Default)]
pub struct ReadModelQuery;

#[Object]
impl ReadModelQuery {
    /// How far the read models are behind the log, in events.
    async fn projection_lag(
        &self,
        context: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<i64> {
        use crate::error::IntoGraphql;
        let state = super::context::state(context).graphql()?;
        let lag = ledger_projections::projection_lag(&state.pool)
            .await
            .map_err(crate::error::ApiError::internal)
            .graphql()?;
        Ok(lag
            .iter()
            .map(|projection| i64::try_from(projection.positions_behind).unwrap_or(i64::MAX))
            .max()
            .unwrap_or(0))
    }
}
