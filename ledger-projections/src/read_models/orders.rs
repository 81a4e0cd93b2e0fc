//! The orders read model: an order's payment status, derived from all of its payments by the
//! core's rule ([`ledger_core::payment::order_status`]). It
//! keeps what it needs of each payment (`projection_order_payments`) so that it depends on no
//! other read model and can be rebuilt alone.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use ledger_core::payment::{order_status, OrderPayment, OrderPaymentStatus};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::read_rows;
use crate::batch::Batch;
use crate::error::{parse_stored, to_stored, ProjectionError};
use crate::stream_states::DomainEvent;

type OrderKey = (String, String, String);

pub(crate) async fn apply(
    connection: &mut PgConnection,
    batch: &Batch,
    after: u64,
) -> Result<(), ProjectionError> {
    let mut touched_orders: BTreeMap<OrderKey, (DateTime<Utc>, u64)> = BTreeMap::new();
    let mut payment_ids = Vec::new();
    let mut environments = Vec::new();
    let mut merchant_ids = Vec::new();
    let mut order_ids = Vec::new();
    let mut statuses = Vec::new();
    let mut disputed = Vec::new();
    let mut seen = BTreeSet::new();
    for event in batch
        .events_after(after)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        if !matches!(event.event, DomainEvent::Payment(_)) || !seen.insert(event.stream_id) {
            continue;
        }
        let Some(payment) = batch
            .payments
            .get(&event.stream_id)
            .and_then(|state| state.payment.as_ref())
        else {
            continue;
        };
        let key = (
            payment.environment.as_str().to_owned(),
            payment.merchant_id.as_str().to_owned(),
            payment.order_id.as_str().to_owned(),
        );
        // Walking backwards, the first event seen of an order is its latest.
        touched_orders
            .entry(key)
            .or_insert((event.occurred_at, event.position));
        payment_ids.push(event.stream_id);
        environments.push(payment.environment.as_str().to_owned());
        merchant_ids.push(payment.merchant_id.as_str().to_owned());
        order_ids.push(payment.order_id.as_str().to_owned());
        statuses.push(payment.status().as_str().to_owned());
        disputed.push(payment.disputed_amount().is_positive());
    }
    if payment_ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"INSERT INTO projection_order_payments (payment_id, environment, merchant_id, order_id,
               payment_status, has_disputed_funds)
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
               $6::bool[])
           ON CONFLICT (environment, merchant_id, order_id, payment_id) DO UPDATE SET
               payment_status = EXCLUDED.payment_status,
               has_disputed_funds = EXCLUDED.has_disputed_funds"#,
        &payment_ids,
        &environments,
        &merchant_ids,
        &order_ids,
        &statuses,
        &disputed,
    )
    .execute(&mut *connection)
    .await?;
    write_orders(connection, &touched_orders).await
}

