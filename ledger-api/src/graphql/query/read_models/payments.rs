//! The payments list and the order view, from the payments and orders read models. A
//! payment's captures, refunds and disputes are loaded by DataLoaders shared by every node of
//! one answer (`loaders::payments`), so a page costs one query per relation, not one per
//! payment.

use std::sync::Arc;

use async_graphql::{ComplexObject, Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use ledger_core::ids::Environment as CoreEnvironment;
use ledger_core::payment::OrderPaymentStatus as CoreOrderPaymentStatus;
use ledger_projections::read_models::{orders, payments};
use sqlx::PgPool;
use uuid::Uuid;

use super::convert;
use super::page::{decode_cursor, encode_cursor, page_of, PageInfo};
use crate::error::{ApiError, ApiResult, IntoGraphql};
use crate::graphql::loaders::payments::PaymentLoaders;
use crate::graphql::scalars::{DecimalText, Position};
use crate::graphql::types::{
    same_variants, Capture, CaptureMode, Dispute, Environment, PaymentStatus, Refund,
};

/// Which payments to list; every field narrows the list, omitted ones do not.
#[derive(InputObject, Clone, Debug, Default)]
pub struct PaymentFilter {
    pub merchant_id: Option<String>,
    pub order_id: Option<String>,
    pub status: Option<PaymentStatus>,
    /// Created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before this time.
    pub created_before: Option<DateTime<Utc>>,
}

impl From<PaymentFilter> for payments::PaymentFilter {
    fn from(filter: PaymentFilter) -> Self {
        payments::PaymentFilter {
            merchant_id: filter.merchant_id,
            order_id: filter.order_id,
            status: filter.status.map(Into::into),
            created_from: filter.created_from,
            created_before: filter.created_before,
        }
    }
}

/// A payment as the payments read model holds it: every derived amount, without its event
/// history (ask `payment(id)` for that). May trail the log by the projection lag.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct PaymentSummary {
    pub id: Uuid,
    pub order_id: String,
    pub merchant_id: String,
    pub environment: Environment,
    pub status: PaymentStatus,
    pub currency: String,
    pub amount: DecimalText,
    pub authorized_amount: DecimalText,
    pub captured_amount: DecimalText,
    pub capturable_amount: DecimalText,
    pub refunded_amount: DecimalText,
    pub refund_pending_amount: DecimalText,
    pub disputed_amount: DecimalText,
    pub refundable_amount: DecimalText,
    pub capture_mode: CaptureMode,
    pub payment_method: Option<String>,
    pub authorization_code: Option<String>,
    pub decline_code: Option<String>,
    pub decline_category: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: Position,
    /// The log position of the payment's last event.
    pub last_position: Position,
    #[graphql(skip)]
    loaders: Arc<PaymentLoaders>,
}

#[ComplexObject]
impl PaymentSummary {
    async fn captures(&self) -> async_graphql::Result<Vec<Capture>> {
        self.loaders.captures(self.id).await.graphql()
    }

    async fn refunds(&self) -> async_graphql::Result<Vec<Refund>> {
        self.loaders.refunds(self.id).await.graphql()
    }

    async fn disputes(&self) -> async_graphql::Result<Vec<Dispute>> {
        self.loaders.disputes(self.id).await.graphql()
    }
}

impl PaymentSummary {
    fn new(row: payments::PaymentRow, loaders: &Arc<PaymentLoaders>) -> ApiResult<Self> {
        let currency = row.currency.as_str();
        Ok(PaymentSummary {
            id: row.payment_id,
            environment: row.environment.into(),
            status: row.status.into(),
            amount: convert::money(row.requested_amount, currency),
            authorized_amount: convert::money(row.authorized_amount, currency),
            captured_amount: convert::money(row.captured_amount, currency),
            capturable_amount: convert::money(row.capturable_amount, currency),
            refunded_amount: convert::money(row.refunded_amount, currency),
            refund_pending_amount: convert::money(row.refund_pending_amount, currency),
            disputed_amount: convert::money(row.disputed_amount, currency),
            refundable_amount: convert::money(row.refundable_amount, currency),
            capture_mode: row.capture_mode.into(),
            version: convert::position(row.version)?,
            last_position: convert::position(row.last_position)?,
            currency: row.currency,
            order_id: row.order_id,
            merchant_id: row.merchant_id,
            payment_method: row.payment_method,
            authorization_code: row.authorization_code,
            decline_code: row.decline_code,
            decline_category: row
                .decline_category
                .map(|category| category.as_str().to_owned()),
            created_at: row.created_at,
            updated_at: row.updated_at,
            loaders: Arc::clone(loaders),
        })
    }
}

