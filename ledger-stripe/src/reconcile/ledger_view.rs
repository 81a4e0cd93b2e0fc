//! What the ledger holds for the items a page of report lines names, and what it holds that
//! no payout has taken yet: read from the read models (their queries are
//! `ledger_projections::read_models::{ledger_items, settlement}`), which the importer first
//! brings up to the log's head, and turned into the core's reconciliation values here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ledger_core::ids::{Environment, SettlementBatchId};
use ledger_core::payment::state::RefundStatus;
use ledger_core::payment::SettledItemKind;
use ledger_core::reconciliation::{LedgerItem, LedgerSettlement};
use ledger_core::settlement::PayoutStatus;
use ledger_core::{Currency, Money};
use ledger_projections::read_models::{ledger_items, settlement as settlement_model};
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
pub const CAPTURE: &str = SettledItemKind::Capture.as_str();
pub const REFUND: &str = SettledItemKind::Refund.as_str();
pub const DISPUTE: &str = SettledItemKind::Dispute.as_str();

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

/// The batch an item was settled in, with the fee it settled at. A batch without a settled
/// fee row settled it at no fee; a stored fee that is not money of the item's currency is a
/// corrupt row, never read as zero.
fn settlement(
    currency: Currency,
    batch_id: Option<Uuid>,
    fee: Option<Decimal>,
) -> Result<Option<LedgerSettlement>, ReconcileError> {
    let Some(batch_id) = batch_id else {
        return Ok(None);
    };
    let fee = match fee {
        Some(fee) => money(currency.code(), fee, "settled fee")?.1,
        None => Money::zero(currency),
    };
    Ok(Some(LedgerSettlement {
        batch_id: SettlementBatchId::from_uuid(batch_id),
        fee,
    }))
}

/// Every capture, refund and dispute of these payments, in this environment.
pub async fn items_of(
    pool: &PgPool,
    environment: Environment,
    payment_ids: &[Uuid],
) -> Result<HashMap<ItemKey, LedgerRecord>, ReconcileError> {
    let rows = ledger_items::items_of(pool, environment, payment_ids).await?;
    let mut items = HashMap::with_capacity(rows.len());
    for row in rows {
        let (currency, amount) = money(&row.currency, row.amount, row.kind.as_str())?;
        let (known_fee, settled_fee) = match row.dispute_fee {
            // A dispute settles with the fee recorded when it opened.
            Some(fee) => (Some(money(&row.currency, fee, "dispute fee")?.1), Some(fee)),
            None => (None, row.settled_fee),
        };
        let unsettleable = match row.refund_status {
            Some(status) if status != RefundStatus::Succeeded => Some(format!(
                "the refund is {} in the ledger: its outcome webhook may never have arrived",
                status.as_str()
            )),
            _ => None,
        };
        items.insert(
            (row.payment_id, row.kind.as_str(), row.item_id),
            LedgerRecord {
                item: LedgerItem {
                    currency,
                    amount,
                    known_fee,
                    unsettleable,
                    settlement: settlement(currency, row.settled_batch_id, settled_fee)?,
                },
                merchant_id: row.merchant_id,
                recorded_at: row.recorded_at,
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
    pub payout_status: Option<PayoutStatus>,
}

pub async fn payout_knowledge(
    pool: &PgPool,
    environment: Environment,
    payout_id: &str,
    currency: Currency,
) -> Result<PayoutKnowledge, ReconcileError> {
    let recorded = settlement_model::payout_with_batch(pool, environment, payout_id).await?;
    if let Some(row) = recorded {
        let (_, amount) = money(&row.currency, row.amount, "payout")?;
        let (_, net) = money(&row.currency, row.batch_net, "batch net")?;
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
            .then(|| crate::gateway::money_from_stripe(minor, currency).ok())
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
    let rows = ledger_items::unsettled_before(
        pool,
        environment,
        merchants,
        currencies,
        recorded_before,
        after,
        limit,
    )
    .await?;
    rows.into_iter()
        .map(|row| {
            let (currency, amount) = money(&row.currency, row.amount, "unsettled item")?;
            Ok(Unsettled {
                payment_id: row.payment_id,
                kind: row.kind.as_str(),
                item_id: row.item_id,
                merchant_id: row.merchant_id,
                currency,
                amount,
                recorded_at: row.recorded_at,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_settled_fee_that_is_not_money_of_the_currency_is_a_corrupt_row() {
        let batch = Uuid::new_v4();
        let jpy = Currency::parse("JPY").unwrap();
        let fee = settlement(jpy, Some(batch), Some(Decimal::new(1050, 2))).unwrap_err();
        assert!(matches!(fee, ReconcileError::CorruptRow(_)), "{fee}");

        let settled = settlement(jpy, Some(batch), Some(Decimal::new(30, 0)))
            .unwrap()
            .unwrap();
        assert_eq!(settled.fee, Money::new(Decimal::new(30, 0), jpy).unwrap());
        let no_fee = settlement(jpy, Some(batch), None).unwrap().unwrap();
        assert_eq!(no_fee.fee, Money::zero(jpy));
        assert!(settlement(jpy, None, Some(Decimal::ONE)).unwrap().is_none());
    }
}
