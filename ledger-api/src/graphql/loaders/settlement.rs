//! The payouts of settlement batches, loaded for every batch of one answer in one query.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use ledger_projections::read_models::settlement;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::graphql::query::read_models::convert;
use crate::graphql::query::read_models::settlement::PayoutSummary;

/// Payouts by batch; the batches were already filtered by the caller's environment.
pub struct PayoutsLoader(PgPool);

impl PayoutsLoader {
    pub fn new(pool: &PgPool) -> Arc<DataLoader<PayoutsLoader>> {
        Arc::new(DataLoader::new(PayoutsLoader(pool.clone()), tokio::spawn))
    }
}

impl Loader<Uuid> for PayoutsLoader {
    type Value = Vec<PayoutSummary>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> ApiResult<HashMap<Uuid, Vec<PayoutSummary>>> {
        let rows = settlement::payouts_of(&self.0, keys).await?;
        let mut grouped: HashMap<Uuid, Vec<PayoutSummary>> = HashMap::new();
        for row in rows {
            grouped
                .entry(row.batch_id)
                .or_default()
                .push(PayoutSummary {
                    amount: convert::money(row.amount, &row.currency),
                    status: row.status.into(),
                    payout_id: row.payout_id,
                    expected_arrival_date: row.expected_arrival_date,
                    failure_reason: row.failure_reason,
                    initiated_at: row.initiated_at,
                    paid_at: row.paid_at,
                    failed_at: row.failed_at,
                });
        }
        Ok(grouped)
    }
}
