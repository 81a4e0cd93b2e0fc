//! What the ledger holds for the items a page of report lines names, and what it holds that
//! no payout has taken yet: read from the read models, which the importer first brings up to
//! the log's head.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ledger_core::ids::{Environment, SettlementBatchId};
use ledger_core::reconciliation::{LedgerItem, LedgerSettlement};
use ledger_core::{Currency, Money};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ReconcileError;

/// The ledger's figures for one item, with what the importer needs beyond classification.
#[derive(Debug, Clone)]
pub struct LedgerRecord {
    pub item: LedgerItem,
    pub merchant_id: String,
    pub recorded_at: DateTime<Utc>,
}

/// Item kinds as the read models name them.
pub const CAPTURE: &str = "CAPTURE";
pub const REFUND: &str = "REFUND";
pub const DISPUTE: &str = "DISPUTE";

pub type ItemKey = (Uuid, &'static str, String);

/// The ledger payments that PaymentIntents were linked to by webhooks carrying
/// `metadata.ledger_payment_id`.
pub async fn linked_payments(
    pool: &PgPool,
    environment: Environment,
    payment_intent_ids: &[String],
) -> Result<HashMap<String, Uuid>, ReconcileError> {
    if payment_intent_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query!(
        r#"SELECT payment_intent_id, payment_id FROM webhook_payment_links
           WHERE environment = $1 AND payment_intent_id = ANY($2)"#,
        environment.as_str(),
        payment_intent_ids
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.payment_intent_id, row.payment_id))
        .collect())
}

fn money(
    currency_code: &str,
    amount: Decimal,
    what: &str,
) -> Result<(Currency, Money), ReconcileError> {
    let corrupt = || ReconcileError::CorruptRow(format!("{what}: {currency_code} {amount}"));
    let currency = Currency::parse(currency_code).map_err(|_| corrupt())?;
    let money = Money::new(amount, currency).map_err(|_| corrupt())?;
    Ok((currency, money))
}

fn settlement(
    currency: Currency,
    batch_id: Option<Uuid>,
    fee: Option<Decimal>,
) -> Option<LedgerSettlement> {
    let batch_id = batch_id?;
    Some(LedgerSettlement {
        batch_id: SettlementBatchId::from_uuid(batch_id),
        fee: fee
            .and_then(|fee| Money::new(fee, currency).ok())
            .unwrap_or_else(|| Money::zero(currency)),
    })
}

/// Every capture, refund and dispute of these payments, in this environment.
pub async fn items_of(
    pool: &PgPool,
    environment: Environment,
    payment_ids: &[Uuid],
) -> Result<HashMap<ItemKey, LedgerRecord>, ReconcileError> {
    let mut items = HashMap::new();
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
    for row in captures {
        let (currency, amount) = money(&row.currency, row.amount, "capture")?;
        items.insert(
            (row.payment_id, CAPTURE, row.capture_id),
            LedgerRecord {
                item: LedgerItem {
                    currency,
                    amount,
                    known_fee: None,
                    unsettleable: None,
                    settlement: settlement(currency, row.settled_batch_id, row.settled_fee),
                },
                merchant_id: row.merchant_id,
                recorded_at: row.captured_at,
            },
        );
    }
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
        let (currency, amount) = money(&row.currency, row.amount, "refund")?;
        let unsettleable = (row.status != "SUCCEEDED").then(|| {
            format!(
                "the refund is {} in the ledger: its outcome webhook may never have arrived",
                row.status
            )
        });
        items.insert(
            (row.payment_id, REFUND, row.refund_id),
            LedgerRecord {
                item: LedgerItem {
                    currency,
                    amount,
                    known_fee: None,
                    unsettleable,
                    settlement: settlement(currency, row.settled_batch_id, row.settled_fee),
                },
                merchant_id: row.merchant_id,
                recorded_at: row.requested_at,
            },
        );
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
    for row in disputes {
        let (currency, amount) = money(&row.currency, row.amount, "dispute")?;
        let (_, fee) = money(&row.currency, row.fee, "dispute fee")?;
        items.insert(
            (row.payment_id, DISPUTE, row.dispute_id),
            LedgerRecord {
                item: LedgerItem {
                    currency,
                    amount,
                    // A dispute settles with the fee recorded when it opened.
                    known_fee: Some(fee),
                    unsettleable: None,
                    settlement: settlement(currency, row.settled_batch_id, Some(row.fee)),
                },
                merchant_id: row.merchant_id,
                recorded_at: row.opened_at,
            },
        );
    }
    Ok(items)
}

