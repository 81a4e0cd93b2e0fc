//! Recording what a proven payout proves: its settlement batch when the ledger has none, and
//! its payout as initiated and paid.
//!
//! Everything goes through the settlement command handler, so the core's rules check the batch
//! against every payment it names (all or nothing). Each command carries an idempotency key of
//! the run, the payout and the step: a resumed import repeats nothing.

use ledger_core::ids::MerchantId;
use ledger_core::settlement::{
    PayoutStatus, PayoutUpdate, RecordPayout, RecordSettlementBatch, SettlementCommand,
};
use ledger_core::PositiveMoney;
use ledger_store::commands::{CommandContext, Idempotency};

use super::error::ReconcileError;
use super::matching::PayoutTally;
use super::run_stream::RunStream;

/// Records a proven payout; answers whether this run recorded its batch. A refusal by the
/// settlement rules comes back as `ReconcileError::Store(StoreError::Rejected(_))`.
pub async fn record_proven_payout(
    run: &RunStream<'_>,
    payout: &PayoutTally,
) -> Result<bool, ReconcileError> {
    let batch_exists = payout.batch_exists();
    let mut recorded = false;
    if !batch_exists {
        // Without a matched line there is no merchant to record a batch for.
        let Some(merchant) = payout.merchant.as_deref() else {
            return Ok(false);
        };
        let merchant_id = MerchantId::parse(merchant)
            .map_err(|error| ReconcileError::CorruptRow(error.to_string()))?;
        let command = SettlementCommand::RecordBatch(RecordSettlementBatch {
            batch_id: payout.batch_id,
            merchant_id,
            environment: run.request.environment,
            currency: payout.currency,
            items: payout.items.clone(),
            reserve: None,
        });
        settle(run, payout, "batch", &command).await?;
        recorded = true;
    }
    let Ok(amount) = PositiveMoney::new(payout.net) else {
        // A payout of nothing (or a debit) moves no money to the bank: the batch is the record.
        return Ok(recorded);
    };
    let status = payout.knowledge.payout_status;
    if status.is_none() || !batch_exists {
        let command = SettlementCommand::RecordPayout(RecordPayout {
            payout_id: payout.payout_id.clone(),
            amount,
            update: PayoutUpdate::Initiated {
                expected_arrival_date: None,
            },
        });
        settle(run, payout, "initiated", &command).await?;
    }
    if !matches!(status, Some(PayoutStatus::Paid | PayoutStatus::Failed)) {
        let command = SettlementCommand::RecordPayout(RecordPayout {
            payout_id: payout.payout_id.clone(),
            amount,
            update: PayoutUpdate::Paid,
        });
        settle(run, payout, "paid", &command).await?;
    }
    Ok(recorded)
}

/// One settlement command on the payout's batch, keyed by the run, the payout and the step.
async fn settle(
    run: &RunStream<'_>,
    payout: &PayoutTally,
    step: &str,
    command: &SettlementCommand,
) -> Result<(), ReconcileError> {
    let request = serde_json::to_value(command)
        .map_err(|error| ReconcileError::CorruptRow(error.to_string()))?;
    let context = CommandContext {
        idempotency: Some(Idempotency::for_request(
            format!("reconciliation:{}:{}:{step}", run.run_id, payout.payout_id),
            &request,
        )?),
        ..run.context.clone()
    };
    run.handler
        .handle_settlement(payout.batch_id, command, &context)
        .await?;
    Ok(())
}
