//! The payments read model: one row per payment with every amount the core derives, and child
//! rows for its captures and refunds (disputes are the disputes read model). Each touched
//! payment's row is upserted whole from its folded state; the times of captures and refunds
//! (which the state does not keep) come from the events that created them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use ledger_core::payment::state::{Authorization, RefundStatus};
use ledger_core::payment::{CaptureMode, DeclineCategory, Payment, PaymentEvent, PaymentStatus};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::read_rows;
use crate::batch::{Batch, BatchEvent};
use crate::error::{parse_stored, to_stored, ProjectionError};
use crate::stream_states::DomainEvent;

/// When something happened to a child (a capture or refund) of a payment, by its id.
type ChildTimes = HashMap<(Uuid, String), DateTime<Utc>>;

#[derive(Default)]
struct Touched {
    first_occurred_at: Option<DateTime<Utc>>,
    last_occurred_at: Option<DateTime<Utc>>,
    last_position: u64,
    captures: bool,
    refunds: bool,
}

#[derive(Default)]
struct Times {
    captured: ChildTimes,
    capture_settled: ChildTimes,
    refund_requested: ChildTimes,
    refund_resolved: ChildTimes,
    refund_settled: ChildTimes,
}

fn note(times: &mut ChildTimes, event: &BatchEvent, id: &str) {
    times.insert((event.stream_id, id.to_owned()), event.occurred_at);
}

pub(crate) async fn apply(
    connection: &mut PgConnection,
    batch: &Batch,
    after: u64,
) -> Result<(), ProjectionError> {
    let mut touched: HashMap<Uuid, Touched> = HashMap::new();
    let mut times = Times::default();
    for event in batch.events_after(after) {
        let DomainEvent::Payment(payment_event) = &event.event else {
            continue;
        };
        let entry = touched.entry(event.stream_id).or_default();
        entry.first_occurred_at.get_or_insert(event.occurred_at);
        entry.last_occurred_at = Some(event.occurred_at);
        entry.last_position = event.position;
        match payment_event {
            PaymentEvent::PaymentCaptured(captured) => {
                entry.captures = true;
                note(&mut times.captured, event, captured.capture_id.as_str());
            }
            PaymentEvent::CaptureSettled(settled) => {
                entry.captures = true;
                note(
                    &mut times.capture_settled,
                    event,
                    settled.capture_id.as_str(),
                );
            }
            PaymentEvent::RefundRequested(requested) => {
                entry.refunds = true;
                note(
                    &mut times.refund_requested,
                    event,
                    requested.refund_id.as_str(),
                );
            }
            PaymentEvent::RefundSucceeded(succeeded) => {
                entry.refunds = true;
                note(
                    &mut times.refund_resolved,
                    event,
                    succeeded.refund_id.as_str(),
                );
            }
            PaymentEvent::RefundFailed(failed) => {
                entry.refunds = true;
                note(&mut times.refund_resolved, event, failed.refund_id.as_str());
            }
            PaymentEvent::RefundSettled(settled) => {
                entry.refunds = true;
                note(&mut times.refund_settled, event, settled.refund_id.as_str());
            }
            _ => {}
        }
    }
    let mut rows = PaymentColumns::default();
    let mut captures = CaptureColumns::default();
    let mut refunds = RefundColumns::default();
    for (payment_id, touch) in &touched {
        let Some(state) = batch.payments.get(payment_id) else {
            continue;
        };
        let Some(payment) = &state.payment else {
            continue;
        };
        let (Some(first), Some(last)) = (touch.first_occurred_at, touch.last_occurred_at) else {
            continue;
        };
        rows.push(
            *payment_id,
            payment,
            first,
            last,
            state.version,
            touch.last_position,
        )?;
        if touch.captures {
            captures.push(*payment_id, payment, &times, last);
        }
        if touch.refunds {
            refunds.push(*payment_id, payment, &times, last);
        }
    }
    rows.write(connection).await?;
    captures.write(connection).await?;
    refunds.write(connection).await
}

