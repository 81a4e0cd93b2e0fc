//! The DataLoaders of reconciliation: a run's payout verdicts, and the latest verdict on a
//! payout or batch behind `SettlementException.reconciliation`, for every node of an answer in
//! one query per key kind.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use ledger_core::ids::Environment as CoreEnvironment;
use ledger_projections::read_models::reconciliation as read_model;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::graphql::types::reconciliation::{ReconciliationPayout, ReconciliationVerdict};

/// The payouts of the runs of one answer. The runs were already filtered by the caller's
/// environment; the loader filters again, as it is cheap.
pub struct RunPayoutsLoader {
    pool: PgPool,
    environment: CoreEnvironment,
}

impl Loader<Uuid> for RunPayoutsLoader {
    type Value = Vec<ReconciliationPayout>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> ApiResult<HashMap<Uuid, Vec<ReconciliationPayout>>> {
        let rows = read_model::payouts_of(&self.pool, self.environment, keys).await?;
        let mut grouped: HashMap<Uuid, Vec<ReconciliationPayout>> = HashMap::new();
        for row in rows {
            grouped
                .entry(row.run_id)
                .or_default()
                .push(ReconciliationPayout::new(row)?);
        }
        Ok(grouped)
    }
}

pub(crate) fn run_payouts_loader(
    pool: &PgPool,
    environment: CoreEnvironment,
) -> Arc<DataLoader<RunPayoutsLoader>> {
    Arc::new(DataLoader::new(
        RunPayoutsLoader {
            pool: pool.clone(),
            environment,
        },
        tokio::spawn,
    ))
}

/// What a verdict is looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VerdictKey {
    Payout(String),
    Batch(Uuid),
}

/// The latest verdicts of one answer's settlement exceptions, within the caller's environment.
pub struct VerdictLoader {
    pool: PgPool,
    environment: CoreEnvironment,
}

impl VerdictLoader {
    pub fn new(pool: &PgPool, environment: CoreEnvironment) -> Arc<DataLoader<VerdictLoader>> {
        Arc::new(DataLoader::new(
            VerdictLoader {
                pool: pool.clone(),
                environment,
            },
            tokio::spawn,
        ))
    }
}

impl Loader<VerdictKey> for VerdictLoader {
    type Value = ReconciliationVerdict;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[VerdictKey],
    ) -> ApiResult<HashMap<VerdictKey, ReconciliationVerdict>> {
        let mut payout_ids = Vec::new();
        let mut batch_ids = Vec::new();
        for key in keys {
            match key {
                VerdictKey::Payout(payout_id) => payout_ids.push(payout_id.clone()),
                VerdictKey::Batch(batch_id) => batch_ids.push(*batch_id),
            }
        }
        let mut verdicts = HashMap::new();
        if !payout_ids.is_empty() {
            let rows =
                read_model::latest_verdicts_by_payout(&self.pool, self.environment, &payout_ids)
                    .await?;
            for row in &rows {
                verdicts.insert(
                    VerdictKey::Payout(row.payout_id.clone()),
                    ReconciliationVerdict::new(row)?,
                );
            }
        }
        if !batch_ids.is_empty() {
            let rows =
                read_model::latest_verdicts_by_batch(&self.pool, self.environment, &batch_ids)
                    .await?;
            for row in &rows {
                verdicts.insert(
                    VerdictKey::Batch(row.batch_id),
                    ReconciliationVerdict::new(row)?,
                );
            }
        }
        Ok(verdicts)
    }
}
