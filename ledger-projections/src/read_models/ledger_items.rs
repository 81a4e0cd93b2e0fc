//! The ledger's settleable items (captures, succeeded refunds, disputes) as a gateway's
//! payout report names them: what the reconciliation importer matches report lines against.
//! Read from the payments, disputes and settlement read models, which the importer first
//! brings up to the log's head.

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use ledger_core::payment::state::RefundStatus;
use ledger_core::payment::SettledItemKind;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{parse_stored, ProjectionError};

/// A capture, refund or dispute with what the ledger knows of its settlement.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerItemRow {
    pub payment_id: Uuid,
    pub kind: SettledItemKind,
    /// The capture, refund or dispute id.
    pub item_id: String,
    pub merchant_id: String,
    pub currency: String,
    pub amount: Decimal,
    /// A dispute's fee, recorded when it opened; `None` for captures and refunds.
    pub dispute_fee: Option<Decimal>,
    /// A refund's status; `None` for captures and disputes.
    pub refund_status: Option<RefundStatus>,
    /// When the ledger recorded the item (captured, refund requested, dispute opened).
    pub recorded_at: DateTime<Utc>,
    /// The batch that settled the item, if one did.
    pub settled_batch_id: Option<Uuid>,
    /// The fee of the batch's item that settled a capture or refund.
    pub settled_fee: Option<Decimal>,
}

/// Every capture, refund and dispute of these payments, in this environment.
#[tracing::instrument(skip(pool, payment_ids))]
pub async fn items_of(
    pool: &PgPool,
    environment: Environment,
    payment_ids: &[Uuid],
) -> Result<Vec<LedgerItemRow>, ProjectionError> {
    let mut items = Vec::new();
    if payment_ids.is_empty() {
        return Ok(items);
    }
    let captures = sqlx::query!(
        r#"SELECT c.payment_id, c.capture_id, c.merchant_id, c.currency, c.amount, c.captured_at,
                  c.settled_batch_id, si.fee AS "settled_fee?"
           FROM projection_captures c
           LEFT JOIN projection_settlement_items si
             ON si.batch_id = c.settled_batch_id AND si.payment_id = c.payment_id
            AND si.kind = 'CAPTURE' AND si.item_id = c.capture_id
           WHERE c.environment = $1 AND c.payment_id = ANY($2)"#,
        environment.as_str(),
        payment_ids
    )
    .fetch_all(pool)
    .await?;
    items.extend(captures.into_iter().map(|row| LedgerItemRow {
        payment_id: row.payment_id,
        kind: SettledItemKind::Capture,
        item_id: row.capture_id,
        merchant_id: row.merchant_id,
        currency: row.currency,
        amount: row.amount,
        dispute_fee: None,
        refund_status: None,
        recorded_at: row.captured_at,
        settled_batch_id: row.settled_batch_id,
        settled_fee: row.settled_fee,
    }));
    let refunds = sqlx::query!(
        r#"SELECT r.payment_id, r.refund_id, p.merchant_id, r.currency, r.amount, r.status,
                  r.requested_at, r.settled_batch_id, si.fee AS "settled_fee?"
           FROM projection_refunds r
           JOIN projection_payments p ON p.payment_id = r.payment_id
           LEFT JOIN projection_settlement_items si
             ON si.batch_id = r.settled_batch_id AND si.payment_id = r.payment_id
            AND si.kind = 'REFUND' AND si.item_id = r.refund_id
           WHERE p.environment = $1 AND r.payment_id = ANY($2)"#,
        environment.as_str(),
        payment_ids
    )
    .fetch_all(pool)
    .await?;
    for row in refunds {
        items.push(LedgerItemRow {
            payment_id: row.payment_id,
            kind: SettledItemKind::Refund,
            item_id: row.refund_id,
            merchant_id: row.merchant_id,
            currency: row.currency,
            amount: row.amount,
            dispute_fee: None,
            refund_status: Some(parse_stored(&row.status)?),
            recorded_at: row.requested_at,
            settled_batch_id: row.settled_batch_id,
            settled_fee: row.settled_fee,
        });
    }
    let disputes = sqlx::query!(
        r#"SELECT payment_id, dispute_id, merchant_id, currency, amount, fee, opened_at,
                  settled_batch_id
           FROM projection_disputes
           WHERE environment = $1 AND payment_id = ANY($2)"#,
        environment.as_str(),
        payment_ids
    )
    .fetch_all(pool)
    .await?;
    items.extend(disputes.into_iter().map(|row| LedgerItemRow {
        payment_id: row.payment_id,
        kind: SettledItemKind::Dispute,
        item_id: row.dispute_id,
        merchant_id: row.merchant_id,
        currency: row.currency,
        amount: row.amount,
        dispute_fee: Some(row.fee),
        refund_status: None,
        recorded_at: row.opened_at,
        settled_batch_id: row.settled_batch_id,
        settled_fee: None,
    }));
    Ok(items)
}

