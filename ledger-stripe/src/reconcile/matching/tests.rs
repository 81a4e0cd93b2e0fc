//! Every matching case on plain data: no database, no runtime.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use ledger_core::ids::{Environment, PayoutId, ReconciliationRunId, SettlementBatchId};
use ledger_core::payment::SettledItem;
use ledger_core::reconciliation::{
    ExceptionClass, LedgerItem, LedgerSettlement, PayoutOutcome, ReconciliationException,
};
use ledger_core::{Currency, DomainError, Money};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::super::error::ReconcileError;
use super::super::ledger_view::{ItemKey, LedgerRecord, PayoutKnowledge, CAPTURE, DISPUTE};
use super::super::report::{ReportRow, PARTIAL_CAPTURE_REVERSAL};
use super::super::staging::Reversals;
use super::*;

const PAYMENT: Uuid = Uuid::from_u128(1);

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::USD).unwrap()
}

fn run_id() -> ReconciliationRunId {
    ReconciliationRunId::from_uuid(Uuid::from_u128(99))
}

fn line(number: u64, category: &str, gross: &str, fee: &str, net: &str) -> ReportRow {
    ReportRow {
        line_number: number,
        payout_id: PayoutId::parse("po_1").unwrap(),
        balance_transaction_id: Some(format!("txn_{number}")),
        reporting_category: category.to_owned(),
        currency: Currency::USD,
        gross: usd(gross),
        fee: usd(fee),
        net: usd(net),
        payment_intent_id: None,
        charge_id: Some("ch_1".to_owned()),
        refund_id: None,
        dispute_id: None,
        ledger_payment_id: Some(PAYMENT),
        available_on: None,
    }
}

fn charge(gross: &str, fee: &str, net: &str) -> ReportRow {
    line(2, "charge", gross, fee, net)
}

fn record(amount: &str) -> LedgerRecord {
    LedgerRecord {
        item: LedgerItem {
            currency: Currency::USD,
            amount: usd(amount),
            known_fee: None,
            unsettleable: None,
            settlement: None,
        },
        merchant_id: "merchant_a".to_owned(),
        recorded_at: Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap(),
    }
}

fn capture_key(id: &str) -> ItemKey {
    (PAYMENT, CAPTURE, id.to_owned())
}

fn payout(knowledge: PayoutKnowledge) -> PayoutTally {
    PayoutTally::new(Environment::Test, "po_1", &charge("0", "0", "0"), knowledge)
}

/// The ledger's view of one page, and what it is matched with.
#[derive(Default)]
struct Page {
    links: HashMap<String, Uuid>,
    ledger: HashMap<ItemKey, LedgerRecord>,
    reversals: Reversals,
}

impl Page {
    fn with(mut self, key: ItemKey, record: LedgerRecord) -> Page {
        self.ledger.insert(key, record);
        self
    }

    fn match_line(
        &self,
        run: &mut RunTally,
        payout: &mut PayoutTally,
        line: &ReportRow,
    ) -> Result<Option<ReconciliationException>, ReconcileError> {
        let looked_up = LookedUp {
            links: &self.links,
            ledger: &self.ledger,
            reversals: &self.reversals,
        };
        match_line(run_id(), run, payout, line, looked_up)
    }

    /// Matches one line on a fresh payout; the class of its exception, if any.
    fn class_of(&self, line: &ReportRow) -> Option<ExceptionClass> {
        let mut payout = payout(PayoutKnowledge::default());
        self.match_line(&mut RunTally::default(), &mut payout, line)
            .unwrap()
            .map(|exception| exception.class)
    }
}

fn settled_in(batch_id: SettlementBatchId, fee: &str, amount: &str) -> LedgerRecord {
    let mut record = record(amount);
    record.item.settlement = Some(LedgerSettlement {
        batch_id,
        fee: usd(fee),
    });
    record
}

