//! The exceptions a run records, built from plain data: their ids, their bounded texts and
//! the report's and the ledger's side of each difference.
//!
//! Ids are UUIDv5 of the run and a key naming the finding (`line:<n>`, `payout:<id>:<what>`,
//! `ledger:<payment>:<kind>:<item>`): a resumed import finds the same exception again under
//! the same id, and the run's rules record it only once.

use ledger_core::ids::{
    CaptureId, DisputeId, PaymentId, ReconciliationExceptionId, ReconciliationRunId, RefundId,
};
use ledger_core::payment::SettledItem;
use ledger_core::reconciliation::{
    ExceptionClass, LedgerSide, ReconciliationException, ReportSide,
};
use ledger_core::text::ShortText;
use uuid::Uuid;

use super::super::ledger_view::{LedgerRecord, Unsettled, CAPTURE, REFUND};
use super::super::report::{self, InvalidRow, ReportRow};

pub fn exception_id(run_id: ReconciliationRunId, key: &str) -> ReconciliationExceptionId {
    ReconciliationExceptionId::from_uuid(Uuid::new_v5(&run_id.as_uuid(), key.as_bytes()))
}

/// Free text cut to what an event may hold: a detail is for people, and a hostile file must
/// not bloat the log.
pub fn bounded_text(text: &str) -> ShortText {
    report::bounded_text(text, ledger_core::text::MAX_TEXT_LENGTH).unwrap_or_else(fallback_text)
}

/// Text that always parses, for the impossible case of an empty description.
fn fallback_text() -> ShortText {
    match ShortText::parse("unspecified") {
        Ok(text) => text,
        Err(_) => unreachable!("a non-empty constant is valid text"),
    }
}

/// A figure as text for an exception's side; `None` when it is not valid text (never for the
/// figures passed here, which are short and printable).
pub fn text_of(value: impl ToString) -> Option<ShortText> {
    ShortText::parse(value.to_string()).ok()
}

/// A row the reader could not make sense of: recorded at once, it never reaches matching.
pub fn invalid_row(run_id: ReconciliationRunId, row: InvalidRow) -> ReconciliationException {
    ReconciliationException {
        exception_id: exception_id(run_id, &format!("line:{}", row.line_number)),
        class: ExceptionClass::InvalidRow,
        detail: bounded_text(&format!(
            "line {} could not be read: {}",
            row.line_number, row.reason
        )),
        line_number: Some(row.line_number),
        payout_id: row.payout_id,
        payment_id: None,
        item: None,
        report: Some(row.report),
        ledger: None,
    }
}

/// The report's side of a line, as the file stated it.
pub fn report_side(line: &ReportRow) -> ReportSide {
    ReportSide {
        balance_transaction_id: line.balance_transaction_id.as_deref().and_then(text_of),
        reporting_category: text_of(&line.reporting_category),
        currency: text_of(line.currency.code()),
        gross: text_of(line.gross.amount()),
        fee: text_of(line.fee.amount()),
        net: text_of(line.net.amount()),
        available_on: line
            .available_on
            .and_then(|time| text_of(time.to_rfc3339())),
    }
}

/// The ledger's side of an item: its amount, the fee it knows (the batch's, else the one the
/// item carried) and the batch that settled it.
pub fn ledger_side(record: &LedgerRecord) -> LedgerSide {
    LedgerSide {
        currency: record.item.currency,
        amount: record.item.amount,
        fee: record
            .item
            .settlement
            .as_ref()
            .map(|settled| settled.fee)
            .or(record.item.known_fee),
        batch_id: record
            .item
            .settlement
            .as_ref()
            .map(|settled| settled.batch_id),
        recorded_at: Some(record.recorded_at),
    }
}

/// An item the ledger holds unsettled past its expected availability that no payout of the
/// report took: the gateway kept money the ledger expects in the bank.
pub fn missing_from_payout(
    run_id: ReconciliationRunId,
    item: &Unsettled,
    availability_days: u32,
) -> ReconciliationException {
    let settled = match item.kind {
        CAPTURE => CaptureId::parse(item.item_id.clone())
            .ok()
            .map(SettledItem::Capture),
        REFUND => RefundId::parse(item.item_id.clone())
            .ok()
            .map(SettledItem::Refund),
        _ => DisputeId::parse(item.item_id.clone())
            .ok()
            .map(SettledItem::Dispute),
    };
    ReconciliationException {
        exception_id: exception_id(
            run_id,
            &format!("ledger:{}:{}:{}", item.payment_id, item.kind, item.item_id),
        ),
        class: ExceptionClass::MissingFromPayout,
        detail: bounded_text(&format!(
            "the ledger recorded {} {} of {} on {}, expected in a payout within {} days, but no payout of this report includes it",
            item.kind.to_lowercase(),
            item.item_id,
            item.amount,
            item.recorded_at.format("%Y-%m-%d"),
            availability_days
        )),
        line_number: None,
        payout_id: None,
        payment_id: Some(PaymentId::from_uuid(item.payment_id)),
        item: settled,
        report: None,
        ledger: Some(LedgerSide {
            currency: item.currency,
            amount: item.amount,
            fee: None,
            batch_id: None,
            recorded_at: Some(item.recorded_at),
        }),
    }
}