/// A ledger item that no batch has settled.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsettledItemRow {
    pub payment_id: Uuid,
    pub kind: SettledItemKind,
    pub item_id: String,
    pub merchant_id: String,
    pub currency: String,
    pub amount: Decimal,
    pub recorded_at: DateTime<Utc>,
}

/// The cursor of unsettled items: `(recorded_at, payment_id, item_id)` of the last one.
pub type UnsettledCursor = (DateTime<Utc>, Uuid, String);

/// Unsettled captures, succeeded refunds and disputes (the gateway withdraws a dispute's funds
/// when it opens, whatever its outcome) recorded before `recorded_before`, for these
/// merchants and currencies, after the cursor; at most `limit`.
#[tracing::instrument(skip(pool, merchants, currencies))]
pub async fn unsettled_before(
    pool: &PgPool,
    environment: Environment,
    merchants: &[String],
    currencies: &[String],
    recorded_before: DateTime<Utc>,
    after: Option<UnsettledCursor>,
    limit: i64,
) -> Result<Vec<UnsettledItemRow>, ProjectionError> {
    let (after_time, after_payment, after_item) =
        after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil(), String::new()));
    let rows = sqlx::query!(
        r#"SELECT kind AS "kind!", payment_id AS "payment_id!", item_id AS "item_id!",
                  merchant_id AS "merchant_id!", currency AS "currency!", amount AS "amount!",
                  recorded_at AS "recorded_at!"
           FROM (
               SELECT 'CAPTURE' AS kind, c.payment_id, c.capture_id AS item_id, c.merchant_id,
                      c.currency, c.amount, c.captured_at AS recorded_at
               FROM projection_captures c
               WHERE c.settled_batch_id IS NULL AND c.environment = $1
               UNION ALL
               SELECT 'REFUND', r.payment_id, r.refund_id, p.merchant_id, r.currency, r.amount,
                      r.resolved_at
               FROM projection_refunds r JOIN projection_payments p USING (payment_id)
               WHERE r.settled_batch_id IS NULL AND r.status = 'SUCCEEDED'
                 AND p.environment = $1
               UNION ALL
               SELECT 'DISPUTE', d.payment_id, d.dispute_id, d.merchant_id, d.currency,
                      d.amount, d.opened_at
               FROM projection_disputes d
               WHERE d.settled_batch_id IS NULL AND d.environment = $1
           ) items
           WHERE merchant_id = ANY($2) AND currency = ANY($3) AND recorded_at < $4
             AND (recorded_at, payment_id, item_id) > ($5, $6, $7)
           ORDER BY recorded_at, payment_id, item_id
           LIMIT $8"#,
        environment.as_str(),
        merchants,
        currencies,
        recorded_before,
        after_time,
        after_payment,
        after_item,
        limit
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(UnsettledItemRow {
                kind: parse_stored(&row.kind)?,
                payment_id: row.payment_id,
                item_id: row.item_id,
                merchant_id: row.merchant_id,
                currency: row.currency,
                amount: row.amount,
                recorded_at: row.recorded_at,
            })
        })
        .collect()
}
