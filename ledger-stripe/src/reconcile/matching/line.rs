//! One report line against what the ledger holds for the item it names.
//!
//! The line's figures and ids become a `ledger_core::reconciliation::ReportLine`, the item is
//! found in what was looked up for the line's page, and `classify_line` gives the verdict. What
//! is Stripe's and not the core's lives here: which payment a line names (metadata, webhook
//! link or the PaymentIntent's UUIDv5), the automatic capture's id, and partial-capture
//! reversals, which Stripe reports as lines of their own but the ledger holds as one capture.

use std::collections::HashMap;

use ledger_core::ids::{CaptureId, DisputeId, PaymentId, ReconciliationRunId, RefundId};
use ledger_core::money::MoneyError;
use ledger_core::payment::decide::AUTOMATIC_CAPTURE_ID;
use ledger_core::payment::SettledItem;
use ledger_core::reconciliation::{
    classify_line, ExceptionClass, LineVerdict, ReconciliationException, ReportCategory, ReportLine,
};
use ledger_core::settlement::{BatchItem, MAX_SETTLEMENT_ITEMS};
use ledger_core::{Money, PositiveMoney};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::super::error::ReconcileError;
use super::super::ledger_view::{ItemKey, LedgerRecord, CAPTURE, DISPUTE, REFUND};
use super::super::report::{ReportRow, PARTIAL_CAPTURE_REVERSAL};
use super::super::staging::Reversals;
use super::findings::{bounded_text, exception_id, ledger_side, report_side};
use super::payout::{PayoutTally, RunTally};

/// What was looked up for a page of lines: plain data, so matching needs no database.
#[derive(Clone, Copy)]
pub struct LookedUp<'a> {
    /// PaymentIntent id to the ledger payment a webhook linked it to.
    pub links: &'a HashMap<String, Uuid>,
    /// The ledger's items of every payment the page names.
    pub ledger: &'a HashMap<ItemKey, LedgerRecord>,
    /// The partial-capture reversals of the page's charges.
    pub reversals: &'a Reversals,
}

/// Matches one line of the payout `payout` tallies. Returns the exception the line is, if it
/// is one; a matched line that the payout's batch does not hold yet becomes one of the
/// payout's batch items.
pub fn match_line(
    run_id: ReconciliationRunId,
    run: &mut RunTally,
    payout: &mut PayoutTally,
    line: &ReportRow,
    looked_up: LookedUp<'_>,
) -> Result<Option<ReconciliationException>, ReconcileError> {
    let LookedUp {
        links,
        ledger,
        reversals,
    } = looked_up;
    run.lines_matched_or_not += 1;
    payout.lines += 1;
    run.currencies.insert(line.currency.code().to_owned());
    if line.reporting_category == PARTIAL_CAPTURE_REVERSAL && line.currency == payout.currency {
        let charge_here = line
            .charge_id
            .as_ref()
            .is_some_and(|charge| reversals.charges_with_line.contains(charge));
        if charge_here {
            // Matched as part of its charge's capture, which carries the batch item.
            run.matched_lines += 1;
            payout.add_to_totals(line)?;
            return Ok(None);
        }
    }
    let (gross, fee, net) = net_of_reversals(line, reversals)?;
    let payment = payment_of(line, links);
    let (category, mut item, key) = item_of(line, payment);
    let mut record = key.as_ref().and_then(|key| ledger.get(key));
    // An automatically captured payment holds its one capture under the ledger's own id, not
    // the charge's (see `gateway::mapping`): the charge line settles that capture.
    if let (None, Some((payment, CAPTURE, _))) = (record, &key) {
        let automatic = (*payment, CAPTURE, AUTOMATIC_CAPTURE_ID.to_owned());
        if let Some(found) = ledger.get(&automatic) {
            record = Some(found);
            item = CaptureId::parse(AUTOMATIC_CAPTURE_ID)
                .ok()
                .map(SettledItem::Capture);
        }
    }
    let verdict = if line.currency != payout.currency {
        LineVerdict::Exception {
            class: ExceptionClass::CurrencyMismatch,
            detail: format!(
                "the payout is in {}, this line in {}",
                payout.currency, line.currency
            ),
        }
    } else {
        let report_line = ReportLine {
            line_number: line.line_number,
            payout_id: line.payout_id.clone(),
            category,
            currency: line.currency,
            gross,
            fee,
            net,
            payment_id: payment.map(PaymentId::from_uuid),
            item: item.clone(),
            available_on: line.available_on,
        };
        classify_line(
            &report_line,
            record.map(|record| &record.item),
            payout.batch_id,
        )
    };
    payout.add_to_totals(line)?;
    match verdict {
        LineVerdict::Matched { settled } => {
            run.matched_lines += 1;
            if let Some(record) = record {
                run.merchants.insert(record.merchant_id.clone());
                payout
                    .merchant
                    .get_or_insert_with(|| record.merchant_id.clone());
            }
            if !settled {
                payout.unsettled_matches += 1;
                if let (Some(payment), Some(item)) = (payment, item) {
                    add_batch_item(payout, PaymentId::from_uuid(payment), item, gross, fee);
                }
            }
            Ok(None)
        }
        LineVerdict::Exception { class, detail } => {
            payout.exceptions += 1;
            Ok(Some(ReconciliationException {
                exception_id: exception_id(run_id, &format!("line:{}", line.line_number)),
                class,
                detail: bounded_text(&format!("line {}: {detail}", line.line_number)),
                line_number: Some(line.line_number),
                payout_id: Some(line.payout_id.clone()),
                payment_id: payment.map(PaymentId::from_uuid),
                item,
                report: Some(report_side(line)),
                ledger: record.map(ledger_side),
            }))
        }
    }
}