#[derive(SimpleObject, Clone)]
pub struct PaymentEdge {
    pub cursor: String,
    pub node: PaymentSummary,
}

#[derive(SimpleObject, Clone)]
pub struct PaymentConnection {
    pub edges: Vec<PaymentEdge>,
    pub page_info: PageInfo,
}

/// The payments cursor: the sort key `(created_at, payment_id)`.
type PaymentCursor = (DateTime<Utc>, Uuid);

pub async fn list(
    pool: &PgPool,
    environment: CoreEnvironment,
    filter: PaymentFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<PaymentConnection> {
    let after = decode_cursor::<PaymentCursor>(after)?;
    let rows = payments::list_payments(pool, environment, &filter.into(), after, size + 1).await?;
    let loaders = PaymentLoaders::new(pool);
    let nodes = rows
        .into_iter()
        .map(|row| PaymentSummary::new(row, &loaders))
        .collect::<ApiResult<Vec<_>>>()?;
    let (edges, page_info) = page_of(
        nodes,
        size,
        |node| encode_cursor::<PaymentCursor>((node.created_at, node.id)),
        |cursor, node| PaymentEdge { cursor, node },
    );
    Ok(PaymentConnection { edges, page_info })
}

/// The payment status of an order, derived from all of its payments.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum OrderPaymentStatus {
    /// No payment has been authorized or captured.
    Unpaid,
    /// Money is held for the order but nothing is captured.
    Authorized,
    Paid,
    PartiallyRefunded,
    Refunded,
    /// A payment has an open or lost dispute.
    Disputed,
}

same_variants!(
    CoreOrderPaymentStatus,
    OrderPaymentStatus {
        Unpaid,
        Authorized,
        Paid,
        PartiallyRefunded,
        Refunded,
        Disputed,
    }
);

/// An order: a merchant's order id and every payment made for it.
#[derive(SimpleObject, Clone)]
pub struct Order {
    pub id: String,
    pub merchant_id: String,
    pub payment_status: OrderPaymentStatus,
    pub payment_count: i32,
    pub updated_at: DateTime<Utc>,
    /// Oldest first.
    pub payments: Vec<PaymentSummary>,
}

/// The order of that id in the caller's environment. Order ids are the merchants' own, so
/// two merchants may share one: then `merchant_id` must say which.
pub async fn order(
    pool: &PgPool,
    environment: CoreEnvironment,
    order_id: &str,
    merchant_id: Option<&str>,
) -> ApiResult<Option<Order>> {
    let mut found = orders::order(pool, environment, order_id).await?;
    if let Some(merchant_id) = merchant_id {
        found.retain(|(order, _)| order.merchant_id == merchant_id);
    }
    if found.len() > 1 {
        return Err(ApiError::validation(
            "merchantId",
            "several merchants use this order id: pass merchantId to choose one",
        ));
    }
    let Some((row, payment_ids)) = found.pop() else {
        return Ok(None);
    };
    let loaders = PaymentLoaders::new(pool);
    let mut payments = payments::payments_by_id(pool, environment, &payment_ids)
        .await?
        .into_iter()
        .map(|payment| PaymentSummary::new(payment, &loaders))
        .collect::<ApiResult<Vec<_>>>()?;
    payments.sort_by_key(|payment| (payment.created_at, payment.id));
    Ok(Some(Order {
        payment_status: row.payment_status.into(),
        id: row.order_id,
        merchant_id: row.merchant_id,
        payment_count: row.payment_count,
        updated_at: row.updated_at,
        payments,
    }))
}
