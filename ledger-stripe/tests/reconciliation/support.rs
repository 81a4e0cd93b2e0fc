//! A ledger with payments in it, and Stripe payout reports about them, built the way Stripe
//! writes its itemized payout reconciliation report (`payout_reconciliation.itemized.5`):
//! decimal major units, negative gross for money out, lowercase currencies, UTC times.

use chrono::{DateTime, TimeZone, Utc};
use ledger_core::ids::*;
use ledger_core::payment::*;
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money, PositiveMoney};
use ledger_projections::Projector;
use ledger_store::commands::{CommandContext, CommandHandler};
use ledger_store::testing::TestDatabase;
use ledger_stripe::gateway::mapping::payment_id_for_payment_intent;
use ledger_stripe::reconcile::{import_stripe_payouts, ImportOutcome, ImportRequest, Progress};
use uuid::Uuid;

pub const MERCHANT: &str = "acct_1Nv0FGQ9RKHgCVdK";

pub struct Ledger {
    pub database: TestDatabase,
    pub handler: CommandHandler,
}

pub fn day(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 10, 0, 0)
        .single()
        .unwrap()
}

fn context(at: DateTime<Utc>) -> CommandContext {
    CommandContext {
        environment: Environment::Test,
        actor_id: "test".to_owned(),
        actor_role: "service".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: at,
        idempotency: None,
    }
}

fn text(value: &str) -> ShortText {
    ShortText::parse(value).unwrap()
}

pub fn money(amount: &str, currency: Currency) -> PositiveMoney {
    PositiveMoney::parse(amount, currency).unwrap()
}

impl Ledger {
    pub async fn new() -> Ledger {
        let database = TestDatabase::new().await;
        let handler = CommandHandler::new(database.store());
        Ledger { database, handler }
    }

    pub fn payment_id(payment_intent: &str) -> PaymentId {
        payment_id_for_payment_intent(payment_intent)
    }

    async fn run(&self, payment_intent: &str, command: PaymentCommand, at: DateTime<Utc>) {
        self.handler
            .handle_payment(Ledger::payment_id(payment_intent), &command, &context(at))
            .await
            .unwrap_or_else(|error| panic!("{payment_intent}: {error}"));
    }

