//! One payout walked: its staged lines paged in, what they name looked up, each line matched
//! ([`super::matching`]), the payout judged and, when proven, recorded
//! ([`super::settlements`]).
//!
//! Memory holds one page of lines and the payout's batch items (at most a batch's limit).

use std::collections::BTreeSet;

use ledger_store::StoreError;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ReconcileError;
use super::ledger_view;
use super::matching::line::payment_of;
use super::matching::{match_line, LookedUp, PayoutTally, RunTally};
use super::report::ReportRow;
use super::run_stream::RunStream;
use super::settlements::record_proven_payout;
use super::staging;

/// Lines matched per page of a payout.
const LINE_PAGE: i64 = 1_000;

/// Matches, judges and records the payout staged as `payout_text`.
pub async fn reconcile_payout(
    run: &mut RunStream<'_>,
    tally: &mut RunTally,
    pool: &PgPool,
    payout_text: &str,
) -> Result<(), ReconcileError> {
    let environment = run.request.environment;
    let mut after_line = 0u64;
    let mut payout: Option<PayoutTally> = None;
    loop {
        let page = staging::lines_of_payout(
            pool,
            run.run_id.as_uuid(),
            payout_text,
            after_line,
            LINE_PAGE,
        )
        .await?;
        let Some(last) = page.last() else { break };
        after_line = last.line_number;
        let payout = match &mut payout {
            Some(payout) => payout,
            None => {
                let first = &page[0];
                let knowledge =
                    ledger_view::payout_knowledge(pool, environment, payout_text, first.currency)
                        .await?;
                payout.insert(PayoutTally::new(environment, payout_text, first, knowledge))
            }
        };
        match_page(run, tally, payout, pool, payout_text, &page).await?;
    }
    let Some(payout) = payout else { return Ok(()) };
    finish_payout(run, payout).await?;
    tally.payouts += 1;
    Ok(())
}

/// Looks up what a page of lines names, in four queries, and matches each line.
async fn match_page(
    run: &mut RunStream<'_>,
    tally: &mut RunTally,
    payout: &mut PayoutTally,
    pool: &PgPool,
    payout_text: &str,
    page: &[ReportRow],
) -> Result<(), ReconcileError> {
    let environment = run.request.environment;
    let intents: Vec<String> = page
        .iter()
        .filter(|line| line.ledger_payment_id.is_none())
        .filter_map(|line| line.payment_intent_id.clone())
        .collect();
    let links = ledger_view::linked_payments(pool, environment, &intents).await?;
    let payments: Vec<Uuid> = page
        .iter()
        .filter_map(|line| payment_of(line, &links))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ledger = ledger_view::items_of(pool, environment, &payments).await?;
    let charge_ids: Vec<String> = page
        .iter()
        .filter_map(|line| line.charge_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let reversals =
        staging::reversals(pool, run.run_id.as_uuid(), payout_text, &charge_ids).await?;
    let looked_up = LookedUp {
        links: &links,
        ledger: &ledger,
        reversals: &reversals,
    };
    for line in page {
        if let Some(exception) = match_line(run.run_id, tally, payout, line, looked_up)? {
            run.found(exception).await?;
        }
    }
    Ok(())
}

/// Judges the payout, records it when proven, and records the verdict. A payout an
/// interrupted import judged already is left as it was judged.
async fn finish_payout(
    run: &mut RunStream<'_>,
    mut payout: PayoutTally,
) -> Result<(), ReconcileError> {
    if run.judged(&payout.payout_id) {
        return Ok(());
    }
    for finding in payout.judge(run.run_id) {
        run.found(finding).await?;
    }
    let mut batch_recorded = false;
    if payout.proven() {
        match record_proven_payout(run, &payout).await {
            Ok(recorded) => batch_recorded = recorded,
            Err(ReconcileError::Store(StoreError::Rejected(rule))) => {
                let finding = payout.refused(run.run_id, &rule);
                run.found(finding).await?;
            }
            Err(other) => return Err(other),
        }
    }
    run.judge(payout.verdict(batch_recorded)).await
}