#[derive(Default)]
struct PaymentColumns {
    payment_ids: Vec<Uuid>,
    environments: Vec<String>,
    merchant_ids: Vec<String>,
    order_ids: Vec<String>,
    statuses: Vec<String>,
    currencies: Vec<String>,
    requested: Vec<Decimal>,
    authorized: Vec<Decimal>,
    captured: Vec<Decimal>,
    refunded: Vec<Decimal>,
    refund_pending: Vec<Decimal>,
    disputed: Vec<Decimal>,
    refundable: Vec<Decimal>,
    capturable: Vec<Decimal>,
    capture_modes: Vec<String>,
    payment_methods: Vec<Option<String>>,
    authorization_codes: Vec<Option<String>>,
    gateway_references: Vec<Option<String>>,
    expires_at: Vec<Option<DateTime<Utc>>>,
    decline_codes: Vec<Option<String>>,
    decline_categories: Vec<Option<String>>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    versions: Vec<i64>,
    last_positions: Vec<i64>,
}

impl PaymentColumns {
    fn push(
        &mut self,
        payment_id: Uuid,
        payment: &Payment,
        first_occurred_at: DateTime<Utc>,
        last_occurred_at: DateTime<Utc>,
        version: u64,
        last_position: u64,
    ) -> Result<(), ProjectionError> {
        self.payment_ids.push(payment_id);
        self.environments
            .push(payment.environment.as_str().to_owned());
        self.merchant_ids
            .push(payment.merchant_id.as_str().to_owned());
        self.order_ids.push(payment.order_id.as_str().to_owned());
        self.statuses.push(payment.status().as_str().to_owned());
        self.currencies.push(payment.currency().code().to_owned());
        self.requested.push(payment.requested_amount.amount());
        self.authorized.push(payment.authorized_amount().amount());
        self.captured.push(payment.captured_amount().amount());
        self.refunded.push(payment.refunded_amount().amount());
        self.refund_pending
            .push(payment.refund_pending_amount().amount());
        self.disputed.push(payment.disputed_amount().amount());
        self.refundable.push(payment.refundable_amount().amount());
        self.capturable.push(payment.capturable_amount().amount());
        self.capture_modes
            .push(payment.capture_mode.as_str().to_owned());
        self.payment_methods.push(
            payment
                .payment_method
                .as_ref()
                .map(|text| text.as_str().to_owned()),
        );
        let (code, reference, expires, decline_code, category) = match &payment.authorization {
            Authorization::Approved {
                authorization_code,
                gateway_reference,
                expires_at,
                ..
            } => (
                authorization_code
                    .as_ref()
                    .map(|text| text.as_str().to_owned()),
                gateway_reference
                    .as_ref()
                    .map(|text| text.as_str().to_owned()),
                *expires_at,
                None,
                None,
            ),
            Authorization::Declined {
                decline_code,
                category,
                ..
            } => (
                None,
                None,
                None,
                decline_code.as_ref().map(|code| code.as_str().to_owned()),
                Some(category.as_str().to_owned()),
            ),
            Authorization::Pending => (None, None, None, None, None),
        };
        self.authorization_codes.push(code);
        self.gateway_references.push(reference);
        self.expires_at.push(expires);
        self.decline_codes.push(decline_code);
        self.decline_categories.push(category);
        self.created_at.push(first_occurred_at);
        self.updated_at.push(last_occurred_at);
        self.versions.push(to_stored(version)?);
        self.last_positions.push(to_stored(last_position)?);
        Ok(())
    }

