//! Settlement batches (newest first, with their payouts, a keyset page at a time) and
//! settlement exceptions, from the settlement read model; payouts come from one DataLoader
//! per answer, and so do the exceptions' latest reconciliation verdicts.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, InputObject, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use ledger_core::ids::Environment as CoreEnvironment;
use ledger_projections::read_models::settlement::{self, BatchCursor, SettlementBatchRow};
use sqlx::PgPool;
use uuid::Uuid;

use super::convert;
use super::page::{decode_cursor, encode_cursor, page_of, PageInfo};
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, IntoGraphql};
use crate::graphql::context::caller;
use crate::graphql::loaders::reconciliation::{VerdictKey, VerdictLoader};
use crate::graphql::loaders::settlement::PayoutsLoader;
use crate::graphql::scalars::{DecimalText, Position};
use crate::graphql::types::reconciliation::ReconciliationVerdict;
use crate::graphql::types::PayoutStatus;

/// The most exceptions one answer lists; finance works through them oldest first.
pub const MAX_EXCEPTIONS: i64 = 500;

#[derive(InputObject, Clone, Debug, Default)]
pub struct SettlementBatchFilter {
    pub merchant_id: Option<String>,
    pub currency: Option<String>,
    /// The status of the batch's latest payout.
    pub payout_status: Option<PayoutStatus>,
    pub recorded_from: Option<DateTime<Utc>>,
    pub recorded_before: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PayoutSummary {
    pub payout_id: String,
    pub amount: DecimalText,
    pub status: PayoutStatus,
    pub expected_arrival_date: Option<NaiveDate>,
    pub failure_reason: Option<String>,
    pub initiated_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct SettlementBatchSummary {
    pub id: Uuid,
    pub merchant_id: String,
    pub currency: String,
    pub gross: DecimalText,
    pub fees: DecimalText,
    pub reserve: DecimalText,
    pub net: DecimalText,
    pub item_count: i32,
    pub payout_status: Option<PayoutStatus>,
    pub recorded_at: DateTime<Utc>,
    pub version: Position,
    #[graphql(skip)]
    payouts: Arc<DataLoader<PayoutsLoader>>,
}

#[ComplexObject]
impl SettlementBatchSummary {
    /// Every payout attempt of the batch, oldest first.
    async fn payouts(&self) -> async_graphql::Result<Vec<PayoutSummary>> {
        batch_payouts(self).await.graphql()
    }
}

async fn batch_payouts(batch: &SettlementBatchSummary) -> ApiResult<Vec<PayoutSummary>> {
    Ok(batch.payouts.load_one(batch.id).await?.unwrap_or_default())
}

impl SettlementBatchSummary {
    fn new(row: SettlementBatchRow, payouts: &Arc<DataLoader<PayoutsLoader>>) -> ApiResult<Self> {
        let currency = row.currency.as_str();
        Ok(SettlementBatchSummary {
            id: row.batch_id,
            gross: convert::money(row.gross, currency),
            fees: convert::money(row.fees, currency),
            reserve: convert::money(row.reserve, currency),
            net: convert::money(row.net, currency),
            payout_status: row.payout_status.map(Into::into),
            version: convert::position(row.version)?,
            merchant_id: row.merchant_id,
            currency: row.currency,
            item_count: row.item_count,
            recorded_at: row.recorded_at,
            payouts: Arc::clone(payouts),
        })
    }
}

#[derive(SimpleObject, Clone)]
pub struct SettlementBatchEdge {
    pub cursor: String,
    pub node: SettlementBatchSummary,
}

#[derive(SimpleObject, Clone)]
pub struct SettlementBatchConnection {
    pub edges: Vec<SettlementBatchEdge>,
    pub page_info: PageInfo,
}

impl From<SettlementBatchFilter> for settlement::BatchFilter {
    fn from(filter: SettlementBatchFilter) -> Self {
        settlement::BatchFilter {
            merchant_id: filter.merchant_id,
            currency: filter.currency.map(|code| code.to_ascii_uppercase()),
            payout_status: filter.payout_status.map(Into::into),
            recorded_from: filter.recorded_from,
            recorded_before: filter.recorded_before,
        }
    }
}

pub async fn list(
    pool: &PgPool,
    environment: CoreEnvironment,
    filter: SettlementBatchFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<SettlementBatchConnection> {
    let after = decode_cursor::<BatchCursor>(after)?;
    let rows = settlement::list_batches(pool, environment, &filter.into(), after, size + 1).await?;
    let loader = PayoutsLoader::new(pool);
    let nodes = rows
        .into_iter()
        .map(|row| SettlementBatchSummary::new(row, &loader))
        .collect::<ApiResult<Vec<_>>>()?;
    let (edges, page_info) = page_of(
        nodes,
        size,
        |node| encode_cursor::<BatchCursor>((node.recorded_at, node.id)),
        |cursor, node| SettlementBatchEdge { cursor, node },
    );
    Ok(SettlementBatchConnection { edges, page_info })
}

/// Something in settlement that finance should look at.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct SettlementException {
    /// `RESERVE_WITHHELD`, `PAYOUT_FAILED`, `PAYOUT_LATE` or `CAPTURE_NOT_SETTLED`.
    pub kind: String,
    pub merchant_id: String,
    pub currency: String,
    /// The batch, or the payment for an unsettled capture.
    pub subject_id: Uuid,
    /// The payout or capture id, when the exception is about one.
    pub item_id: Option<String>,
    pub amount: DecimalText,
    pub since: DateTime<Utc>,
    #[graphql(skip)]
    verdicts: Arc<DataLoader<VerdictLoader>>,
}

#[ComplexObject]
impl SettlementException {
    /// The latest reconciliation verdict on the payout (for a failed or late payout) or on
    /// the batch (for a reserve withheld); null when no run has judged it, and for an
    /// unsettled capture, which has no batch yet.
    async fn reconciliation(
        &self,
        context: &Context<'_>,
    ) -> async_graphql::Result<Option<ReconciliationVerdict>> {
        exception_verdict(context, self).await.graphql()
    }
}

/// The verdict `SettlementException.reconciliation` answers, if the exception has one.
async fn exception_verdict(
    context: &Context<'_>,
    exception: &SettlementException,
) -> ApiResult<Option<ReconciliationVerdict>> {
    caller(context, Permission::ReadReconciliations)?;
    let key = match (exception.kind.as_str(), &exception.item_id) {
        ("PAYOUT_FAILED" | "PAYOUT_LATE", Some(payout_id)) => VerdictKey::Payout(payout_id.clone()),
        ("RESERVE_WITHHELD", _) => VerdictKey::Batch(exception.subject_id),
        _ => return Ok(None),
    };
    exception.verdicts.load_one(key).await
}

pub async fn exceptions(
    pool: &PgPool,
    environment: CoreEnvironment,
    merchant_id: Option<&str>,
    unsettled_after_days: i32,
) -> ApiResult<Vec<SettlementException>> {
    if !(0..=365).contains(&unsettled_after_days) {
        return Err(ApiError::validation(
            "unsettledAfterDays",
            "unsettledAfterDays must be between 0 and 365",
        ));
    }
    // Filtered and cut in the query: the answer's work is bounded by its limit, not by how
    // many exceptions every merchant of the environment has.
    let rows = settlement::settlement_exceptions(
        pool,
        environment,
        Utc::now(),
        unsettled_after_days,
        merchant_id,
        MAX_EXCEPTIONS,
    )
    .await?;
    let verdicts = VerdictLoader::new(pool, environment);
    Ok(rows
        .into_iter()
        .map(|row| SettlementException {
            amount: convert::money(row.amount, &row.currency),
            kind: row.kind,
            merchant_id: row.merchant_id,
            currency: row.currency,
            subject_id: row.subject_id,
            item_id: row.item_id,
            since: row.since,
            verdicts: Arc::clone(&verdicts),
        })
        .collect())
}
