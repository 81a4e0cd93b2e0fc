//! The report's readable lines, parked in `reconciliation_report_lines` while a run is worked
//! out, so that a file of any length is read once and walked payout by payout without being
//! held in memory.

use chrono::{DateTime, Utc};
use ledger_core::ids::PayoutId;
use ledger_core::{Currency, Money};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ReconcileError;
use super::report::ReportRow;

/// Lines written per statement while the file is read.
pub const STAGE_CHUNK: usize = 1_000;

/// Writes one chunk of lines in a single statement.
pub async fn stage(pool: &PgPool, run_id: Uuid, rows: &[ReportRow]) -> Result<(), ReconcileError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut line_numbers = Vec::with_capacity(rows.len());
    let mut payout_ids = Vec::with_capacity(rows.len());
    let mut transactions: Vec<Option<String>> = Vec::with_capacity(rows.len());
    let mut categories = Vec::with_capacity(rows.len());
    let mut currencies = Vec::with_capacity(rows.len());
    let mut grosses = Vec::with_capacity(rows.len());
    let mut fees = Vec::with_capacity(rows.len());
    let mut nets = Vec::with_capacity(rows.len());
    let mut intents: Vec<Option<String>> = Vec::with_capacity(rows.len());
    let mut charges: Vec<Option<String>> = Vec::with_capacity(rows.len());
    let mut refunds: Vec<Option<String>> = Vec::with_capacity(rows.len());
    let mut disputes: Vec<Option<String>> = Vec::with_capacity(rows.len());
    let mut payments: Vec<Option<Uuid>> = Vec::with_capacity(rows.len());
    let mut available: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(rows.len());
    for row in rows {
        line_numbers.push(i64::try_from(row.line_number).unwrap_or(i64::MAX));
        payout_ids.push(row.payout_id.as_str().to_owned());
        transactions.push(row.balance_transaction_id.clone());
        categories.push(row.reporting_category.clone());
        currencies.push(row.currency.code().to_owned());
        grosses.push(row.gross.amount());
        fees.push(row.fee.amount());
        nets.push(row.net.amount());
        intents.push(row.payment_intent_id.clone());
        charges.push(row.charge_id.clone());
        refunds.push(row.refund_id.clone());
        disputes.push(row.dispute_id.clone());
        payments.push(row.ledger_payment_id);
        available.push(row.available_on);
    }
    // A resumed import writes the same lines again: the first copy stands.
    sqlx::query!(
        r#"INSERT INTO reconciliation_report_lines
               (run_id, line_number, payout_id, balance_transaction_id, reporting_category,
                currency, gross, fee, net, payment_intent_id, charge_id, refund_id, dispute_id,
                ledger_payment_id, available_on)
           SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                                    $7::numeric[], $8::numeric[], $9::numeric[], $10::text[],
                                    $11::text[], $12::text[], $13::text[], $14::uuid[],
                                    $15::timestamptz[])
           ON CONFLICT (run_id, line_number) DO NOTHING"#,
        run_id,
        &line_numbers,
        &payout_ids,
        &transactions as &[Option<String>],
        &categories,
        &currencies,
        &grosses,
        &fees,
        &nets,
        &intents as &[Option<String>],
        &charges as &[Option<String>],
        &refunds as &[Option<String>],
        &disputes as &[Option<String>],
        &payments as &[Option<Uuid>],
        &available as &[Option<DateTime<Utc>>],
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The payouts of a run after `after`, in id order, a page at a time.
pub async fn payouts_after(
    pool: &PgPool,
    run_id: Uuid,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, ReconcileError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT payout_id AS "payout_id!" FROM reconciliation_report_lines
           WHERE run_id = $1 AND payout_id > $2
           ORDER BY payout_id
           LIMIT $3"#,
        run_id,
        after,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// A payout's lines after `after_line`, in file order.
pub async fn lines_of_payout(
    pool: &PgPool,
    run_id: Uuid,
    payout_id: &str,
    after_line: u64,
    limit: i64,
) -> Result<Vec<ReportRow>, ReconcileError> {
    let rows = sqlx::query!(
        r#"SELECT line_number, payout_id, balance_transaction_id, reporting_category, currency,
                  gross, fee, net, payment_intent_id, charge_id, refund_id, dispute_id,
                  ledger_payment_id, available_on
           FROM reconciliation_report_lines
           WHERE run_id = $1 AND payout_id = $2 AND line_number > $3
           ORDER BY line_number
           LIMIT $4"#,
        run_id,
        payout_id,
        i64::try_from(after_line).unwrap_or(i64::MAX),
        limit
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let corrupt = |what: &str| {
                ReconcileError::CorruptRow(format!("staged line {}: {what}", row.line_number))
            };
            let currency = Currency::parse(&row.currency).map_err(|_| corrupt("currency"))?;
            let money =
                |amount: Decimal| Money::new(amount, currency).map_err(|_| corrupt("amount"));
            Ok(ReportRow {
                line_number: u64::try_from(row.line_number).map_err(|_| corrupt("line"))?,
                payout_id: PayoutId::parse(row.payout_id).map_err(|_| corrupt("payout id"))?,
                balance_transaction_id: row.balance_transaction_id,
                reporting_category: row.reporting_category,
                currency,
                gross: money(row.gross)?,
                fee: money(row.fee)?,
                net: money(row.net)?,
                payment_intent_id: row.payment_intent_id,
                charge_id: row.charge_id,
                refund_id: row.refund_id,
                dispute_id: row.dispute_id,
                ledger_payment_id: row.ledger_payment_id,
                available_on: row.available_on,
            })
        })
        .collect()
}