async fn write_orders(
    connection: &mut PgConnection,
    touched: &BTreeMap<OrderKey, (DateTime<Utc>, u64)>,
) -> Result<(), ProjectionError> {
    let environments: Vec<String> = touched.keys().map(|key| key.0.clone()).collect();
    let merchant_ids: Vec<String> = touched.keys().map(|key| key.1.clone()).collect();
    let order_ids: Vec<String> = touched.keys().map(|key| key.2.clone()).collect();
    let rows = sqlx::query!(
        r#"SELECT p.environment, p.merchant_id, p.order_id, p.payment_status, p.has_disputed_funds
           FROM projection_order_payments p
           JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(environment, merchant_id, order_id)
             ON p.environment = k.environment AND p.merchant_id = k.merchant_id
            AND p.order_id = k.order_id"#,
        &environments,
        &merchant_ids,
        &order_ids,
    )
    .fetch_all(&mut *connection)
    .await?;
    let mut payments: BTreeMap<OrderKey, Vec<OrderPayment>> = BTreeMap::new();
    for row in rows {
        payments
            .entry((row.environment, row.merchant_id, row.order_id))
            .or_default()
            .push(OrderPayment {
                payment_status: parse_stored(&row.payment_status)?,
                has_disputed_funds: row.has_disputed_funds,
            });
    }
    let mut statuses = Vec::with_capacity(touched.len());
    let mut counts = Vec::with_capacity(touched.len());
    let mut updated_at = Vec::with_capacity(touched.len());
    let mut positions = Vec::with_capacity(touched.len());
    for (key, (occurred_at, position)) in touched {
        let of_order = payments.get(key).map(Vec::as_slice).unwrap_or_default();
        statuses.push(order_status(of_order).as_str().to_owned());
        counts.push(i32::try_from(of_order.len()).unwrap_or(i32::MAX));
        updated_at.push(*occurred_at);
        positions.push(to_stored(*position)?);
    }
    sqlx::query!(
        r#"INSERT INTO projection_orders (environment, merchant_id, order_id, payment_status,
               payment_count, updated_at, last_position)
           SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int[],
               $6::timestamptz[], $7::bigint[])
           ON CONFLICT (environment, merchant_id, order_id) DO UPDATE SET
               payment_status = EXCLUDED.payment_status,
               payment_count = EXCLUDED.payment_count,
               updated_at = EXCLUDED.updated_at,
               last_position = EXCLUDED.last_position"#,
        &environments,
        &merchant_ids,
        &order_ids,
        &statuses,
        &counts,
        &updated_at,
        &positions,
    )
    .execute(connection)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub environment: Environment,
    pub merchant_id: String,
    pub order_id: String,
    pub payment_status: OrderPaymentStatus,
    pub payment_count: i32,
    pub updated_at: DateTime<Utc>,
    pub last_position: i64,
}

struct StoredOrder {
    environment: String,
    merchant_id: String,
    order_id: String,
    payment_status: String,
    payment_count: i32,
    updated_at: DateTime<Utc>,
    last_position: i64,
}

impl TryFrom<StoredOrder> for OrderRow {
    type Error = ProjectionError;

    fn try_from(row: StoredOrder) -> Result<Self, ProjectionError> {
        Ok(OrderRow {
            environment: parse_stored(&row.environment)?,
            merchant_id: row.merchant_id,
            order_id: row.order_id,
            payment_status: parse_stored(&row.payment_status)?,
            payment_count: row.payment_count,
            updated_at: row.updated_at,
            last_position: row.last_position,
        })
    }
}

/// The most payments an order's answer lists, oldest first; `payment_count` counts them all.
pub const MAX_ORDER_PAYMENTS: i64 = 100;

/// The orders of that id in an environment (one per merchant using the id), with the ids of
/// their first [`MAX_ORDER_PAYMENTS`] payments.
#[tracing::instrument(skip(pool))]
pub async fn order(
    pool: &PgPool,
    environment: Environment,
    order_id: &str,
) -> Result<Vec<(OrderRow, Vec<Uuid>)>, ProjectionError> {
    let orders: Vec<OrderRow> = read_rows(sqlx::query_as!(
        StoredOrder,
        "SELECT * FROM projection_orders WHERE environment = $1 AND order_id = $2 ORDER BY merchant_id",
        environment.as_str(),
        order_id,
    )
    .fetch_all(pool)
    .await?)?;
    let mut result = Vec::with_capacity(orders.len());
    for order in orders {
        // Bounded: a client may put any number of payments on one order, and one answer
        // must not carry them all. The order's status covers every payment regardless.
        let payment_ids = sqlx::query_scalar!(
            r#"SELECT op.payment_id FROM projection_order_payments op
               LEFT JOIN projection_payments p ON p.payment_id = op.payment_id
               WHERE op.environment = $1 AND op.merchant_id = $2 AND op.order_id = $3
               ORDER BY p.created_at NULLS LAST, op.payment_id
               LIMIT $4"#,
            order.environment.as_str(),
            order.merchant_id,
            order.order_id,
            MAX_ORDER_PAYMENTS,
        )
        .fetch_all(pool)
        .await?;
        result.push((order, payment_ids));
    }
    Ok(result)
}
