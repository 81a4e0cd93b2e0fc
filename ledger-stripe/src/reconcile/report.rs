//! Reading Stripe's itemized payout reconciliation report, one row at a time.
//!
//! Columns are found by name in the header, so extra and reordered columns are fine; the
//! ones a line needs are `automatic_payout_id`, `reporting_category`, `currency`, `gross`,
//! `fee` and `net`. Amounts are decimal major units as Stripe writes them (`-25.00` USD,
//! `1000` JPY), checked against the currency's scale. Ids come from `payment_intent_id`,
//! `charge_id`, `refund_id`, `dispute_id`, falling back to `source_id` by category, and the
//! ledger payment id from `payment_metadata[ledger_payment_id]` when the report was run with
//! that metadata column.

use std::io::Read;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use ledger_core::ids::PayoutId;
use ledger_core::reconciliation::ReportSide;
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money};
use uuid::Uuid;

use super::error::ReconcileError;

/// The longest text kept of any report field: ids and amounts are far shorter, and a bound
/// keeps a hostile file from bloating exceptions.
const MAX_FIELD_CHARS: usize = 120;

/// Stripe's category for the uncaptured part of a manual capture: the `charge` line carries the
/// whole authorization, this one takes the rest back, and together they are the capture.
pub const PARTIAL_CAPTURE_REVERSAL: &str = "partial_capture_reversal";

/// A readable line, ready to be staged and matched.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub line_number: u64,
    pub payout_id: PayoutId,
    pub balance_transaction_id: Option<String>,
    /// Lowercase, as Stripe names it (`charge`, `refund`, `dispute`, …).
    pub reporting_category: String,
    pub currency: Currency,
    pub gross: Money,
    pub fee: Money,
    pub net: Money,
    pub payment_intent_id: Option<String>,
    pub charge_id: Option<String>,
    pub refund_id: Option<String>,
    pub dispute_id: Option<String>,
    pub ledger_payment_id: Option<Uuid>,
    pub available_on: Option<DateTime<Utc>>,
}

/// A line that could not be read, with what it said, so finance can find and fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRow {
    pub line_number: u64,
    pub reason: String,
    pub payout_id: Option<PayoutId>,
    pub report: ReportSide,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Readable(ReportRow),
    Invalid(InvalidRow),
}

struct Columns {
    payout_id: usize,
    category: usize,
    currency: usize,
    gross: usize,
    fee: usize,
    net: usize,
    balance_transaction_id: Option<usize>,
    source_id: Option<usize>,
    payment_intent_id: Option<usize>,
    charge_id: Option<usize>,
    refund_id: Option<usize>,
    dispute_id: Option<usize>,
    ledger_payment_id: Option<usize>,
    available_on: Option<usize>,
}

const REQUIRED: [&str; 6] = [
    "automatic_payout_id",
    "reporting_category",
    "currency",
    "gross",
    "fee",
    "net",
];

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Columns, ReconcileError> {
        let find = |name: &str| {
            header
                .iter()
                .position(|column| column.trim().eq_ignore_ascii_case(name))
        };
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|name| find(name).is_none())
            .collect();
        let required = |name: &str| find(name).ok_or(());
        match (
            required("automatic_payout_id"),
            required("reporting_category"),
            required("currency"),
            required("gross"),
            required("fee"),
            required("net"),
        ) {
            (Ok(payout_id), Ok(category), Ok(currency), Ok(gross), Ok(fee), Ok(net)) => {
                Ok(Columns {
                    payout_id,
                    category,
                    currency,
                    gross,
                    fee,
                    net,
                    balance_transaction_id: find("balance_transaction_id"),
                    source_id: find("source_id"),
                    payment_intent_id: find("payment_intent_id"),
                    charge_id: find("charge_id"),
                    refund_id: find("refund_id"),
                    dispute_id: find("dispute_id"),
                    ledger_payment_id: find("payment_metadata[ledger_payment_id]"),
                    available_on: find("available_on_utc").or_else(|| find("available_on")),
                })
            }
            _ => Err(ReconcileError::NotAPayoutReport {
                missing: missing.join(", "),
            }),
        }
    }
}

