//! One payout's tally and its verdict.
//!
//! Lines add to the payout's report totals and, when matched but not yet settled, to the batch
//! that would settle them. When the last line is in, the payout is judged: its total against
//! the payout the ledger knows, its lines against the ledger's batch, its size against a
//! batch's limit. A payout with no finding is proven, and only a proven payout is recorded.

use std::collections::BTreeSet;

use ledger_core::ids::{Environment, PayoutId, ReconciliationRunId, SettlementBatchId};
use ledger_core::reconciliation::{
    payout_total_exception, ExceptionClass, LedgerSide, PayoutOutcome, PayoutReconciled,
    ReconciliationException, ReportSide,
};
use ledger_core::settlement::{BatchItem, MAX_SETTLEMENT_ITEMS};
use ledger_core::{Currency, Money};
use uuid::Uuid;

use super::super::error::ReconcileError;
use super::super::ledger_view::PayoutKnowledge;
use super::super::report::ReportRow;
use super::findings::{bounded_text, exception_id, text_of};

/// The batch a Stripe payout settles when the ledger has none for it yet: named by the payout,
/// so a resumed import records the same batch, and the rules refuse it a second time.
pub fn batch_id_for_payout(environment: Environment, payout_id: &str) -> SettlementBatchId {
    SettlementBatchId::from_uuid(Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("ledger:stripe_payout:{}:{payout_id}", environment.as_str()).as_bytes(),
    ))
}

/// What the walk over all payouts learns for the later steps.
#[derive(Debug, Default)]
pub struct RunTally {
    pub lines_matched_or_not: u64,
    pub matched_lines: u64,
    pub payouts: u64,
    /// Merchants and currencies the report is about: the scope of `missing_from_payout`.
    pub merchants: BTreeSet<String>,
    pub currencies: BTreeSet<String>,
}

/// One payout's running figures.
#[derive(Debug)]
pub struct PayoutTally {
    pub payout_id: PayoutId,
    pub currency: Currency,
    pub batch_id: SettlementBatchId,
    pub knowledge: PayoutKnowledge,
    /// The items a batch recorded by this run would settle.
    pub items: Vec<BatchItem>,
    pub too_many_items: bool,
    /// Matched lines the ledger has not settled yet.
    pub unsettled_matches: u64,
    pub merchant: Option<String>,
    pub lines: u64,
    pub exceptions: u64,
    pub gross: Money,
    pub fees: Money,
    pub net: Money,
}

impl PayoutTally {
    /// A payout as its first line and the ledger's knowledge of it open it: in the first line's
    /// currency, settled by the ledger's batch for it, else by the one this run would record.
    /// `payout_text` is the payout id as the report staged it.
    pub fn new(
        environment: Environment,
        payout_text: &str,
        first: &ReportRow,
        knowledge: PayoutKnowledge,
    ) -> PayoutTally {
        let batch_id = knowledge.batch_id.map_or_else(
            || batch_id_for_payout(environment, payout_text),
            SettlementBatchId::from_uuid,
        );
        PayoutTally {
            payout_id: first.payout_id.clone(),
            currency: first.currency,
            batch_id,
            knowledge,
            items: Vec::new(),
            too_many_items: false,
            unsettled_matches: 0,
            merchant: None,
            lines: 0,
            exceptions: 0,
            gross: Money::zero(first.currency),
            fees: Money::zero(first.currency),
            net: Money::zero(first.currency),
        }
    }

    /// The payout's totals are the report's, line by line, in the payout's currency (a line in
    /// another currency is an exception of its own). A total past the money bound stops the
    /// import: any number recorded instead would be wrong.
    pub fn add_to_totals(&mut self, line: &ReportRow) -> Result<(), ReconcileError> {
        if line.currency != self.currency {
            return Ok(());
        }
        let payout_id = &self.payout_id;
        let add = |figure: &str, total: Money, amount: Money| {
            total
                .checked_add(amount)
                .map_err(|source| ReconcileError::AmountOverflow {
                    what: format!(
                        "the {figure} of payout {payout_id} up to line {}",
                        line.line_number
                    ),
                    source,
                })
        };
        let gross = add("gross", self.gross, line.gross)?;
        let fees = add("fees", self.fees, line.fee)?;
        let net = add("net", self.net, line.net)?;
        (self.gross, self.fees, self.net) = (gross, fees, net);
        Ok(())
    }