/// For a payout's charges, the sums of their partial-capture reversals (gross, fee, net) and
/// which of them have a charge line in the payout at all.
#[derive(Debug, Default)]
pub struct Reversals {
    pub sums: std::collections::HashMap<String, (Decimal, Decimal, Decimal)>,
    pub charges_with_line: std::collections::HashSet<String>,
}

pub async fn reversals(
    pool: &PgPool,
    run_id: Uuid,
    payout_id: &str,
    charge_ids: &[String],
) -> Result<Reversals, ReconcileError> {
    if charge_ids.is_empty() {
        return Ok(Reversals::default());
    }
    let sums = sqlx::query!(
        r#"SELECT charge_id AS "charge_id!", sum(gross) AS "gross!", sum(fee) AS "fee!",
                  sum(net) AS "net!"
           FROM reconciliation_report_lines
           WHERE run_id = $1 AND payout_id = $2
             AND reporting_category = 'partial_capture_reversal' AND charge_id = ANY($3)
           GROUP BY charge_id"#,
        run_id,
        payout_id,
        charge_ids
    )
    .fetch_all(pool)
    .await?;
    let charges = sqlx::query_scalar!(
        r#"SELECT DISTINCT charge_id AS "charge_id!" FROM reconciliation_report_lines
           WHERE run_id = $1 AND payout_id = $2 AND reporting_category = 'charge'
             AND charge_id = ANY($3)"#,
        run_id,
        payout_id,
        charge_ids
    )
    .fetch_all(pool)
    .await?;
    Ok(Reversals {
        sums: sums
            .into_iter()
            .map(|row| (row.charge_id, (row.gross, row.fee, row.net)))
            .collect(),
        charges_with_line: charges.into_iter().collect(),
    })
}

/// The latest time the report says money became available: the end of the period it covers.
pub async fn period_end(
    pool: &PgPool,
    run_id: Uuid,
) -> Result<Option<DateTime<Utc>>, ReconcileError> {
    Ok(sqlx::query_scalar!(
        "SELECT max(available_on) FROM reconciliation_report_lines WHERE run_id = $1",
        run_id
    )
    .fetch_one(pool)
    .await?)
}

/// Whether the report names this item anywhere (then it is not missing from the payouts,
/// whatever else is wrong with it).
pub async fn reported_item_ids(
    pool: &PgPool,
    run_id: Uuid,
    item_ids: &[String],
) -> Result<Vec<String>, ReconcileError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT item AS "item!" FROM (
               SELECT unnest(ARRAY[charge_id, refund_id, dispute_id]) AS item
               FROM reconciliation_report_lines
               WHERE run_id = $1
                 AND (charge_id = ANY($2) OR refund_id = ANY($2) OR dispute_id = ANY($2))
           ) named
           WHERE item = ANY($2)"#,
        run_id,
        item_ids
    )
    .fetch_all(pool)
    .await?)
}

pub async fn discard(pool: &PgPool, run_id: Uuid) -> Result<(), ReconcileError> {
    sqlx::query!(
        "DELETE FROM reconciliation_report_lines WHERE run_id = $1",
        run_id
    )
    .execute(pool)
    .await?;
    Ok(())
}