/// A matched line the batch does not hold yet settles its item in the payout's batch; past
/// the batch's limit the payout is refused as a whole rather than recorded in part.
fn add_batch_item(
    payout: &mut PayoutTally,
    payment_id: PaymentId,
    item: SettledItem,
    gross: Money,
    fee: Money,
) {
    // A matched line's gross equals the ledger's positive amount; zero cannot match one.
    let Ok(gross) = PositiveMoney::new(gross.abs()) else {
        return;
    };
    if payout.items.len() >= MAX_SETTLEMENT_ITEMS {
        payout.too_many_items = true;
    } else {
        payout.items.push(BatchItem {
            payment_id,
            item,
            gross,
            fee,
        });
    }
}

/// The ledger payment a line names: the report's metadata column, else the payment a webhook
/// linked the PaymentIntent to, else the UUIDv5 of the PaymentIntent id (as webhooks map it).
pub fn payment_of(line: &ReportRow, links: &HashMap<String, Uuid>) -> Option<Uuid> {
    line.ledger_payment_id.or_else(|| {
        let intent = line.payment_intent_id.as_deref()?;
        Some(links.get(intent).copied().unwrap_or_else(|| {
            crate::gateway::mapping::payment_id_for_payment_intent(intent).as_uuid()
        }))
    })
}

/// The category and the ledger item a line names, and the key to look the item up by.
pub fn item_of(
    line: &ReportRow,
    payment: Option<Uuid>,
) -> (ReportCategory, Option<SettledItem>, Option<ItemKey>) {
    let (category, kind, item) = match line.reporting_category.as_str() {
        "charge" => (
            ReportCategory::Charge,
            CAPTURE,
            line.charge_id
                .as_deref()
                .and_then(|id| CaptureId::parse(id).ok())
                .map(SettledItem::Capture),
        ),
        "refund" => (
            ReportCategory::Refund,
            REFUND,
            line.refund_id
                .as_deref()
                .and_then(|id| RefundId::parse(id).ok())
                .map(SettledItem::Refund),
        ),
        "dispute" => (
            ReportCategory::Dispute,
            DISPUTE,
            line.dispute_id
                .as_deref()
                .and_then(|id| DisputeId::parse(id).ok())
                .map(SettledItem::Dispute),
        ),
        other => return (ReportCategory::Other(other.to_owned()), None, None),
    };
    let key = match (payment, &item) {
        (Some(payment), Some(item)) => Some((payment, kind, item.item_id().to_owned())),
        _ => None,
    };
    (category, item, key)
}

/// A charge line's figures with its partial-capture reversals taken off: the capture. Sums
/// past the money bound are an error, never the charge's raw figures: those would be matched
/// as if there were no reversal.
pub fn net_of_reversals(
    line: &ReportRow,
    reversals: &Reversals,
) -> Result<(Money, Money, Money), ReconcileError> {
    let raw = (line.gross, line.fee, line.net);
    let Some((charge, (gross, fee, net))) = line
        .charge_id
        .as_ref()
        .filter(|_| line.reporting_category == "charge")
        .and_then(|charge| Some((charge, reversals.sums.get(charge)?)))
    else {
        return Ok(raw);
    };
    let add = |figure: &str, amount: Money, reversed: Decimal| {
        let overflow = |source| ReconcileError::AmountOverflow {
            what: format!(
                "the {figure} of charge {charge} (line {}) with its partial-capture reversals",
                line.line_number
            ),
            source,
        };
        let currency = amount.currency();
        let sum = amount
            .amount()
            .checked_add(reversed)
            .ok_or(MoneyError::OutOfRange {
                amount: reversed,
                currency,
                max: Money::MAX_MAJOR_UNITS,
            })
            .map_err(overflow)?;
        Money::new(sum, currency).map_err(overflow)
    };
    Ok((
        add("gross", line.gross, *gross)?,
        add("fee", line.fee, *fee)?,
        add("net", line.net, *net)?,
    ))
}
