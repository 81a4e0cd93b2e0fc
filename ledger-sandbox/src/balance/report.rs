//! Stripe's itemized payout reconciliation report (`payout_reconciliation.itemized.5`) for
//! the sandbox's automatic payouts: one line per balance transaction a payout paid out, with
//! Stripe's column names, amounts in major units and times as `YYYY-MM-DD HH:MM:SS` UTC. It is
//! the file `ledger reconcile stripe-payouts` imports.

use chrono::DateTime;

use super::books::{BalanceTransaction, Payout, TransactionKind};
use crate::api_error::ApiError;
use crate::params::Params;
use crate::state::State;

/// A report holds at most this many lines; a wider interval is refused.
pub const MAX_REPORT_LINES: usize = 200_000;

/// The report's columns, in Stripe's order (a subset of the report type's default columns:
/// the ones the sandbox knows).
pub const COLUMNS: &[&str] = &[
    "automatic_payout_id",
    "automatic_payout_effective_at_utc",
    "automatic_payout_effective_at",
    "balance_transaction_id",
    "created_utc",
    "created",
    "available_on_utc",
    "available_on",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
    "customer_facing_amount",
    "customer_facing_currency",
    "charge_id",
    "payment_intent_id",
    "charge_created_utc",
    "charge_created",
    "payment_method_type",
    "card_brand",
    "card_funding",
    "card_country",
    "dispute_reason",
];

/// Stripe's zero-decimal and three-decimal currencies; every other has two decimals.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// Minor units as the report writes them: `-25.00` USD, `1000` JPY.
pub fn major_units(amount: i64, currency: &str) -> String {
    let digits = if ZERO_DECIMAL.contains(&currency) {
        0
    } else if THREE_DECIMAL.contains(&currency) {
        3
    } else {
        2
    };
    if digits == 0 {
        return amount.to_string();
    }
    let scale = 10_i64.pow(digits);
    let sign = if amount < 0 { "-" } else { "" };
    let magnitude = amount.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = digits as usize
    )
}

fn time(seconds: i64) -> String {
    DateTime::from_timestamp(seconds, 0)
        .map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

impl State {
    /// `GET /sandbox/reports/payout_reconciliation.csv` with `payout=po_…`, or
    /// `interval_start` and `interval_end` (unix seconds): the payouts whose effective date
    /// (`arrival_date`) is in `[interval_start, interval_end)`.
    pub fn payout_report(&self, mut params: Params) -> Result<String, ApiError> {
        let payout = params.text("payout")?;
        let interval_start = seconds(&mut params, "interval_start")?;
        let interval_end = seconds(&mut params, "interval_end")?;
        params.finish()?;
        let payouts: Vec<&Payout> = match (payout, interval_start, interval_end) {
            (Some(id), None, None) => vec![self
                .books
                .payout(&id)
                .ok_or_else(|| ApiError::resource_missing("payout", &id).with_param("payout"))?],
            (None, Some(start), Some(end)) if start < end => self
                .books
                .payouts
                .iter()
                .filter(|payout| (start..end).contains(&payout.arrival_date))
                .collect(),
            (None, Some(_), Some(_)) => {
                return Err(ApiError::invalid_param(
                    "interval_end",
                    "interval_end must be after interval_start.",
                ))
            }
            _ => {
                return Err(ApiError::invalid_request(
                    "parameter_missing",
                    "Give either payout, or both interval_start and interval_end.",
                )
                .with_param("payout"))
            }
        };
        let mut lines: Vec<(&Payout, &BalanceTransaction)> = Vec::new();
        for payout in payouts {
            for transaction in &self.books.transactions {
                let paid_here = transaction.payout.as_deref() == Some(payout.id.as_str());
                if paid_here && transaction.kind != TransactionKind::Payout {
                    if lines.len() == MAX_REPORT_LINES {
                        return Err(ApiError::invalid_request(
                            "parameter_invalid",
                            format!("The report would exceed {MAX_REPORT_LINES} lines: ask for a shorter interval."),
                        )
                        .with_param("interval_end"));
                    }
                    lines.push((payout, transaction));
                }
            }
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut write = |record: Vec<String>| {
            writer.write_record(record).map_err(|error| {
                ApiError::invalid_request(
                    "report_failed",
                    format!("could not write the report: {error}"),
                )
            })
        };
        write(COLUMNS.iter().map(|column| (*column).to_owned()).collect())?;
        for (payout, transaction) in lines {
            write(self.report_line(payout, transaction))?;
        }
        let bytes = writer.into_inner().map_err(|error| {
            ApiError::invalid_request(
                "report_failed",
                format!("could not write the report: {error}"),
            )
        })?;
        String::from_utf8(bytes).map_err(|error| {
            ApiError::invalid_request("report_failed", format!("the report is not text: {error}"))
        })
    }

    fn report_line(&self, payout: &Payout, transaction: &BalanceTransaction) -> Vec<String> {
        let currency = transaction.currency.as_str();
        let charge_created = transaction
            .charge
            .as_ref()
            .and_then(|charge| self.charges.get(charge))
            .map(|charge| time(charge.created))
            .unwrap_or_default();
        let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
        // The customer paid (or got back) the gross; a dispute's line is what was taken back.
        let customer_facing = matches!(
            transaction.kind,
            TransactionKind::Charge | TransactionKind::Refund
        );
        vec![
            payout.id.clone(),
            time(payout.arrival_date),
            time(payout.arrival_date),
            transaction.id.clone(),
            time(transaction.created),
            time(transaction.created),
            time(transaction.available_on),
            time(transaction.available_on),
            currency.to_owned(),
            major_units(transaction.amount, currency),
            major_units(transaction.fee, currency),
            major_units(transaction.net(), currency),
            transaction.kind.reporting_category().to_owned(),
            transaction.source.clone(),
            text(transaction.description.as_deref()),
            if customer_facing {
                major_units(transaction.amount, currency)
            } else {
                String::new()
            },
            if customer_facing {
                currency.to_owned()
            } else {
                String::new()
            },
            text(transaction.charge.as_deref()),
            text(transaction.payment_intent.as_deref()),
            charge_created.clone(),
            charge_created,
            "card".to_owned(),
            text(transaction.card_brand),
            text(transaction.card_funding),
            "US".to_owned(),
            text(transaction.dispute_reason),
        ]
    }
}

/// A unix time parameter.
fn seconds(params: &mut Params, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(text) = params.text(name)? else {
        return Ok(None);
    };
    text.parse::<i64>()
        .ok()
        .filter(|value| (0..=253_402_300_799).contains(value))
        .map(Some)
        .ok_or_else(|| ApiError::invalid_param(name, format!("Invalid timestamp: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_in_major_units_with_the_currency_s_decimals() {
        assert_eq!(major_units(9680, "usd"), "96.80");
        assert_eq!(major_units(-500, "usd"), "-5.00");
        assert_eq!(major_units(-5, "eur"), "-0.05");
        assert_eq!(major_units(1000, "jpy"), "1000");
        assert_eq!(major_units(1500, "kwd"), "1.500");
    }
}