#[test]
fn a_line_equal_to_an_unsettled_capture_matches_and_becomes_a_batch_item() {
    let page = Page::default().with(capture_key("ch_1"), record("100.00"));
    let (mut run, mut payout) = (RunTally::default(), payout(PayoutKnowledge::default()));
    let found = page
        .match_line(&mut run, &mut payout, &charge("100.00", "3.20", "96.80"))
        .unwrap();
    assert_eq!(found, None);
    assert_eq!((run.lines_matched_or_not, run.matched_lines), (1, 1));
    assert!(run.merchants.contains("merchant_a") && run.currencies.contains("USD"));
    assert_eq!(payout.merchant.as_deref(), Some("merchant_a"));
    assert_eq!(
        (payout.lines, payout.unsettled_matches, payout.exceptions),
        (1, 1, 0)
    );
    assert_eq!(payout.items.len(), 1);
    assert_eq!(payout.items[0].gross.money(), usd("100.00"));
    assert_eq!(payout.items[0].fee, usd("3.20"));
    assert_eq!(
        (payout.gross, payout.fees, payout.net),
        (usd("100.00"), usd("3.20"), usd("96.80"))
    );
}

#[test]
fn a_line_the_payouts_batch_already_settled_matches_without_a_new_item() {
    let batch = batch_id_for_payout(Environment::Test, "po_1");
    let page = Page::default().with(capture_key("ch_1"), settled_in(batch, "3.20", "100.00"));
    let mut payout = payout(PayoutKnowledge::default());
    let found = page
        .match_line(
            &mut RunTally::default(),
            &mut payout,
            &charge("100.00", "3.20", "96.80"),
        )
        .unwrap();
    assert_eq!(found, None);
    assert!(payout.items.is_empty());
    assert_eq!(payout.unsettled_matches, 0);
}

#[test]
fn each_difference_from_the_ledger_is_its_own_exception() {
    let line = charge("100.00", "3.20", "96.80");
    let other_batch = SettlementBatchId::from_uuid(Uuid::from_u128(8));
    let payouts_batch = batch_id_for_payout(Environment::Test, "po_1");
    let cases = [
        (Page::default(), ExceptionClass::MissingFromLedger),
        (
            Page::default().with(capture_key("ch_1"), record("99.00")),
            ExceptionClass::AmountMismatch,
        ),
        (
            Page::default().with(
                capture_key("ch_1"),
                settled_in(other_batch, "3.20", "100.00"),
            ),
            ExceptionClass::SettledElsewhere,
        ),
        (
            Page::default().with(
                capture_key("ch_1"),
                settled_in(payouts_batch, "2.90", "100.00"),
            ),
            ExceptionClass::FeeMismatch,
        ),
    ];
    for (page, class) in cases {
        assert_eq!(page.class_of(&line), Some(class));
    }
}

#[test]
fn a_dispute_fee_other_than_the_ledgers_is_a_fee_mismatch() {
    let mut disputed = record("40.00");
    disputed.item.known_fee = Some(usd("15.00"));
    let page = Page::default().with((PAYMENT, DISPUTE, "dp_1".to_owned()), disputed);
    let mut line = line(3, "dispute", "-40.00", "20.00", "-60.00");
    line.dispute_id = Some("dp_1".to_owned());
    assert_eq!(page.class_of(&line), Some(ExceptionClass::FeeMismatch));
}

#[test]
fn a_line_in_another_currency_than_its_payout_is_a_currency_mismatch_and_not_totalled() {
    let page = Page::default().with(capture_key("ch_1"), record("100.00"));
    let mut euros = charge("100.00", "3.20", "96.80");
    euros.currency = Currency::EUR;
    euros.gross = Money::parse("100.00", Currency::EUR).unwrap();
    euros.fee = Money::parse("3.20", Currency::EUR).unwrap();
    euros.net = Money::parse("96.80", Currency::EUR).unwrap();
    let mut payout = payout(PayoutKnowledge::default());
    let found = page
        .match_line(&mut RunTally::default(), &mut payout, &euros)
        .unwrap()
        .unwrap();
    assert_eq!(found.class, ExceptionClass::CurrencyMismatch);
    assert_eq!(payout.exceptions, 1);
    assert_eq!(payout.gross, usd("0.00"));
}

#[test]
fn a_category_the_ledger_has_no_item_for_is_unsupported() {
    let page = Page::default();
    assert_eq!(
        page.class_of(&line(4, "adjustment", "-1.00", "0.00", "-1.00")),
        Some(ExceptionClass::UnsupportedCategory)
    );
}

