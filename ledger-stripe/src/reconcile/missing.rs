//! The scan for `missing_from_payout`: what the ledger holds unsettled past its expected
//! availability that no payout of the report took.
//!
//! It runs after every payout is matched and recorded (and the read models caught up with
//! those records), so an item the report settled is no longer unsettled. Its scope is the
//! merchants and currencies the report is about: a report of one account says nothing about
//! another's items. The period's end is the latest availability the report states, so an old
//! report does not blame items captured after it.

use std::collections::BTreeSet;

use sqlx::PgPool;

use super::error::ReconcileError;
use super::ledger_view;
use super::matching::findings::missing_from_payout;
use super::matching::RunTally;
use super::run_stream::RunStream;
use super::staging;

/// Items scanned per page.
const ITEM_PAGE: i64 = 1_000;

/// Records a `missing_from_payout` finding for each such item, a page at a time.
pub async fn find_missing_from_payouts(
    run: &mut RunStream<'_>,
    tally: &RunTally,
    pool: &PgPool,
) -> Result<(), ReconcileError> {
    if tally.merchants.is_empty() {
        return Ok(());
    }
    let period_end = staging::period_end(pool, run.run_id.as_uuid())
        .await?
        .unwrap_or_else(|| run.started_at());
    let recorded_before = period_end - chrono::Duration::days(i64::from(run.availability_days()));
    let merchants: Vec<String> = tally.merchants.iter().cloned().collect();
    let currencies: Vec<String> = tally.currencies.iter().cloned().collect();
    let mut cursor = None;
    loop {
        let page = ledger_view::unsettled_before(
            pool,
            run.request.environment,
            &merchants,
            &currencies,
            recorded_before,
            cursor.clone(),
            ITEM_PAGE,
        )
        .await?;
        let Some(last) = page.last() else { break };
        cursor = Some((last.recorded_at, last.payment_id, last.item_id.clone()));
        let ids: Vec<String> = page.iter().map(|item| item.item_id.clone()).collect();
        let reported: BTreeSet<String> =
            staging::reported_item_ids(pool, run.run_id.as_uuid(), &ids)
                .await?
                .into_iter()
                .collect();
        for item in page.iter().filter(|item| !reported.contains(&item.item_id)) {
            let exception = missing_from_payout(run.run_id, item, run.availability_days());
            run.found(exception).await?;
        }
    }
    Ok(())
}
