//! The balance transaction each movement of money makes, with the id its object already
//! names (`charge.balance_transaction`, `refund.balance_transaction`, the dispute's
//! `balance_transactions`), pending for the payout schedule's delay.

use super::books::{processing_fee, BalanceTransaction, TransactionKind};
use super::clock::DAY_SECONDS;
use crate::objects::DISPUTE_FEE;
use crate::state::State;

impl State {
    /// When money moved at `created` becomes available: the start of the UTC day
    /// `delay_days` later, as Stripe sets `available_on`.
    fn available_on(&self, created: i64) -> i64 {
        created.div_euclid(DAY_SECONDS) * DAY_SECONDS + self.books.delay_days * DAY_SECONDS
    }

    /// A charge was captured (at once or later): its amount captured, less Stripe's fee.
    pub(crate) fn record_capture(&mut self, charge_id: &str) {
        let created = self.now();
        let Some(charge) = self.charges.get(charge_id) else {
            return;
        };
        let transaction = BalanceTransaction {
            id: format!("txn_{}", &charge.id[3..]),
            kind: TransactionKind::Charge,
            amount: charge.amount_captured,
            fee: processing_fee(charge.amount_captured),
            currency: charge.currency.clone(),
            created,
            available_on: self.available_on(created),
            source: charge.id.clone(),
            description: charge.description.clone(),
            charge: Some(charge.id.clone()),
            payment_intent: Some(charge.payment_intent.clone()),
            card_brand: Some(charge.payment_method.card.brand),
            card_funding: Some(charge.payment_method.card.funding),
            dispute_reason: None,
            payout: None,
        };
        self.books.record(transaction);
    }

    /// A refund was made (pending ones too: Stripe takes the money when it accepts the
    /// refund), or failed later (`failed`: the money comes back). Stripe keeps its fee.
    pub(crate) fn record_refund(&mut self, refund_id: &str, failed: bool) {
        let created = self.now();
        let Some(refund) = self.refunds.get(refund_id) else {
            return;
        };
        let card = self
            .charges
            .get(&refund.charge)
            .map(|charge| charge.payment_method.card);
        let (id, kind, amount, description) = if failed {
            (
                format!("txn_{}f", &refund.id[3..]),
                TransactionKind::RefundFailure,
                refund.amount,
                format!("REFUND FAILURE FOR {}", refund.id),
            )
        } else {
            (
                format!("txn_{}", &refund.id[3..]),
                TransactionKind::Refund,
                -refund.amount,
                format!("REFUND FOR CHARGE {}", refund.charge),
            )
        };
        let transaction = BalanceTransaction {
            id,
            kind,
            amount,
            fee: 0,
            currency: refund.currency.clone(),
            created,
            available_on: self.available_on(created),
            source: refund.id.clone(),
            description: Some(description),
            charge: Some(refund.charge.clone()),
            payment_intent: Some(refund.payment_intent.clone()),
            card_brand: card.map(|card| card.brand),
            card_funding: card.map(|card| card.funding),
            dispute_reason: None,
            payout: None,
        };
        self.books.record(transaction);
    }

    /// A dispute withdrew the disputed amount and the dispute fee, or (`reinstated`, when
    /// won) gave both back: the figures its `balance_transactions` show.
    pub(crate) fn record_dispute(&mut self, dispute_id: &str, reinstated: bool) {
        let created = self.now();
        let Some(dispute) = self.disputes.get(dispute_id) else {
            return;
        };
        let card = self
            .charges
            .get(&dispute.charge)
            .map(|charge| charge.payment_method.card);
        let (id, kind, amount, fee, description) = if reinstated {
            (
                format!("txn_{}r", &dispute.id[3..]),
                TransactionKind::DisputeReversal,
                dispute.amount,
                -DISPUTE_FEE,
                format!("Chargeback reversal for {}", dispute.charge),
            )
        } else {
            (
                format!("txn_{}w", &dispute.id[3..]),
                TransactionKind::Dispute,
                -dispute.amount,
                DISPUTE_FEE,
                format!("Chargeback withdrawal for {}", dispute.charge),
            )
        };
        let transaction = BalanceTransaction {
            id,
            kind,
            amount,
            fee,
            currency: dispute.currency.clone(),
            created,
            available_on: self.available_on(created),
            source: dispute.id.clone(),
            description: Some(description),
            charge: Some(dispute.charge.clone()),
            payment_intent: Some(dispute.payment_intent.clone()),
            card_brand: card.map(|card| card.brand),
            card_funding: card.map(|card| card.funding),
            dispute_reason: Some(dispute.reason),
            payout: None,
        };
        self.books.record(transaction);
    }
}