/// Rows of a report, read lazily from any byte source.
pub struct ReportReader<R: Read> {
    records: csv::StringRecordsIntoIter<R>,
    columns: Columns,
}

impl<R: Read> ReportReader<R> {
    /// Reads the header; a file without the report's required columns is refused whole.
    pub fn new(source: R) -> Result<ReportReader<R>, ReconcileError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(source);
        let header = reader
            .headers()
            .map_err(|error| ReconcileError::UnreadableFile(error.to_string()))?
            .clone();
        let columns = Columns::from_header(&header)?;
        Ok(ReportReader {
            records: reader.into_records(),
            columns,
        })
    }
}

impl<R: Read> Iterator for ReportReader<R> {
    type Item = Result<Row, ReconcileError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        Some(match record {
            Ok(record) => Ok(read_row(&self.columns, &record)),
            // A malformed line (bad quoting, invalid UTF-8) is one bad row, not a bad file.
            Err(error) => match error.position() {
                Some(position) => Ok(Row::Invalid(InvalidRow {
                    line_number: position.line(),
                    reason: format!("the line is not valid CSV: {}", error.kind_text()),
                    payout_id: None,
                    report: ReportSide::default(),
                })),
                None => Err(ReconcileError::UnreadableFile(error.to_string())),
            },
        })
    }
}

trait KindText {
    fn kind_text(&self) -> String;
}

impl KindText for csv::Error {
    fn kind_text(&self) -> String {
        match self.kind() {
            csv::ErrorKind::Utf8 { .. } => "it is not UTF-8 text".to_owned(),
            csv::ErrorKind::UnequalLengths { .. } => "its fields do not line up".to_owned(),
            _ => "it cannot be parsed".to_owned(),
        }
    }
}