    /// A payment initiated and approved for its full amount.
    async fn authorized(
        &self,
        payment_intent: &str,
        amount: &str,
        currency: Currency,
        capture_mode: CaptureMode,
        at: DateTime<Utc>,
    ) {
        self.run(
            payment_intent,
            PaymentCommand::Initiate(InitiatePayment {
                merchant_id: MerchantId::parse(MERCHANT).unwrap(),
                order_id: OrderId::parse(format!("order_{payment_intent}")).unwrap(),
                environment: Environment::Test,
                amount: money(amount, currency),
                capture_mode,
                payment_method: Some(text("card")),
            }),
            at,
        )
        .await;
        self.run(
            payment_intent,
            PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
                authorized_amount: None,
                authorization_code: None,
                gateway_reference: Some(text(payment_intent)),
                expires_at: None,
            }),
            at,
        )
        .await;
    }

    /// A payment captured automatically on authorization: the ledger holds its capture under
    /// the id `automatic`, as Stripe's `payment_intent.succeeded` records it.
    pub async fn captured_automatically(
        &self,
        payment_intent: &str,
        amount: &str,
        currency: Currency,
        at: DateTime<Utc>,
    ) {
        self.authorized(payment_intent, amount, currency, CaptureMode::Automatic, at)
            .await;
    }

    /// A manual payment authorized for `authorized` and captured for less, finally: Stripe
    /// releases the rest.
    pub async fn captured_in_part(
        &self,
        payment_intent: &str,
        charge: &str,
        authorized: &str,
        captured: &str,
        at: DateTime<Utc>,
    ) {
        self.authorized(
            payment_intent,
            authorized,
            Currency::USD,
            CaptureMode::Manual,
            at,
        )
        .await;
        self.run(
            payment_intent,
            PaymentCommand::Capture(CapturePayment {
                capture_id: CaptureId::parse(charge).unwrap(),
                amount: Some(money(captured, Currency::USD)),
                final_capture: true,
            }),
            at,
        )
        .await;
    }

    /// A card payment authorized and captured in full under the charge's id, as Stripe's
    /// webhooks record it.
    pub async fn captured(
        &self,
        payment_intent: &str,
        charge: &str,
        amount: &str,
        currency: Currency,
        at: DateTime<Utc>,
    ) {
        self.authorized(payment_intent, amount, currency, CaptureMode::Manual, at)
            .await;
        self.run(
            payment_intent,
            PaymentCommand::Capture(CapturePayment {
                capture_id: CaptureId::parse(charge).unwrap(),
                amount: None,
                final_capture: true,
            }),
            at,
        )
        .await;
    }

    pub async fn refunded(
        &self,
        payment_intent: &str,
        refund: &str,
        amount: &str,
        currency: Currency,
        at: DateTime<Utc>,
    ) {
        let refund_id = RefundId::parse(refund).unwrap();
        self.run(
            payment_intent,
            PaymentCommand::Refund(RefundPayment {
                refund_id: refund_id.clone(),
                amount: Some(money(amount, currency)),
                reason: None,
            }),
            at,
        )
        .await;
        self.run(
            payment_intent,
            PaymentCommand::RecordRefundOutcome(RecordRefundOutcome {
                refund_id,
                outcome: RefundOutcome::Succeeded,
            }),
            at,
        )
        .await;
    }

    pub async fn disputed(
        &self,
        payment_intent: &str,
        dispute: &str,
        amount: &str,
        fee: &str,
        currency: Currency,
        at: DateTime<Utc>,
    ) {
        self.run(
            payment_intent,
            PaymentCommand::OpenDispute(OpenDispute {
                dispute_id: DisputeId::parse(dispute).unwrap(),
                amount: money(amount, currency),
                reason: text("fraudulent"),
                evidence_due_by: None,
                fee: Some(Money::parse(fee, currency).unwrap()),
            }),
            at,
        )
        .await;
    }

    pub async fn import(&self, report: &str) -> ImportOutcome {
        self.try_import(report).await.expect("the report imports")
    }

    pub async fn try_import(
        &self,
        report: &str,
    ) -> Result<ImportOutcome, ledger_stripe::reconcile::ReconcileError> {
        let request = ImportRequest {
            environment: Environment::Test,
            file_name: Some("payout_reconciliation.csv".to_owned()),
            actor_id: "finance@test".to_owned(),
            actor_role: "finance".to_owned(),
            availability_days: 7,
            now: day(28),
            idempotency: None,
        };
        let bytes = report.as_bytes().to_vec();
        let mut ignore = |_: Progress| {};
        let outcome = import_stripe_payouts(
            &self.handler,
            &request,
            move || Ok(std::io::Cursor::new(bytes.clone())),
            &mut ignore,
        )
        .await?;
        Projector::live(self.database.pool().clone())
            .catch_up(None)
            .await
            .unwrap();
        Ok(outcome)
    }

    pub async fn head(&self) -> u64 {
        self.database.store().head().await.unwrap().last_position
    }
}

/// One line of the report.
#[derive(Clone)]
pub struct Line {
    pub payout: String,
    pub category: &'static str,
    pub currency: &'static str,
    pub gross: String,
    pub fee: String,
    pub net: String,
    pub source: String,
    pub payment_intent: String,
    pub charge: String,
    pub refund: String,
    pub dispute: String,
    pub available_on: String,
}

pub fn charge(
    payout: &str,
    payment_intent: &str,
    charge: &str,
    gross: &str,
    fee: &str,
    net: &str,
) -> Line {
    Line {
        payout: payout.to_owned(),
        category: "charge",
        currency: "usd",
        gross: gross.to_owned(),
        fee: fee.to_owned(),
        net: net.to_owned(),
        source: charge.to_owned(),
        payment_intent: payment_intent.to_owned(),
        charge: charge.to_owned(),
        refund: String::new(),
        dispute: String::new(),
        available_on: "2026-11-20 00:00:00".to_owned(),
    }
}

