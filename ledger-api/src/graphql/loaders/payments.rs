//! The relations of payments (captures, refunds, disputes), loaded for every node of one
//! answer in one query per relation.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use ledger_projections::read_models::{disputes, payments};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::graphql::query::read_models::convert;
use crate::graphql::types::{Capture, Dispute, Refund};

/// The relations of payments, batched per answer. The parent rows were already filtered by
/// the caller's environment, so loading children by payment id cannot cross environments.
pub struct PaymentLoaders {
    captures: DataLoader<CapturesLoader>,
    refunds: DataLoader<RefundsLoader>,
    disputes: DataLoader<DisputesLoader>,
}

impl PaymentLoaders {
    /// A payment's captures, in the order they were made.
    pub async fn captures(&self, payment_id: Uuid) -> ApiResult<Vec<Capture>> {
        Ok(self
            .captures
            .load_one(payment_id)
            .await?
            .unwrap_or_default())
    }

    /// A payment's refunds, in the order they were made.
    pub async fn refunds(&self, payment_id: Uuid) -> ApiResult<Vec<Refund>> {
        Ok(self.refunds.load_one(payment_id).await?.unwrap_or_default())
    }

    /// A payment's disputes, in the order they were opened.
    pub async fn disputes(&self, payment_id: Uuid) -> ApiResult<Vec<Dispute>> {
        Ok(self
            .disputes
            .load_one(payment_id)
            .await?
            .unwrap_or_default())
    }

    pub fn new(pool: &PgPool) -> Arc<PaymentLoaders> {
        Arc::new(PaymentLoaders {
            captures: DataLoader::new(CapturesLoader(pool.clone()), tokio::spawn),
            refunds: DataLoader::new(RefundsLoader(pool.clone()), tokio::spawn),
            disputes: DataLoader::new(DisputesLoader(pool.clone()), tokio::spawn),
        })
    }
}

pub struct CapturesLoader(PgPool);
pub struct RefundsLoader(PgPool);
pub struct DisputesLoader(PgPool);

fn group<R, V>(
    rows: Vec<R>,
    key: impl Fn(&R) -> Uuid,
    view: impl Fn(R) -> ApiResult<V>,
) -> ApiResult<HashMap<Uuid, Vec<V>>> {
    let mut grouped: HashMap<Uuid, Vec<V>> = HashMap::new();
    for row in rows {
        grouped.entry(key(&row)).or_default().push(view(row)?);
    }
    Ok(grouped)
}

impl Loader<Uuid> for CapturesLoader {
    type Value = Vec<Capture>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> ApiResult<HashMap<Uuid, Vec<Capture>>> {
        let rows = payments::captures_of(&self.0, keys).await?;
        group(
            rows,
            |row| row.payment_id,
            |row| {
                Ok(Capture {
                    amount: convert::money(row.amount, &row.currency),
                    capture_id: row.capture_id,
                    final_capture: row.final_capture,
                    settled_in_batch: row.settled_batch_id,
                })
            },
        )
    }
}

impl Loader<Uuid> for RefundsLoader {
    type Value = Vec<Refund>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> ApiResult<HashMap<Uuid, Vec<Refund>>> {
        let rows = payments::refunds_of(&self.0, keys).await?;
        group(
            rows,
            |row| row.payment_id,
            |row| {
                Ok(Refund {
                    amount: convert::money(row.amount, &row.currency),
                    status: row.status.into(),
                    refund_id: row.refund_id,
                    reason: row.reason,
                    failure_reason: row.failure_reason,
                    settled_in_batch: row.settled_batch_id,
                })
            },
        )
    }
}

impl Loader<Uuid> for DisputesLoader {
    type Value = Vec<Dispute>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> ApiResult<HashMap<Uuid, Vec<Dispute>>> {
        let rows = disputes::disputes_of(&self.0, keys).await?;
        group(
            rows,
            |row| row.payment_id,
            |row| {
                Ok(Dispute {
                    amount: convert::money(row.amount, &row.currency),
                    fee: convert::money(row.fee, &row.currency),
                    status: row.status.into(),
                    dispute_id: row.dispute_id,
                    reason: row.reason,
                    evidence_due_by: row.evidence_due_by,
                    settled_in_batch: row.settled_batch_id,
                })
            },
        )
    }
}