fn field(record: &csv::StringRecord, column: Option<usize>) -> Option<&str> {
    column
        .and_then(|index| record.get(index))
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// Text as the file gave it, without control characters and cut to `max_chars`; `None` when
/// nothing is left.
pub(super) fn bounded_text(text: &str, max_chars: usize) -> Option<ShortText> {
    let kept: String = text
        .chars()
        .filter(|character| !character.is_control())
        .take(max_chars)
        .collect();
    ShortText::parse(kept).ok()
}

fn bounded(text: Option<&str>) -> Option<ShortText> {
    text.and_then(|text| bounded_text(text, MAX_FIELD_CHARS))
}

fn read_row(columns: &Columns, record: &csv::StringRecord) -> Row {
    let line_number = record.position().map_or(0, |position| position.line());
    let text = |column: usize| field(record, Some(column));
    let report = ReportSide {
        balance_transaction_id: bounded(field(record, columns.balance_transaction_id)),
        reporting_category: bounded(text(columns.category)),
        currency: bounded(text(columns.currency)),
        gross: bounded(text(columns.gross)),
        fee: bounded(text(columns.fee)),
        net: bounded(text(columns.net)),
        available_on: bounded(field(record, columns.available_on)),
    };
    let payout_id = text(columns.payout_id).and_then(|id| PayoutId::parse(id).ok());
    let invalid = |reason: String| {
        Row::Invalid(InvalidRow {
            line_number,
            reason,
            payout_id: payout_id.clone(),
            report: report.clone(),
        })
    };
    match parse_row(columns, record, line_number) {
        Ok(row) => Row::Readable(row),
        Err(reason) => invalid(reason),
    }
}

fn parse_row(
    columns: &Columns,
    record: &csv::StringRecord,
    line_number: u64,
) -> Result<ReportRow, String> {
    let text = |column: usize| field(record, Some(column));
    let optional = |column: Option<usize>| field(record, column).map(str::to_owned);
    let payout_id = match text(columns.payout_id) {
        None => return Err("the line names no automatic_payout_id; only lines of automatic payouts can be reconciled".to_owned()),
        Some(id) => PayoutId::parse(id).map_err(|error| format!("automatic_payout_id: {error}"))?,
    };
    let category = text(columns.category)
        .ok_or("the line has no reporting_category")?
        .to_ascii_lowercase();
    let currency_text = text(columns.currency).ok_or("the line has no currency")?;
    let currency = Currency::parse(&currency_text.to_ascii_uppercase())
        .map_err(|_| format!("`{currency_text}` is not an ISO 4217 currency the ledger knows"))?;
    let amount = |name: &str, column: usize| {
        let value = text(column).ok_or_else(|| format!("the line has no {name}"))?;
        Money::parse(value, currency).map_err(|error| format!("{name}: {error}"))
    };
    let gross = amount("gross", columns.gross)?;
    let fee = amount("fee", columns.fee)?;
    let net = amount("net", columns.net)?;
    let source_id = optional(columns.source_id);
    let by_category = |wanted: &str| (category == wanted).then(|| source_id.clone()).flatten();
    let ledger_payment_id = field(record, columns.ledger_payment_id)
        .map(|text| {
            Uuid::parse_str(text)
                .map_err(|_| format!("payment_metadata[ledger_payment_id] `{text}` is not a UUID"))
        })
        .transpose()?;
    let available_on = field(record, columns.available_on)
        .map(|text| parse_time(text).ok_or_else(|| format!("available_on `{text}` is not a time")))
        .transpose()?;
    Ok(ReportRow {
        line_number,
        payout_id,
        balance_transaction_id: optional(columns.balance_transaction_id),
        currency,
        gross,
        fee,
        net,
        payment_intent_id: optional(columns.payment_intent_id),
        charge_id: optional(columns.charge_id)
            .or_else(|| by_category("charge"))
            .or_else(|| by_category(PARTIAL_CAPTURE_REVERSAL)),
        refund_id: optional(columns.refund_id).or_else(|| by_category("refund")),
        dispute_id: optional(columns.dispute_id).or_else(|| by_category("dispute")),
        ledger_payment_id,
        available_on,
        reporting_category: category,
    })
}

/// Stripe writes report times as `2026-11-20 00:00:00` (UTC in the `_utc` columns); RFC 3339,
/// a bare date and unix seconds are accepted too.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Some(time.and_utc());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|time| time.and_utc());
    }
    text.parse::<i64>()
        .ok()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<Row> {
        ReportReader::new(text.as_bytes())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn columns_are_found_by_name_in_any_order_with_extras() {
        let text = "net,extra,currency,gross,fee,reporting_category,automatic_payout_id,payment_intent_id,source_id\n\
                    96.80,x,usd,100.00,3.20,charge,po_1,pi_1,ch_1\n";
        let Row::Readable(row) = &rows(text)[0] else {
            panic!("readable")
        };
        assert_eq!(row.line_number, 2);
        assert_eq!(
            row.net.to_string(),
            Money::parse("96.80", row.currency).unwrap().to_string()
        );
        assert_eq!(row.charge_id.as_deref(), Some("ch_1"));
        assert_eq!(row.refund_id, None);
    }

    #[test]
    fn zero_decimal_currencies_keep_their_scale() {
        let text = "automatic_payout_id,reporting_category,currency,gross,fee,net\npo_1,charge,jpy,1000,36,964\npo_1,charge,jpy,1000.5,36,964.5\n";
        let parsed = rows(text);
        assert!(matches!(&parsed[0], Row::Readable(row) if row.gross.to_minor_units() == 1000));
        assert!(matches!(&parsed[1], Row::Invalid(row) if row.reason.starts_with("gross")));
    }

    #[test]
    fn a_file_without_the_report_columns_is_refused() {
        let error = ReportReader::new("id,amount\n1,2\n".as_bytes())
            .err()
            .unwrap();
        assert!(error.to_string().contains("automatic_payout_id"));
    }

    #[test]
    fn stripe_times_parse() {
        assert!(parse_time("2026-11-20 00:00:00").is_some());
        assert!(parse_time("2026-11-20T00:00:00Z").is_some());
        assert!(parse_time("1763596800").is_some());
        assert!(parse_time("next tuesday").is_none());
    }
}
