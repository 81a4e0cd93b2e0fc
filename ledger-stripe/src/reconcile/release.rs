//! [`import_and_apply_parked`]: an import, then the payout webhooks it unblocks. The one way the
//! command line and the API import a report, so neither forgets the second half.

use std::io::Read;

use ledger_store::commands::CommandHandler;

use super::import::{import_stripe_payouts, ImportOutcome, ImportRequest, Progress};
use super::ReconcileError;
use crate::webhooks::{retry_all_parked, WebhookState};

/// Imports the report ([`import_stripe_payouts`]); when it recorded something and the server
/// takes Stripe webhooks, retries the events parked in the report's environment: payout events
/// that arrived before their settlement batch existed can apply now. A failure of the retry
/// leaves them parked for the next delivery or sweep; the import itself stands.
pub async fn import_and_apply_parked<R, Open>(
    handler: &CommandHandler,
    webhooks: Option<&WebhookState>,
    request: &ImportRequest,
    open: Open,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportOutcome, ReconcileError>
where
    R: Read,
    Open: Fn() -> std::io::Result<R>,
{
    let outcome = import_stripe_payouts(handler, request, open, progress).await?;
    if let (Some(webhooks), false) = (webhooks, outcome.already_imported) {
        match retry_all_parked(webhooks, request.environment).await {
            Ok(resolved) if resolved > 0 => {
                tracing::info!(resolved, "parked Stripe events applied after the import");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "parked Stripe events could not be retried"),
        }
    }
    Ok(outcome)
}
