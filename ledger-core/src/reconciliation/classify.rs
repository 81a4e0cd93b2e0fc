//! One report line against the ledger: matched, or which exception and why.

use chrono::{DateTime, Utc};

use super::event::ExceptionClass;
use crate::currency::Currency;
use crate::ids::{PaymentId, PayoutId, SettlementBatchId};
use crate::money::Money;
use crate::payment::SettledItem;

/// What kind of money movement a report line is, as far as the ledger can settle it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportCategory {
    /// Money in: a capture.
    Charge,
    /// Money out: a refund.
    Refund,
    /// Money out: funds withdrawn for a dispute.
    Dispute,
    /// Anything the ledger has no item for (fees billed separately, adjustments, reversals):
    /// the gateway's name for it.
    Other(String),
}

impl ReportCategory {
    /// The sign the gateway gives the gross of this category: money in is positive.
    fn gross_is_positive(&self) -> bool {
        matches!(self, ReportCategory::Charge)
    }
}

/// A report line the importer could read: typed amounts, and the ledger item it names when
/// the report says which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    pub line_number: u64,
    pub payout_id: PayoutId,
    pub category: ReportCategory,
    pub currency: Currency,
    /// Signed as the gateway signs it: negative for money leaving the merchant.
    pub gross: Money,
    /// What the gateway kept: positive for a fee charged.
    pub fee: Money,
    pub net: Money,
    pub payment_id: Option<PaymentId>,
    pub item: Option<SettledItem>,
    pub available_on: Option<DateTime<Utc>>,
}

/// What the ledger holds for the item a line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerItem {
    pub currency: Currency,
    /// The captured, refunded or disputed amount: always positive.
    pub amount: Money,
    /// The fee the ledger already knows for the item (a dispute's fee), if any.
    pub known_fee: Option<Money>,
    /// Why the ledger cannot settle the item yet (a refund still pending), if it cannot.
    pub unsettleable: Option<String>,
    pub settlement: Option<LedgerSettlement>,
}

/// The batch that already settled an item, and the fee it recorded for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettlement {
    pub batch_id: SettlementBatchId,
    pub fee: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineVerdict {
    /// The ledger agrees with the line; `settled` when the payout's batch already holds it.
    Matched { settled: bool },
    Exception {
        class: ExceptionClass,
        detail: String,
    },
}

impl LineVerdict {
    fn exception(class: ExceptionClass, detail: String) -> LineVerdict {
        LineVerdict::Exception { class, detail }
    }
}

/// Classifies one line. `ledger` is the item the line names, if the ledger has it;
/// `payout_batch` is the batch that settles the line's payout in the ledger.
pub fn classify_line(
    line: &ReportLine,
    ledger: Option<&LedgerItem>,
    payout_batch: SettlementBatchId,
) -> LineVerdict {
    if let ReportCategory::Other(name) = &line.category {
        return LineVerdict::exception(
            ExceptionClass::UnsupportedCategory,
            format!(
                "the ledger records no `{name}` items, so this line cannot be matched: account for it by hand and resolve it"
            ),
        );
    }
    if line.gross.checked_sub(line.fee).ok() != Some(line.net) {
        return LineVerdict::exception(
            ExceptionClass::InvalidRow,
            format!(
                "gross {} minus fee {} is not the net {} the report states",
                line.gross, line.fee, line.net
            ),
        );
    }
    let (Some(_), Some(item)) = (line.payment_id, &line.item) else {
        return LineVerdict::exception(
            ExceptionClass::MissingFromLedger,
            "the line names no payment the ledger could look up".to_owned(),
        );
    };
    let Some(ledger) = ledger else {
        return LineVerdict::exception(
            ExceptionClass::MissingFromLedger,
            format!(
                "the ledger has no {} {}: the gateway's webhook may never have arrived",
                item.kind(),
                item.item_id()
            ),
        );
    };
    if ledger.currency != line.currency {
        return LineVerdict::exception(
            ExceptionClass::CurrencyMismatch,
            format!(
                "the report says {}, the ledger recorded the {} in {}",
                line.currency,
                item.kind(),
                ledger.currency
            ),
        );
    }
    let sign_agrees = line.gross.is_positive() == line.category.gross_is_positive();
    if !sign_agrees || line.gross.abs() != ledger.amount {
        return LineVerdict::exception(
            ExceptionClass::AmountMismatch,
            format!(
                "the report's gross is {}, the ledger recorded a {} of {}",
                line.gross,
                item.kind(),
                ledger.amount
            ),
        );
    }
    if let Some(known) = ledger.known_fee.filter(|known| *known != line.fee) {
        return LineVerdict::exception(
            ExceptionClass::FeeMismatch,
            format!(
                "the report's fee is {}, the ledger recorded a fee of {known} for this {}",
                line.fee,
                item.kind()
            ),
        );
    }
    match &ledger.settlement {
        None if ledger.unsettleable.is_some() => LineVerdict::exception(
            ExceptionClass::MissingFromLedger,
            format!(
                "the ledger cannot settle {} {} yet: {}",
                item.kind(),
                item.item_id(),
                ledger.unsettleable.as_deref().unwrap_or_default()
            ),
        ),
        None => {
            if line.fee.is_negative() {
                return LineVerdict::exception(
                    ExceptionClass::FeeMismatch,
                    format!(
                        "the report returns a fee of {}; a settlement item's fee cannot be negative",
                        line.fee.negate()
                    ),
                );
            }
            LineVerdict::Matched { settled: false }
        }
        Some(settlement) if settlement.batch_id != payout_batch => LineVerdict::exception(
            ExceptionClass::SettledElsewhere,
            format!(
                "the ledger settled this {} in batch {}, not in the batch of payout {}",
                item.kind(),
                settlement.batch_id,
                line.payout_id
            ),
        ),
        Some(settlement) if settlement.fee != line.fee => LineVerdict::exception(
            ExceptionClass::FeeMismatch,
            format!(
                "the report's fee is {}, the ledger's batch recorded {}",
                line.fee, settlement.fee
            ),
        ),
        Some(_) => LineVerdict::Matched { settled: true },
    }
}