/// The batch that already records a payout, and the payout amount the ledger knows: from the
/// batch's payout, else from a `payout.paid`/`payout.failed` webhook parked until its batch
/// exists.
#[derive(Debug, Clone, Default)]
pub struct PayoutKnowledge {
    pub batch_id: Option<Uuid>,
    pub batch_net: Option<Money>,
    pub payout_amount: Option<Money>,
    pub payout_status: Option<String>,
}

pub async fn payout_knowledge(
    pool: &PgPool,
    environment: Environment,
    payout_id: &str,
    currency: Currency,
) -> Result<PayoutKnowledge, ReconcileError> {
    let recorded = sqlx::query!(
        r#"SELECT p.batch_id, p.amount, p.currency, p.status, b.net
           FROM projection_payouts p
           JOIN projection_settlement_batches b ON b.batch_id = p.batch_id
           WHERE p.environment = $1 AND p.payout_id = $2
           ORDER BY p.initiated_at DESC
           LIMIT 1"#,
        environment.as_str(),
        payout_id
    )
    .fetch_optional(pool)
    .await?;
    if let Some(row) = recorded {
        let (_, amount) = money(&row.currency, row.amount, "payout")?;
        let (_, net) = money(&row.currency, row.net, "batch net")?;
        return Ok(PayoutKnowledge {
            batch_id: Some(row.batch_id),
            batch_net: Some(net),
            payout_amount: Some(amount),
            payout_status: Some(row.status),
        });
    }
    let parked = sqlx::query_scalar!(
        r#"SELECT event FROM webhook_parked
           WHERE environment = $1 AND subject = $2
             AND event_type IN ('payout.paid', 'payout.failed')
           ORDER BY event_created_at DESC
           LIMIT 1"#,
        environment.as_str(),
        payout_id
    )
    .fetch_optional(pool)
    .await?;
    let payout_amount = parked.and_then(|event| {
        let object = event.get("data")?.get("object")?;
        let minor = object.get("amount")?.as_i64()?;
        let stated = object.get("currency")?.as_str()?.to_ascii_uppercase();
        (stated == currency.code())
            .then(|| Money::from_minor_units(minor, currency).ok())
            .flatten()
    });
    Ok(PayoutKnowledge {
        payout_amount,
        ..PayoutKnowledge::default()
    })
}

/// A ledger item that no batch has settled.
#[derive(Debug, Clone)]
pub struct Unsettled {
    pub payment_id: Uuid,
    pub kind: &'static str,
    pub item_id: String,
    pub merchant_id: String,
    pub currency: Currency,
    pub amount: Money,
    pub recorded_at: DateTime<Utc>,
}

/// Unsettled captures, succeeded refunds and disputes (the gateway withdraws a dispute's funds
/// when it opens, whatever its outcome) recorded before `recorded_before`,
/// for these merchants and currencies, after the cursor `(recorded_at, payment, item)`.
pub async fn unsettled_before(
    pool: &PgPool,
    environment: Environment,
    merchants: &[String],
    currencies: &[String],
    recorded_before: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid, String)>,
    limit: i64,
) -> Result<Vec<Unsettled>, ReconcileError> {
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
            let kind = match row.kind.as_str() {
                CAPTURE => CAPTURE,
                REFUND => REFUND,
                _ => DISPUTE,
            };
            let (currency, amount) = money(&row.currency, row.amount, "unsettled item")?;
            Ok(Unsettled {
                payment_id: row.payment_id,
                kind,
                item_id: row.item_id,
                merchant_id: row.merchant_id,
                currency,
                amount,
                recorded_at: row.recorded_at,
            })
        })
        .collect()
}