#[test]
fn an_exception_carries_both_sides_and_an_id_stable_across_imports() {
    let page = Page::default().with(capture_key("ch_1"), record("99.00"));
    let line = charge("100.00", "3.20", "96.80");
    let first = page.class_of(&line);
    assert_eq!(first, Some(ExceptionClass::AmountMismatch));
    let found = |page: &Page| {
        page.match_line(
            &mut RunTally::default(),
            &mut payout(PayoutKnowledge::default()),
            &line,
        )
        .unwrap()
        .unwrap()
    };
    let (once, again) = (found(&page), found(&page));
    assert_eq!(once.exception_id, again.exception_id);
    assert_eq!(once.line_number, Some(2));
    assert_eq!(once.ledger.map(|ledger| ledger.amount), Some(usd("99.00")));
    assert!(once.report.and_then(|report| report.gross).is_some());
}

#[test]
fn a_charge_line_settles_the_automatic_capture_of_its_payment() {
    let page = Page::default().with(capture_key("automatic"), record("100.00"));
    let mut payout = payout(PayoutKnowledge::default());
    let found = page
        .match_line(
            &mut RunTally::default(),
            &mut payout,
            &charge("100.00", "3.20", "96.80"),
        )
        .unwrap();
    assert_eq!(found, None);
    assert_eq!(payout.items[0].item.item_id(), "automatic");
}

#[test]
fn a_payment_intent_names_the_linked_payment_else_its_own_uuid() {
    let mut line = charge("100.00", "3.20", "96.80");
    line.ledger_payment_id = None;
    line.payment_intent_id = Some("pi_1".to_owned());
    let linked = Uuid::from_u128(5);
    let links = HashMap::from([("pi_1".to_owned(), linked)]);
    assert_eq!(line::payment_of(&line, &links), Some(linked));
    assert_eq!(
        line::payment_of(&line, &HashMap::new()),
        Some(crate::gateway::mapping::payment_id_for_payment_intent("pi_1").as_uuid())
    );
    line.payment_intent_id = None;
    assert_eq!(line::payment_of(&line, &links), None);
}

#[test]
fn a_partial_capture_is_its_charge_less_the_reversal() {
    let mut page = Page::default().with(capture_key("ch_1"), record("60.00"));
    page.reversals.sums.insert(
        "ch_1".to_owned(),
        (
            Decimal::new(-4000, 2),
            Decimal::ZERO,
            Decimal::new(-4000, 2),
        ),
    );
    page.reversals.charges_with_line.insert("ch_1".to_owned());
    let (mut run, mut payout) = (RunTally::default(), payout(PayoutKnowledge::default()));
    let charge = charge("100.00", "2.00", "98.00");
    assert_eq!(
        page.match_line(&mut run, &mut payout, &charge).unwrap(),
        None
    );
    let reversal = line(3, PARTIAL_CAPTURE_REVERSAL, "-40.00", "0.00", "-40.00");
    assert_eq!(
        page.match_line(&mut run, &mut payout, &reversal).unwrap(),
        None
    );
    assert_eq!(run.matched_lines, 2);
    assert_eq!(payout.items[0].gross.money(), usd("60.00"));
    assert_eq!(payout.net, usd("58.00"));
}

#[test]
fn reversals_past_the_largest_amount_stop_the_match_instead_of_being_ignored() {
    let mut page = Page::default().with(capture_key("ch_1"), record("60.00"));
    let huge = Decimal::from(Money::MAX_MAJOR_UNITS);
    page.reversals
        .sums
        .insert("ch_1".to_owned(), (huge, Decimal::ZERO, huge));
    let mut payout = payout(PayoutKnowledge::default());
    let result = page.match_line(
        &mut RunTally::default(),
        &mut payout,
        &charge("100.00", "2.00", "98.00"),
    );
    assert!(
        matches!(&result, Err(ReconcileError::AmountOverflow { what, .. }) if what.contains("ch_1")),
        "{result:?}"
    );
}