    /// `created_at` is only written on insert: a later batch does not see the first event.
    async fn write(self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.payment_ids.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            r#"INSERT INTO projection_payments (payment_id, environment, merchant_id, order_id,
                   status, currency, requested_amount, authorized_amount, captured_amount,
                   refunded_amount, refund_pending_amount, disputed_amount, refundable_amount,
                   capturable_amount, capture_mode, payment_method, authorization_code,
                   gateway_reference, authorization_expires_at, decline_code, decline_category,
                   created_at, updated_at, version, last_position)
               SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                   $6::text[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[],
                   $11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[], $15::text[],
                   $16::text[], $17::text[], $18::text[], $19::timestamptz[], $20::text[],
                   $21::text[], $22::timestamptz[], $23::timestamptz[], $24::bigint[],
                   $25::bigint[])
               ON CONFLICT (payment_id) DO UPDATE SET
                   status = EXCLUDED.status,
                   authorized_amount = EXCLUDED.authorized_amount,
                   captured_amount = EXCLUDED.captured_amount,
                   refunded_amount = EXCLUDED.refunded_amount,
                   refund_pending_amount = EXCLUDED.refund_pending_amount,
                   disputed_amount = EXCLUDED.disputed_amount,
                   refundable_amount = EXCLUDED.refundable_amount,
                   capturable_amount = EXCLUDED.capturable_amount,
                   authorization_code = EXCLUDED.authorization_code,
                   gateway_reference = EXCLUDED.gateway_reference,
                   authorization_expires_at = EXCLUDED.authorization_expires_at,
                   decline_code = EXCLUDED.decline_code,
                   decline_category = EXCLUDED.decline_category,
                   updated_at = EXCLUDED.updated_at,
                   version = EXCLUDED.version,
                   last_position = EXCLUDED.last_position"#,
            &self.payment_ids,
            &self.environments,
            &self.merchant_ids,
            &self.order_ids,
            &self.statuses,
            &self.currencies,
            &self.requested,
            &self.authorized,
            &self.captured,
            &self.refunded,
            &self.refund_pending,
            &self.disputed,
            &self.refundable,
            &self.capturable,
            &self.capture_modes,
            &self.payment_methods as &[Option<String>],
            &self.authorization_codes as &[Option<String>],
            &self.gateway_references as &[Option<String>],
            &self.expires_at as &[Option<DateTime<Utc>>],
            &self.decline_codes as &[Option<String>],
            &self.decline_categories as &[Option<String>],
            &self.created_at,
            &self.updated_at,
            &self.versions,
            &self.last_positions,
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct CaptureColumns {
    payment_ids: Vec<Uuid>,
    capture_ids: Vec<String>,
    environments: Vec<String>,
    merchant_ids: Vec<String>,
    currencies: Vec<String>,
    amounts: Vec<Decimal>,
    final_captures: Vec<bool>,
    captured_at: Vec<DateTime<Utc>>,
    settled_batch_ids: Vec<Option<Uuid>>,
    settled_at: Vec<Option<DateTime<Utc>>>,
}

impl CaptureColumns {
    /// `fallback` fills `captured_at` of captures made before this batch; the upsert keeps
    /// their stored time instead.
    fn push(
        &mut self,
        payment_id: Uuid,
        payment: &Payment,
        times: &Times,
        fallback: DateTime<Utc>,
    ) {
        for capture in &payment.captures {
            let key = (payment_id, capture.capture_id.as_str().to_owned());
            self.payment_ids.push(payment_id);
            self.environments
                .push(payment.environment.as_str().to_owned());
            self.merchant_ids
                .push(payment.merchant_id.as_str().to_owned());
            self.currencies.push(payment.currency().code().to_owned());
            self.amounts.push(capture.amount.amount());
            self.final_captures.push(capture.final_capture);
            self.captured_at
                .push(times.captured.get(&key).copied().unwrap_or(fallback));
            self.settled_batch_ids
                .push(capture.settled_in.map(|batch| batch.as_uuid()));
            self.settled_at
                .push(times.capture_settled.get(&key).copied());
            self.capture_ids.push(key.1);
        }
    }

    async fn write(self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.payment_ids.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            r#"INSERT INTO projection_captures (payment_id, capture_id, environment, merchant_id,
                   currency, amount, final_capture, captured_at, settled_batch_id, settled_at)
               SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                   $6::numeric[], $7::bool[], $8::timestamptz[], $9::uuid[], $10::timestamptz[])
               ON CONFLICT (payment_id, capture_id) DO UPDATE SET
                   settled_batch_id = EXCLUDED.settled_batch_id,
                   settled_at = COALESCE(projection_captures.settled_at, EXCLUDED.settled_at)"#,
            &self.payment_ids,
            &self.capture_ids,
            &self.environments,
            &self.merchant_ids,
            &self.currencies,
            &self.amounts,
            &self.final_captures,
            &self.captured_at,
            &self.settled_batch_ids as &[Option<Uuid>],
            &self.settled_at as &[Option<DateTime<Utc>>],
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct RefundColumns {
    payment_ids: Vec<Uuid>,
    refund_ids: Vec<String>,
    currencies: Vec<String>,
    amounts: Vec<Decimal>,
    statuses: Vec<String>,
    reasons: Vec<Option<String>>,
    failure_reasons: Vec<Option<String>>,
    requested_at: Vec<DateTime<Utc>>,
    resolved_at: Vec<Option<DateTime<Utc>>>,
    settled_batch_ids: Vec<Option<Uuid>>,
    settled_at: Vec<Option<DateTime<Utc>>>,
}

impl RefundColumns {
    fn push(
        &mut self,
        payment_id: Uuid,
        payment: &Payment,
        times: &Times,
        fallback: DateTime<Utc>,
    ) {
        for refund in &payment.refunds {
            let key = (payment_id, refund.refund_id.as_str().to_owned());
            self.payment_ids.push(payment_id);
            self.currencies.push(payment.currency().code().to_owned());
            self.amounts.push(refund.amount.amount());
            self.statuses.push(refund.status.as_str().to_owned());
            self.reasons
                .push(refund.reason.as_ref().map(|text| text.as_str().to_owned()));
            self.failure_reasons.push(
                refund
                    .failure_reason
                    .as_ref()
                    .map(|text| text.as_str().to_owned()),
            );
            self.requested_at.push(
                times
                    .refund_requested
                    .get(&key)
                    .copied()
                    .unwrap_or(fallback),
            );
            self.resolved_at
                .push(times.refund_resolved.get(&key).copied());
            self.settled_batch_ids
                .push(refund.settled_in.map(|batch| batch.as_uuid()));
            self.settled_at
                .push(times.refund_settled.get(&key).copied());
            self.refund_ids.push(key.1);
        }
    }