pub fn refund(payout: &str, payment_intent: &str, charge: &str, refund: &str, gross: &str) -> Line {
    Line {
        category: "refund",
        fee: "0.00".to_owned(),
        net: gross.to_owned(),
        source: refund.to_owned(),
        refund: refund.to_owned(),
        ..self::charge(payout, payment_intent, charge, gross, "0.00", gross)
    }
}

pub fn dispute(
    payout: &str,
    payment_intent: &str,
    charge: &str,
    dispute: &str,
    gross: &str,
    fee: &str,
    net: &str,
) -> Line {
    Line {
        category: "dispute",
        source: dispute.to_owned(),
        dispute: dispute.to_owned(),
        ..self::charge(payout, payment_intent, charge, gross, fee, net)
    }
}

const HEADER: &str = "automatic_payout_id,automatic_payout_effective_at_utc,balance_transaction_id,created_utc,available_on_utc,currency,gross,fee,net,reporting_category,source_id,description,customer_facing_amount,customer_facing_currency,payment_intent_id,charge_id,refund_id,dispute_id,card_brand";

/// The report's text: Stripe's header order, a balance transaction id per line, and the
/// columns the ledger does not read filled in as Stripe fills them.
pub fn report(lines: &[Line]) -> String {
    let mut text = String::from(HEADER);
    text.push('\n');
    for (index, line) in lines.iter().enumerate() {
        text.push_str(&format!(
            "{},2026-11-21 00:00:00,txn_{:024},2026-11-13 10:00:00,{},{},{},{},{},{},{},\"Order \"\"{}\"\"\",{},{},{},{},{},{},visa\n",
            line.payout,
            index + 1,
            line.available_on,
            line.currency,
            line.gross,
            line.fee,
            line.net,
            line.category,
            line.source,
            line.payment_intent,
            line.gross.trim_start_matches('-'),
            line.currency,
            line.payment_intent,
            line.charge,
            line.refund,
            line.dispute,
        ));
    }
    text
}

impl Ledger {
    /// A run's events, read back from its stream.
    async fn run_events(
        &self,
        run_id: ReconciliationRunId,
    ) -> Vec<ledger_core::reconciliation::ReconciliationEvent> {
        let (_, history) = self
            .handler
            .load_with_history::<ledger_core::reconciliation::ReconciliationRunState>(
                run_id.as_uuid(),
            )
            .await
            .unwrap();
        history
            .iter()
            .map(|recorded| ledger_store::commands::decode(recorded).unwrap())
            .collect()
    }

    /// Every finding of a run.
    pub async fn exceptions(
        &self,
        run_id: ReconciliationRunId,
    ) -> Vec<ledger_core::reconciliation::ReconciliationException> {
        use ledger_core::reconciliation::ReconciliationEvent;
        self.run_events(run_id)
            .await
            .into_iter()
            .filter_map(|event| match event {
                ReconciliationEvent::ReconciliationExceptionsFound(found) => Some(found.exceptions),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Every payout verdict of a run.
    pub async fn payouts(
        &self,
        run_id: ReconciliationRunId,
    ) -> Vec<ledger_core::reconciliation::PayoutReconciled> {
        use ledger_core::reconciliation::ReconciliationEvent;
        self.run_events(run_id)
            .await
            .into_iter()
            .filter_map(|event| match event {
                ReconciliationEvent::PayoutReconciled(payout) => Some(payout),
                _ => None,
            })
            .collect()
    }

    pub async fn batch_of_payout(
        &self,
        payout: &str,
    ) -> ledger_core::settlement::SettlementBatchState {
        let batch_id = ledger_stripe::reconcile::batch_id_for_payout(Environment::Test, payout);
        self.handler.load(batch_id.as_uuid()).await.unwrap()
    }

    pub async fn payment(&self, payment_intent: &str) -> PaymentState {
        self.handler
            .load(Ledger::payment_id(payment_intent).as_uuid())
            .await
            .unwrap()
    }
}