#[test]
fn a_payout_total_past_the_largest_amount_is_an_error_not_a_wrong_total() {
    let mut payout = payout(PayoutKnowledge::default());
    let big = "600000000000.00";
    payout.add_to_totals(&charge(big, "0.00", big)).unwrap();
    let result = payout.add_to_totals(&charge(big, "0.00", big));
    assert!(
        matches!(&result, Err(ReconcileError::AmountOverflow { what, .. }) if what.contains("po_1")),
        "{result:?}"
    );
    // The totals stay those of the lines that were added.
    assert_eq!(payout.gross, usd(big));
}

#[test]
fn a_clean_payout_is_proven() {
    let page = Page::default().with(capture_key("ch_1"), record("100.00"));
    let mut payout = payout(PayoutKnowledge::default());
    page.match_line(
        &mut RunTally::default(),
        &mut payout,
        &charge("100.00", "3.20", "96.80"),
    )
    .unwrap();
    assert!(payout.judge(run_id()).is_empty());
    let verdict = payout.verdict(true);
    assert_eq!(verdict.outcome, PayoutOutcome::Proven);
    assert_eq!((verdict.line_count, verdict.net), (1, usd("96.80")));
    assert!(verdict.batch_recorded);
}

#[test]
fn a_payout_whose_total_differs_from_the_ledgers_payout_is_unproven() {
    let knowledge = PayoutKnowledge {
        payout_amount: Some(usd("90.00")),
        ..PayoutKnowledge::default()
    };
    let page = Page::default().with(capture_key("ch_1"), record("100.00"));
    let mut payout = payout(knowledge);
    page.match_line(
        &mut RunTally::default(),
        &mut payout,
        &charge("100.00", "3.20", "96.80"),
    )
    .unwrap();
    let findings = payout.judge(run_id());
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].class, ExceptionClass::PayoutTotalMismatch);
    assert_eq!(
        findings[0].ledger.as_ref().map(|ledger| ledger.amount),
        Some(usd("90.00"))
    );
    assert_eq!(payout.verdict(false).outcome, PayoutOutcome::Unproven);
}

#[test]
fn lines_the_ledgers_batch_lacks_make_the_payout_unproven() {
    let batch = Uuid::from_u128(8);
    let knowledge = PayoutKnowledge {
        batch_id: Some(batch),
        batch_net: Some(usd("96.80")),
        ..PayoutKnowledge::default()
    };
    let page = Page::default().with(capture_key("ch_1"), record("100.00"));
    let mut payout = payout(knowledge);
    assert_eq!(payout.batch_id, SettlementBatchId::from_uuid(batch));
    page.match_line(
        &mut RunTally::default(),
        &mut payout,
        &charge("100.00", "3.20", "96.80"),
    )
    .unwrap();
    let findings = payout.judge(run_id());
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].detail.as_str().contains("lacks 1"));
    assert_eq!(payout.exceptions, 1);
}

#[test]
fn a_payout_larger_than_one_batch_is_refused_whole() {
    let mut payout = payout(PayoutKnowledge::default());
    payout.too_many_items = true;
    let findings = payout.judge(run_id());
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].class, ExceptionClass::BatchRefused);
}

#[test]
fn a_batch_the_rules_refuse_names_the_rule() {
    let mut payout = payout(PayoutKnowledge::default());
    let finding = payout.refused(run_id(), &DomainError::SettlementBatchEmpty);
    assert_eq!(finding.class, ExceptionClass::BatchRefused);
    assert!(finding
        .detail
        .as_str()
        .contains(DomainError::SettlementBatchEmpty.rule()));
    assert_eq!(payout.verdict(false).outcome, PayoutOutcome::Unproven);
}

#[test]
fn an_unsettled_item_past_its_availability_names_the_item() {
    let item = super::super::ledger_view::Unsettled {
        payment_id: PAYMENT,
        kind: CAPTURE,
        item_id: "ch_9".to_owned(),
        merchant_id: "merchant_a".to_owned(),
        currency: Currency::USD,
        amount: usd("12.00"),
        recorded_at: Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap(),
    };
    let finding = findings::missing_from_payout(run_id(), &item, 7);
    assert_eq!(finding.class, ExceptionClass::MissingFromPayout);
    assert!(matches!(finding.item, Some(SettledItem::Capture(_))));
    assert!(finding.detail.as_str().contains("within 7 days"));
}