    async fn write(self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.payment_ids.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            r#"INSERT INTO projection_refunds (payment_id, refund_id, currency, amount, status,
                   reason, failure_reason, requested_at, resolved_at, settled_batch_id, settled_at)
               SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::numeric[],
                   $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[],
                   $10::uuid[], $11::timestamptz[])
               ON CONFLICT (payment_id, refund_id) DO UPDATE SET
                   status = EXCLUDED.status,
                   failure_reason = EXCLUDED.failure_reason,
                   resolved_at = COALESCE(projection_refunds.resolved_at, EXCLUDED.resolved_at),
                   settled_batch_id = EXCLUDED.settled_batch_id,
                   settled_at = COALESCE(projection_refunds.settled_at, EXCLUDED.settled_at)"#,
            &self.payment_ids,
            &self.refund_ids,
            &self.currencies,
            &self.amounts,
            &self.statuses,
            &self.reasons as &[Option<String>],
            &self.failure_reasons as &[Option<String>],
            &self.requested_at,
            &self.resolved_at as &[Option<DateTime<Utc>>],
            &self.settled_batch_ids as &[Option<Uuid>],
            &self.settled_at as &[Option<DateTime<Utc>>],
        )
        .execute(connection)
        .await?;
        Ok(())
    }
}

/// A payment as the read model holds it. Amounts are in `currency` at its scale.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub environment: Environment,
    pub merchant_id: String,
    pub order_id: String,
    pub status: PaymentStatus,
    pub currency: String,
    pub requested_amount: Decimal,
    pub authorized_amount: Decimal,
    pub captured_amount: Decimal,
    pub refunded_amount: Decimal,
    pub refund_pending_amount: Decimal,
    pub disputed_amount: Decimal,
    pub refundable_amount: Decimal,
    pub capturable_amount: Decimal,
    pub capture_mode: CaptureMode,
    pub payment_method: Option<String>,
    pub authorization_code: Option<String>,
    pub gateway_reference: Option<String>,
    pub authorization_expires_at: Option<DateTime<Utc>>,
    pub decline_code: Option<String>,
    pub decline_category: Option<DeclineCategory>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub last_position: i64,
}

/// A payment row as stored, its enums still text.
struct StoredPayment {
    payment_id: Uuid,
    environment: String,
    merchant_id: String,
    order_id: String,
    status: String,
    currency: String,
    requested_amount: Decimal,
    authorized_amount: Decimal,
    captured_amount: Decimal,
    refunded_amount: Decimal,
    refund_pending_amount: Decimal,
    disputed_amount: Decimal,
    refundable_amount: Decimal,
    capturable_amount: Decimal,
    capture_mode: String,
    payment_method: Option<String>,
    authorization_code: Option<String>,
    gateway_reference: Option<String>,
    authorization_expires_at: Option<DateTime<Utc>>,
    decline_code: Option<String>,
    decline_category: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    last_position: i64,
}

impl TryFrom<StoredPayment> for PaymentRow {
    type Error = ProjectionError;