    /// The payout amount the ledger knew before this run: its payout's, else its batch's net.
    pub fn ledger_amount(&self) -> Option<Money> {
        self.knowledge.payout_amount.or(self.knowledge.batch_net)
    }

    /// Whether the ledger already holds a batch for this payout.
    pub fn batch_exists(&self) -> bool {
        self.knowledge.batch_id.is_some()
    }

    pub fn proven(&self) -> bool {
        self.exceptions == 0
    }

    /// The payout's findings once all its lines are matched: a total that differs from the
    /// ledger's payout, lines the ledger's batch lacks, more lines than one batch may hold.
    /// Each counts against the payout.
    pub fn judge(&mut self, run_id: ReconciliationRunId) -> Vec<ReconciliationException> {
        let mut findings = Vec::new();
        if let Some(detail) = payout_total_exception(self.net, self.ledger_amount()) {
            findings.push(self.finding(
                run_id,
                "total",
                ExceptionClass::PayoutTotalMismatch,
                detail,
            ));
        }
        if self.batch_exists() && self.unsettled_matches > 0 {
            let detail = format!(
                "the ledger's batch for this payout lacks {} of the report's lines",
                self.unsettled_matches
            );
            findings.push(self.finding(
                run_id,
                "lines",
                ExceptionClass::PayoutTotalMismatch,
                detail,
            ));
        }
        if self.too_many_items {
            let detail = format!(
                "more than {MAX_SETTLEMENT_ITEMS} lines: too many for one settlement batch; record it in parts by hand"
            );
            findings.push(self.finding(run_id, "size", ExceptionClass::BatchRefused, detail));
        }
        findings
    }

    /// The ledger's settlement rules refused the batch of a payout the report proved: the
    /// payout stays unproven, and the rule is named for whoever resolves it.
    pub fn refused(
        &mut self,
        run_id: ReconciliationRunId,
        rule: &ledger_core::DomainError,
    ) -> ReconciliationException {
        let detail = format!(
            "the ledger refused its settlement batch: {rule} (rule {})",
            rule.rule()
        );
        self.finding(run_id, "refused", ExceptionClass::BatchRefused, detail)
    }

    /// The payout's verdict, recorded once its findings are.
    pub fn verdict(&self, batch_recorded: bool) -> PayoutReconciled {
        PayoutReconciled {
            payout_id: self.payout_id.clone(),
            batch_id: self.batch_id,
            currency: self.currency,
            line_count: self.lines,
            exception_count: self.exceptions,
            gross: self.gross,
            fees: self.fees,
            net: self.net,
            ledger_amount: self.ledger_amount(),
            outcome: if self.proven() {
                PayoutOutcome::Proven
            } else {
                PayoutOutcome::Unproven
            },
            batch_recorded,
        }
    }

    /// A payout-level finding, counted against the payout: the report's totals beside the
    /// payout amount the ledger knows.
    fn finding(
        &mut self,
        run_id: ReconciliationRunId,
        key: &str,
        class: ExceptionClass,
        detail: String,
    ) -> ReconciliationException {
        self.exceptions += 1;
        ReconciliationException {
            exception_id: exception_id(run_id, &format!("payout:{}:{key}", self.payout_id)),
            class,
            detail: bounded_text(&format!("payout {}: {detail}", self.payout_id)),
            line_number: None,
            payout_id: Some(self.payout_id.clone()),
            payment_id: None,
            item: None,
            report: Some(ReportSide {
                currency: text_of(self.currency.code()),
                gross: text_of(self.gross.amount()),
                fee: text_of(self.fees.amount()),
                net: text_of(self.net.amount()),
                ..ReportSide::default()
            }),
            ledger: self.ledger_amount().map(|amount| LedgerSide {
                currency: amount.currency(),
                amount,
                fee: None,
                batch_id: self.knowledge.batch_id.map(SettlementBatchId::from_uuid),
                recorded_at: None,
            }),
        }
    }
}
