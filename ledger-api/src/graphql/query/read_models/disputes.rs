//! The disputes list, soonest evidence deadline first, from the disputes read model, a
//! keyset page at a time.

use async_graphql::{InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use ledger_core::ids::Environment as CoreEnvironment;
use ledger_projections::read_models::disputes::{self as read_model, DisputeCursor, DisputeRow};
use sqlx::PgPool;
use uuid::Uuid;

use super::convert;
use super::page::{decode_cursor, encode_cursor, page_of, PageInfo};
use crate::error::ApiResult;
use crate::graphql::scalars::DecimalText;
use crate::graphql::types::DisputeStatus;

#[derive(InputObject, Clone, Debug, Default)]
pub struct DisputeFilter {
    pub merchant_id: Option<String>,
    pub status: Option<DisputeStatus>,
    /// Only disputes whose evidence is due before this time.
    pub due_before: Option<DateTime<Utc>>,
}

/// A dispute with the payment it is about.
#[derive(SimpleObject, Clone, Debug)]
pub struct DisputeSummary {
    pub payment_id: Uuid,
    pub dispute_id: String,
    pub merchant_id: String,
    pub currency: String,
    pub amount: DecimalText,
    pub fee: DecimalText,
    pub reason: String,
    pub status: DisputeStatus,
    pub evidence_due_by: Option<DateTime<Utc>>,
    pub evidence_count: i32,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub settled_in_batch: Option<Uuid>,
}

impl DisputeSummary {
    fn new(row: DisputeRow) -> ApiResult<Self> {
        Ok(DisputeSummary {
            amount: convert::money(row.amount, &row.currency),
            fee: convert::money(row.fee, &row.currency),
            status: row.status.into(),
            payment_id: row.payment_id,
            dispute_id: row.dispute_id,
            merchant_id: row.merchant_id,
            currency: row.currency,
            reason: row.reason,
            evidence_due_by: row.evidence_due_by,
            evidence_count: row.evidence_count,
            opened_at: row.opened_at,
            resolved_at: row.resolved_at,
            settled_in_batch: row.settled_batch_id,
        })
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct DisputeEdge {
    pub cursor: String,
    pub node: DisputeSummary,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct DisputeConnection {
    pub edges: Vec<DisputeEdge>,
    pub page_info: PageInfo,
}

impl From<DisputeFilter> for read_model::DisputeFilter {
    fn from(filter: DisputeFilter) -> Self {
        read_model::DisputeFilter {
            merchant_id: filter.merchant_id,
            status: filter.status.map(Into::into),
            due_before: filter.due_before,
        }
    }
}

pub async fn list(
    pool: &PgPool,
    environment: CoreEnvironment,
    filter: DisputeFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<DisputeConnection> {
    let after = decode_cursor::<DisputeCursor>(after)?;
    let rows =
        read_model::list_disputes(pool, environment, &filter.into(), after, size + 1).await?;
    let nodes = rows
        .into_iter()
        .map(DisputeSummary::new)
        .collect::<ApiResult<Vec<_>>>()?;
    let (edges, page_info) = page_of(
        nodes,
        size,
        |node| {
            encode_cursor::<DisputeCursor>((
                node.evidence_due_by,
                node.payment_id,
                node.dispute_id.clone(),
            ))
        },
        |cursor, node| DisputeEdge { cursor, node },
    );
    Ok(DisputeConnection { edges, page_info })
}