    fn try_from(row: StoredPayment) -> Result<Self, ProjectionError> {
        Ok(PaymentRow {
            payment_id: row.payment_id,
            environment: parse_stored(&row.environment)?,
            merchant_id: row.merchant_id,
            order_id: row.order_id,
            status: parse_stored(&row.status)?,
            currency: row.currency,
            requested_amount: row.requested_amount,
            authorized_amount: row.authorized_amount,
            captured_amount: row.captured_amount,
            refunded_amount: row.refunded_amount,
            refund_pending_amount: row.refund_pending_amount,
            disputed_amount: row.disputed_amount,
            refundable_amount: row.refundable_amount,
            capturable_amount: row.capturable_amount,
            capture_mode: parse_stored(&row.capture_mode)?,
            payment_method: row.payment_method,
            authorization_code: row.authorization_code,
            gateway_reference: row.gateway_reference,
            authorization_expires_at: row.authorization_expires_at,
            decline_code: row.decline_code,
            decline_category: row
                .decline_category
                .as_deref()
                .map(parse_stored)
                .transpose()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
            last_position: row.last_position,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRow {
    pub payment_id: Uuid,
    pub capture_id: String,
    pub currency: String,
    pub amount: Decimal,
    pub final_capture: bool,
    pub captured_at: DateTime<Utc>,
    pub settled_batch_id: Option<Uuid>,
    pub settled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefundRow {
    pub payment_id: Uuid,
    pub refund_id: String,
    pub currency: String,
    pub amount: Decimal,
    pub status: RefundStatus,
    pub reason: Option<String>,
    pub failure_reason: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub settled_batch_id: Option<Uuid>,
    pub settled_at: Option<DateTime<Utc>>,
}

struct StoredRefund {
    payment_id: Uuid,
    refund_id: String,
    currency: String,
    amount: Decimal,
    status: String,
    reason: Option<String>,
    failure_reason: Option<String>,
    requested_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
    settled_batch_id: Option<Uuid>,
    settled_at: Option<DateTime<Utc>>,
}

impl TryFrom<StoredRefund> for RefundRow {
    type Error = ProjectionError;

    fn try_from(row: StoredRefund) -> Result<Self, ProjectionError> {
        Ok(RefundRow {
            payment_id: row.payment_id,
            refund_id: row.refund_id,
            currency: row.currency,
            amount: row.amount,
            status: parse_stored(&row.status)?,
            reason: row.reason,
            failure_reason: row.failure_reason,
            requested_at: row.requested_at,
            resolved_at: row.resolved_at,
            settled_batch_id: row.settled_batch_id,
            settled_at: row.settled_at,
        })
    }
}

/// Filters of the payments list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub merchant_id: Option<String>,
    pub order_id: Option<String>,
    pub status: Option<PaymentStatus>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// Largest page of payments one query returns.
pub const MAX_PAYMENTS_PAGE: usize = 500;

/// Payments of many ids at once (a GraphQL DataLoader's batch), within one environment.
#[tracing::instrument(skip(pool))]
pub async fn payments_by_id(
    pool: &PgPool,
    environment: Environment,
    payment_ids: &[Uuid],
) -> Result<Vec<PaymentRow>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredPayment,
        r#"SELECT * FROM projection_payments
           WHERE environment = $1 AND payment_id = ANY($2::uuid[])"#,
        environment.as_str(),
        payment_ids,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// One page of payments, oldest first, after the cursor `(created_at, payment_id)` of the
/// previous page's last row; at most `limit` (capped at [`MAX_PAYMENTS_PAGE`]).
///
/// One statement per index rather than one catch-all statement: PostgreSQL caches a generic
/// plan for a prepared statement, and for `($2 IS NULL OR merchant_id = $2)`-style filters
/// that plan cannot know which filters are set. Seen in the benchmark: a plan cached while the
/// table was small sorted the whole table for every page (5 ms a page at 7,000 payments, and
/// growing). Here each statement's bounds are index conditions, so its generic plan walks the
/// index from the cursor and stops after `limit` rows.
#[tracing::instrument(skip(pool))]
pub async fn list_payments(
    pool: &PgPool,
    environment: Environment,
    filter: &PaymentFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<PaymentRow>, ProjectionError> {
    let limit = i64::try_from(limit.min(MAX_PAYMENTS_PAGE)).unwrap_or(0);
    let (after_created, after_id) = after.unzip();
    let status = filter.status.map(PaymentStatus::as_str);
    let rows = if let Some(order_id) = &filter.order_id {
        // An order has a handful of payments: its index finds them all, the sort is tiny.
        sqlx::query_as!(
            StoredPayment,
            r#"SELECT * FROM projection_payments
               WHERE environment = $1 AND order_id = $2
                 AND ($3::text IS NULL OR merchant_id = $3)
                 AND ($4::text IS NULL OR status = $4)
                 AND created_at >= COALESCE($5::timestamptz, '-infinity')
                 AND created_at < COALESCE($6::timestamptz, 'infinity')
                 AND (created_at, payment_id) > (COALESCE($7::timestamptz, '-infinity'),
                     COALESCE($8::uuid, '00000000-0000-0000-0000-000000000000'))
               ORDER BY created_at, payment_id
               LIMIT $9"#,
            environment.as_str(),
            order_id,
            filter.merchant_id,
            status,
            filter.created_from,
            filter.created_before,
            after_created,
            after_id,
            limit,
        )
        .fetch_all(pool)
        .await?
    } else if let Some(merchant_id) = &filter.merchant_id {
        sqlx::query_as!(
            StoredPayment,
            r#"SELECT * FROM projection_payments
               WHERE environment = $1 AND merchant_id = $2
                 AND ($3::text IS NULL OR status = $3)
                 AND created_at >= COALESCE($4::timestamptz, '-infinity')
                 AND created_at < COALESCE($5::timestamptz, 'infinity')
                 AND (created_at, payment_id) > (COALESCE($6::timestamptz, '-infinity'),
                     COALESCE($7::uuid, '00000000-0000-0000-0000-000000000000'))
               ORDER BY created_at, payment_id
               LIMIT $8"#,
            environment.as_str(),
            merchant_id,
            status,
            filter.created_from,
            filter.created_before,
            after_created,
            after_id,
            limit,
        )
        .fetch_all(pool)
        .await?
    } else {
        sqlx::query_as!(
            StoredPayment,
            r#"SELECT * FROM projection_payments
               WHERE environment = $1
                 AND ($2::text IS NULL OR status = $2)
                 AND created_at >= COALESCE($3::timestamptz, '-infinity')
                 AND created_at < COALESCE($4::timestamptz, 'infinity')
                 AND (created_at, payment_id) > (COALESCE($5::timestamptz, '-infinity'),
                     COALESCE($6::uuid, '00000000-0000-0000-0000-000000000000'))
               ORDER BY created_at, payment_id
               LIMIT $7"#,
            environment.as_str(),
            status,
            filter.created_from,
            filter.created_before,
            after_created,
            after_id,
            limit,
        )
        .fetch_all(pool)
        .await?
    };
    read_rows(rows)
}

/// The captures of many payments at once, in capture order of time.
#[tracing::instrument(skip(pool))]
pub async fn captures_of(
    pool: &PgPool,
    payment_ids: &[Uuid],
) -> Result<Vec<CaptureRow>, ProjectionError> {
    let rows = sqlx::query_as!(
        CaptureRow,
        r#"SELECT payment_id, capture_id, currency, amount, final_capture, captured_at,
                  settled_batch_id, settled_at
           FROM projection_captures WHERE payment_id = ANY($1::uuid[])
           ORDER BY payment_id, captured_at, capture_id"#,
        payment_ids,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// The refunds of many payments at once.
#[tracing::instrument(skip(pool))]
pub async fn refunds_of(
    pool: &PgPool,
    payment_ids: &[Uuid],
) -> Result<Vec<RefundRow>, ProjectionError> {
    let rows = sqlx::query_as!(
        StoredRefund,
        r#"SELECT * FROM projection_refunds WHERE payment_id = ANY($1::uuid[])
           ORDER BY payment_id, requested_at, refund_id"#,
        payment_ids,
    )
    .fetch_all(pool)
    .await?;
    read_rows(rows)
}

/// An authorization whose expiry has passed while it could still be captured.
#[derive(Debug, Clone, PartialEq)]
pub struct DueExpiry {
    pub payment_id: Uuid,
    pub environment: Environment,
    pub expires_at: DateTime<Utc>,
}

/// Authorizations still open for capture whose `expiresAt` is at or before `now`, soonest
/// first, after the key `(expires_at, payment_id)` of the previous page's last row.
#[tracing::instrument(skip(pool))]
pub async fn due_expiries(
    pool: &PgPool,
    now: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<DueExpiry>, ProjectionError> {
    let (after_time, after_id) = after.unzip();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = sqlx::query!(
        r#"SELECT payment_id, environment, authorization_expires_at AS "expires_at!"
           FROM projection_payments
           WHERE capturable_amount > 0 AND authorization_expires_at <= $1
             AND ($2::timestamptz IS NULL
                  OR (authorization_expires_at, payment_id) > ($2, $3::uuid))
           ORDER BY authorization_expires_at, payment_id
           LIMIT $4"#,
        now,
        after_time,
        after_id,
        limit,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(DueExpiry {
                payment_id: row.payment_id,
                environment: parse_stored(&row.environment)?,
                expires_at: row.expires_at,
            })
        })
        .collect()
}
