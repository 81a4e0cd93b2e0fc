//! Events that arrived before what they depend on: kept in `webhook_parked` and retried
//! after every apply on their subject, after a reconciliation import, and by the server's
//! sweep every minute (see the module docs of [`super`] for why parking). One parked past
//! its age limit ([`crate::gateway::parked`]) is expired instead of retried.

use ledger_core::ids::Environment;

use super::error::WebhookError;
use super::metrics;
use super::outcome::DeliveryOutcome;
use super::process::resolve;
use super::state::WebhookState;
use super::tables::{self, ParkedRow};
use crate::gateway::parked::{expiry_cutoff, parked_too_long, EXPIRY_DETAIL_PREFIX};
use crate::gateway::{Event, VerifiedEvent};

/// Parked events of one subject read per pass, oldest first. A payment has a handful of
/// events; the bound keeps a runaway subject from stalling the delivery that retries it.
pub const MAX_PARKED_PER_SUBJECT: i64 = 100;

/// Passes over a subject's parked events per retry: each pass resolves at least one event or
/// ends the retry, and an event resolved late in a pass may unblock one earlier in it.
const MAX_RETRY_PASSES: usize = 8;

/// Subjects read per page by [`retry_all_parked`], which pages through all of them.
pub const PARKED_SUBJECTS_PAGE: i64 = 1_000;

/// Retries the events parked on one subject (`pi_…` or `po_…`); returns how many resolved.
pub async fn retry_parked(
    state: &WebhookState,
    environment: Environment,
    subject: &str,
) -> Result<usize, WebhookError> {
    let _turn = state.lock_subject(environment, subject).await;
    retry_subject(state, environment, subject).await
}

/// How often the server retries every parked event on its own.
pub const PARKED_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Retries every parked event every `interval` until `shutdown`. Deliveries retry their own
/// subject, but a parked event may wait for a fact that arrives through the API instead (a
/// refund parked until its payment exists, and the payment is then initiated through GraphQL):
/// no later delivery would retry it.
pub async fn sweep_parked(
    state: WebhookState,
    interval: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
        for environment in state.config().secrets.environments() {
            match retry_all_parked(&state, environment).await {
                Ok(0) => {}
                Ok(resolved) => {
                    tracing::info!(resolved, "parked Stripe events applied by the sweep")
                }
                Err(error) => tracing::warn!(%error, "the sweep of parked Stripe events failed"),
            }
        }
    }
}

/// Retries every subject's parked events, e.g. after a reconciliation import recorded the
/// settlement batches that parked payouts wait for, and expires those parked too long.
/// Returns how many resolved. Pages through the subjects in subject order, so every subject
/// is reached however many wait; each page is read after the one before was retried, and
/// the pages end because each starts strictly after the last subject of the one before.
pub async fn retry_all_parked(
    state: &WebhookState,
    environment: Environment,
) -> Result<usize, WebhookError> {
    let mut resolved = 0;
    let mut after = String::new();
    loop {
        let page =
            tables::parked_subjects_after(state.pool(), environment, &after, PARKED_SUBJECTS_PAGE)
                .await?;
        for subject in &page {
            resolved += retry_parked(state, environment, subject).await?;
        }
        match page.last() {
            Some(last) if page.len() as i64 == PARKED_SUBJECTS_PAGE => after.clone_from(last),
            _ => return Ok(resolved),
        }
    }
}

/// The retry itself; the caller holds the subject's turn.
pub(super) async fn retry_subject(
    state: &WebhookState,
    environment: Environment,
    subject: &str,
) -> Result<usize, WebhookError> {
    let mut resolved = 0;
    for _pass in 0..MAX_RETRY_PASSES {
        let parked =
            tables::parked_on(state.pool(), environment, subject, MAX_PARKED_PER_SUBJECT).await?;
        let mut progressed = false;
        for row in parked {
            if parked_too_long(row.parked_at, chrono::Utc::now()) {
                expire(state, environment, &row.stripe_event_id).await?;
                continue;
            }
            let event = match restore(row, environment) {
                Ok(event) => event,
                Err(error) => {
                    // Left parked for a person; the others of the subject still proceed.
                    tracing::error!(%error, "a parked stripe event cannot be read back");
                    continue;
                }
            };
            let resolution = resolve(state, &event).await?;
            metrics::parked_retry(resolution.outcome);
            if resolution.outcome == DeliveryOutcome::Parked {
                let reason = resolution.detail.as_deref().unwrap_or_default();
                tables::touch_parked(state.pool(), environment, event.id(), reason).await?;
                continue;
            }
            let row = resolution.row(&event, chrono::Utc::now());
            tables::resolve_parked(state.pool(), &row).await?;
            progressed = true;
            resolved += 1;
        }
        if !progressed {
            break;
        }
    }
    Ok(resolved)
}

/// Gives up on an event parked past its age limit: its delivery becomes `expired` and it is
/// never retried again. Returns whether this call expired it (another process may have
/// resolved or expired it first).
pub(super) async fn expire(
    state: &WebhookState,
    environment: Environment,
    stripe_event_id: &str,
) -> Result<bool, WebhookError> {
    let now = chrono::Utc::now();
    let expired = tables::expire_parked(
        state.pool(),
        environment,
        stripe_event_id,
        expiry_cutoff(now),
        EXPIRY_DETAIL_PREFIX,
        now,
    )
    .await?;
    if expired {
        metrics::parked_expired();
        tracing::warn!(
            %stripe_event_id,
            "a parked stripe event waited past its age limit and expired; support must look at it"
        );
    }
    Ok(expired)
}

/// A parked event was verified before it was stored; it is restored as such.
fn restore(row: ParkedRow, environment: Environment) -> Result<VerifiedEvent, WebhookError> {
    let event: Event =
        serde_json::from_value(row.event).map_err(|error| WebhookError::CorruptRow {
            stripe_event_id: row.stripe_event_id.clone(),
            reason: error.to_string(),
        })?;
    if event.id != row.stripe_event_id {
        return Err(WebhookError::CorruptRow {
            stripe_event_id: row.stripe_event_id,
            reason: "the stored event has another id".to_owned(),
        });
    }
    Ok(VerifiedEvent::restore(event, environment))
}