/// A payout whose report lines do not add up to the amount the ledger knows it paid.
pub fn payout_total_exception(report_net: Money, ledger_amount: Option<Money>) -> Option<String> {
    let ledger_amount = ledger_amount?;
    (ledger_amount != report_net).then(|| {
        format!(
            "the payout's lines add up to {report_net}, the payout the ledger knows is {ledger_amount}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CaptureId;

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::parse("USD").unwrap()).unwrap()
    }

    fn batch() -> SettlementBatchId {
        SettlementBatchId::from_uuid(uuid::Uuid::from_u128(7))
    }

    fn charge(gross: &str, fee: &str, net: &str) -> ReportLine {
        ReportLine {
            line_number: 2,
            payout_id: PayoutId::parse("po_1").unwrap(),
            category: ReportCategory::Charge,
            currency: Currency::parse("USD").unwrap(),
            gross: usd(gross),
            fee: usd(fee),
            net: usd(net),
            payment_id: Some(PaymentId::from_uuid(uuid::Uuid::from_u128(1))),
            item: Some(SettledItem::Capture(CaptureId::parse("ch_1").unwrap())),
            available_on: None,
        }
    }

    fn captured(amount: &str) -> LedgerItem {
        LedgerItem {
            currency: Currency::parse("USD").unwrap(),
            amount: usd(amount),
            known_fee: None,
            unsettleable: None,
            settlement: None,
        }
    }

    fn class_of(verdict: LineVerdict) -> Option<ExceptionClass> {
        match verdict {
            LineVerdict::Matched { .. } => None,
            LineVerdict::Exception { class, .. } => Some(class),
        }
    }

    #[test]
    fn a_line_equal_to_the_ledger_matches() {
        let verdict = classify_line(
            &charge("100.00", "3.20", "96.80"),
            Some(&captured("100.00")),
            batch(),
        );
        assert_eq!(verdict, LineVerdict::Matched { settled: false });
    }

    #[test]
    fn each_difference_gets_its_class() {
        let line = charge("100.00", "3.20", "96.80");
        assert_eq!(
            class_of(classify_line(&line, None, batch())),
            Some(ExceptionClass::MissingFromLedger)
        );
        assert_eq!(
            class_of(classify_line(&line, Some(&captured("99.00")), batch())),
            Some(ExceptionClass::AmountMismatch)
        );
        let euros = LedgerItem {
            currency: Currency::parse("EUR").unwrap(),
            amount: Money::parse("100.00", Currency::parse("EUR").unwrap()).unwrap(),
            known_fee: None,
            unsettleable: None,
            settlement: None,
        };
        assert_eq!(
            class_of(classify_line(&line, Some(&euros), batch())),
            Some(ExceptionClass::CurrencyMismatch)
        );
        let settled_with_other_fee = LedgerItem {
            settlement: Some(LedgerSettlement {
                batch_id: batch(),
                fee: usd("2.90"),
            }),
            ..captured("100.00")
        };
        assert_eq!(
            class_of(classify_line(&line, Some(&settled_with_other_fee), batch())),
            Some(ExceptionClass::FeeMismatch)
        );
        let settled_elsewhere = LedgerItem {
            settlement: Some(LedgerSettlement {
                batch_id: SettlementBatchId::from_uuid(uuid::Uuid::from_u128(8)),
                fee: usd("3.20"),
            }),
            ..captured("100.00")
        };
        assert_eq!(
            class_of(classify_line(&line, Some(&settled_elsewhere), batch())),
            Some(ExceptionClass::SettledElsewhere)
        );
    }

    #[test]
    fn a_refund_must_take_money_out() {
        let mut line = charge("25.00", "0.00", "25.00");
        line.category = ReportCategory::Refund;
        assert_eq!(
            class_of(classify_line(&line, Some(&captured("25.00")), batch())),
            Some(ExceptionClass::AmountMismatch)
        );
        let mut line = charge("-25.00", "0.00", "-25.00");
        line.category = ReportCategory::Refund;
        assert_eq!(
            classify_line(&line, Some(&captured("25.00")), batch()),
            LineVerdict::Matched { settled: false }
        );
    }

    #[test]
    fn a_line_whose_net_does_not_add_up_is_invalid() {
        let verdict = classify_line(
            &charge("100.00", "3.20", "97.00"),
            Some(&captured("100.00")),
            batch(),
        );
        assert_eq!(class_of(verdict), Some(ExceptionClass::InvalidRow));
    }

    #[test]
    fn a_payout_total_differs_only_when_the_ledger_knows_the_payout() {
        assert_eq!(payout_total_exception(usd("96.80"), None), None);
        assert_eq!(
            payout_total_exception(usd("96.80"), Some(usd("96.80"))),
            None
        );
        assert!(payout_total_exception(usd("96.80"), Some(usd("90.00"))).is_some());
    }
}
