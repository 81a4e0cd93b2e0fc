//! The disputes list, soonest evidence deadline first, from the disputes read model.
//! The projections' own list pages by offset, which skips or repeats rows while disputes are
//! opened; this module pages by keyset instead, with its own query.

use async_graphql::{InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use ledger_core::ids::Environment as CoreEnvironment;
use ledger_projections::read_models::disputes::DisputeRow;
use sqlx::PgPool;
use uuid::Uuid;

use super::convert;
use super::page::{decode_cursor, encode_cursor, page_of, PageInfo};
use crate::error::{ApiError, ApiResult};
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
            status: convert::dispute_status(&row.status)?,
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

/// The sort key `(evidence_due_by, payment_id, dispute_id)`; disputes without a deadline
/// sort last.
type DisputeCursor = (Option<DateTime<Utc>>, Uuid, String);

pub async fn list(
    pool: &PgPool,
    environment: CoreEnvironment,
    filter: DisputeFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<DisputeConnection> {
    let after = decode_cursor::<DisputeCursor>(after)?;
    let (after_due, after_payment, after_dispute) = match after {
        Some((due, payment, dispute)) => (due, Some(payment), Some(dispute)),
        None => (None, None, None),
    };
    let limit = i64::try_from(size + 1).unwrap_or(i64::MAX);
    // Rows after the cursor in the order `evidence_due_by NULLS LAST, payment_id,
    // dispute_id`: with a dated cursor, later dates, then equal dates by id, then every
    // undated row; with an undated cursor, only undated rows by id.
    let rows = sqlx::query_as!(
        DisputeRow,
        r#"SELECT * FROM projection_disputes
           WHERE environment = $1
             AND ($2::text IS NULL OR merchant_id = $2)
             AND ($3::text IS NULL OR status = $3)
             AND ($4::timestamptz IS NULL OR evidence_due_by < $4)
             AND ($6::uuid IS NULL
                  OR ($5::timestamptz IS NULL AND evidence_due_by IS NULL
                      AND (payment_id, dispute_id) > ($6, $7::text))
                  OR ($5::timestamptz IS NOT NULL
                      AND (evidence_due_by IS NULL
                           OR (evidence_due_by, payment_id, dispute_id) > ($5, $6, $7::text))))
           ORDER BY evidence_due_by NULLS LAST, payment_id, dispute_id
           LIMIT $8"#,
        environment.as_str(),
        filter.merchant_id,
        filter
            .status
            .map(|status| convert::dispute_status_name(status).to_owned()),
        filter.due_before,
        after_due,
        after_payment,
        after_dispute,
        limit,
    )
    .fetch_all(pool)
    .await
    .map_err(ApiError::from)?;
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
