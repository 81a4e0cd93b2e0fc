//! The SQL of the webhook tables (`migrations/20261126310000_webhooks.sql`). Every statement
//! is a single upsert, update or read, safe to run concurrently with copies of itself.

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use ledger_projections::read_models::settlement;
use ledger_projections::{Projection, Projector, ProjectorOptions, SchemaName};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::WebhookError;
use super::outcome::DeliveryOutcome;
use crate::gateway::VerifiedEvent;

/// Details are for people; the column holds at most this many characters.
const MAX_DETAIL_CHARS: usize = 2000;

/// One delivery's row, as written after it was handled.
#[derive(Debug, Clone)]
pub(super) struct DeliveryRow<'a> {
    pub environment: Environment,
    pub stripe_event_id: &'a str,
    pub event_type: &'a str,
    pub payment_intent_id: Option<&'a str>,
    pub payment_id: Option<Uuid>,
    pub outcome: DeliveryOutcome,
    pub detail: Option<&'a str>,
    pub positions: Option<(u64, u64)>,
    pub received_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
}

/// A parked event, as read back for a retry.
#[derive(Debug, Clone)]
pub(super) struct ParkedRow {
    pub stripe_event_id: String,
    pub event: serde_json::Value,
    /// When it was first parked: its age counts from here.
    pub parked_at: DateTime<Utc>,
}

pub(super) fn bounded(detail: Option<&str>) -> Option<String> {
    detail.map(|text| text.chars().take(MAX_DETAIL_CHARS).collect())
}

pub(super) fn position(value: u64) -> Result<i64, WebhookError> {
    i64::try_from(value).map_err(|_| WebhookError::CorruptRow {
        stripe_event_id: String::new(),
        reason: format!("log position {value} exceeds the database's range"),
    })
}

fn positions(range: Option<(u64, u64)>) -> Result<(Option<i64>, Option<i64>), WebhookError> {
    match range {
        Some((first, last)) => Ok((Some(position(first)?), Some(position(last)?))),
        None => Ok((None, None)),
    }
}

/// What a delivery finds before it resolves: the outcome recorded for its event, if it was
/// seen before, and the payment linked to its PaymentIntent, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    pub outcome: Option<DeliveryOutcome>,
    pub linked_payment: Option<Uuid>,
}

/// The event's recorded outcome and its PaymentIntent's link, in one round trip: every
/// delivery needs both, and each round trip costs a turn of both processes.
pub(super) async fn seen(
    pool: &PgPool,
    environment: Environment,
    stripe_event_id: &str,
    payment_intent_id: Option<&str>,
) -> Result<Seen, WebhookError> {
    let row = sqlx::query!(
        r#"SELECT
               (SELECT outcome FROM webhook_deliveries
                WHERE environment = $1 AND stripe_event_id = $2) AS outcome,
               (SELECT payment_id FROM webhook_payment_links
                WHERE environment = $1 AND payment_intent_id = $3) AS linked_payment"#,
        environment.as_str(),
        stripe_event_id,
        payment_intent_id
    )
    .fetch_one(pool)
    .await?;
    let outcome = row
        .outcome
        .map(|outcome| {
            outcome.parse().map_err(|reason| WebhookError::CorruptRow {
                stripe_event_id: stripe_event_id.to_owned(),
                reason,
            })
        })
        .transpose()?;
    Ok(Seen {
        outcome,
        linked_payment: row.linked_payment,
    })
}

/// Counts one more delivery of an event whose outcome is final.
pub(super) async fn record_redelivery(
    pool: &PgPool,
    environment: Environment,
    stripe_event_id: &str,
    received_at: DateTime<Utc>,
) -> Result<(), WebhookError> {
    sqlx::query!(
        r#"UPDATE webhook_deliveries
           SET delivery_count = delivery_count + 1,
               last_received_at = GREATEST(last_received_at, $3)
           WHERE environment = $1 AND stripe_event_id = $2"#,
        environment.as_str(),
        stripe_event_id,
        received_at
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a delivery, and answers whether any event is parked on `subject`: the grouped
/// record statement ([`super::grouped::record_rows`]) with one row, so a delivery recorded on
/// its own and one recorded in a group are written by the same SQL.
pub(super) async fn record_delivery(
    pool: &PgPool,
    row: &DeliveryRow<'_>,
    subject: &str,
) -> Result<bool, WebhookError> {
    let row = super::grouped::RecordRow::new(row, subject)?;
    let parked = super::grouped::record_rows(pool, &[&row]).await?;
    parked
        .first()
        .copied()
        .ok_or_else(|| WebhookError::CorruptRow {
            stripe_event_id: row.stripe_event_id().to_owned(),
            reason: "recording the delivery returned no row".to_owned(),
        })
}

/// A parked event was resolved by a retry: its delivery row takes the new outcome and the
/// parked row goes, in one transaction, so it is never both resolved and still parked.
pub(super) async fn resolve_parked(
    pool: &PgPool,
    row: &DeliveryRow<'_>,
) -> Result<(), WebhookError> {
    let (first_position, last_position) = positions(row.positions)?;
    let mut transaction = ledger_store::begin_transaction(pool).await?;
    sqlx::query!(
        r#"UPDATE webhook_deliveries
           SET outcome = $3, detail = $4, first_position = $5, last_position = $6,
               payment_id = COALESCE($7, payment_id), processed_at = $8
           WHERE environment = $1 AND stripe_event_id = $2
             AND outcome NOT IN ('applied', 'duplicate', 'ignored')"#,
        row.environment.as_str(),
        row.stripe_event_id,
        row.outcome.as_str(),
        bounded(row.detail),
        first_position,
        last_position,
        row.payment_id,
        row.processed_at
    )
    .execute(&mut *transaction)
    .await?;
    sqlx::query!(
        "DELETE FROM webhook_parked WHERE environment = $1 AND stripe_event_id = $2",
        row.environment.as_str(),
        row.stripe_event_id
    )
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// The ledger payment linked to a PaymentIntent, if any.
pub(super) async fn linked_payment(
    pool: &PgPool,
    environment: Environment,
    payment_intent_id: &str,
) -> Result<Option<Uuid>, WebhookError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT payment_id FROM webhook_payment_links
           WHERE environment = $1 AND payment_intent_id = $2"#,
        environment.as_str(),
        payment_intent_id
    )
    .fetch_optional(pool)
    .await?)
}

/// What linking a PaymentIntent to a payment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PaymentLink {
    /// The PaymentIntent is linked to this payment (the first link of a PaymentIntent wins).
    Linked(Uuid),
    /// The payment is linked to this other PaymentIntent already; a payment has one.
    PaymentHasAnother(String),
}

/// Links a PaymentIntent to a payment. Each PaymentIntent is linked to one payment and each
/// payment to one PaymentIntent (`webhook_payment_links`' two unique keys): the first link of
/// either wins, and the keys settle races between processes.
pub(super) async fn link_payment(
    pool: &PgPool,
    environment: Environment,
    payment_intent_id: &str,
    payment_id: Uuid,
) -> Result<PaymentLink, WebhookError> {
    // The new link, or the PaymentIntent's link as the statement's snapshot holds it: one
    // round trip in the common cases.
    let linked = sqlx::query_scalar!(
        r#"WITH inserted AS (
               INSERT INTO webhook_payment_links (environment, payment_intent_id, payment_id)
               VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING
               RETURNING payment_id)
           SELECT payment_id AS "payment_id!" FROM inserted
           UNION ALL
           SELECT payment_id FROM webhook_payment_links
           WHERE environment = $1 AND payment_intent_id = $2
           LIMIT 1"#,
        environment.as_str(),
        payment_intent_id,
        payment_id
    )
    .fetch_optional(pool)
    .await?;
    if let Some(linked) = linked {
        return Ok(PaymentLink::Linked(linked));
    }
    // Nothing linked in that snapshot: the insert met a conflicting link committed after the
    // snapshot (another process's), or the payment's own key refused it. Fresh reads tell.
    if let Some(linked) = linked_payment(pool, environment, payment_intent_id).await? {
        return Ok(PaymentLink::Linked(linked));
    }
    // Not linked, so the payment's own key refused the link: it has another PaymentIntent.
    let other = sqlx::query_scalar!(
        r#"SELECT payment_intent_id FROM webhook_payment_links
           WHERE environment = $1 AND payment_id = $2"#,
        environment.as_str(),
        payment_id
    )
    .fetch_optional(pool)
    .await?;
    other
        .map(PaymentLink::PaymentHasAnother)
        .ok_or_else(|| WebhookError::CorruptRow {
            stripe_event_id: String::new(),
            reason: format!(
                "PaymentIntent {payment_intent_id} could not be linked, yet neither it nor payment {payment_id} has a link"
            ),
        })
}

/// Parks a verified event on its subject; parking it again counts an attempt.
pub(super) async fn park(
    pool: &PgPool,
    event: &VerifiedEvent,
    subject: &str,
    reason: &str,
) -> Result<(), WebhookError> {
    let envelope =
        serde_json::to_value(event.event()).map_err(|error| WebhookError::CorruptRow {
            stripe_event_id: event.id().to_owned(),
            reason: format!("the event cannot be stored: {error}"),
        })?;
    sqlx::query!(
        r#"INSERT INTO webhook_parked (
               environment, stripe_event_id, subject, event_type, event_created_at, event, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (environment, stripe_event_id) DO UPDATE SET
               attempts = webhook_parked.attempts + 1,
               last_attempt_at = now(),
               reason = EXCLUDED.reason"#,
        event.environment().as_str(),
        event.id(),
        subject,
        event.event_type(),
        event.occurred_at(),
        envelope,
        bounded(Some(reason))
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Counts a retry that found the event still waiting.
pub(super) async fn touch_parked(
    pool: &PgPool,
    environment: Environment,
    stripe_event_id: &str,
    reason: &str,
) -> Result<(), WebhookError> {
    sqlx::query!(
        r#"UPDATE webhook_parked
           SET attempts = attempts + 1, last_attempt_at = now(), reason = $3
           WHERE environment = $1 AND stripe_event_id = $2"#,
        environment.as_str(),
        stripe_event_id,
        bounded(Some(reason))
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes a parked event (it resolved on its second try, right after parking).
pub(super) async fn unpark(
    pool: &PgPool,
    environment: Environment,
    stripe_event_id: &str,
) -> Result<(), WebhookError> {
    sqlx::query!(
        "DELETE FROM webhook_parked WHERE environment = $1 AND stripe_event_id = $2",
        environment.as_str(),
        stripe_event_id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// A subject's parked events, in Stripe's order of creation.
pub(super) async fn parked_on(
    pool: &PgPool,
    environment: Environment,
    subject: &str,
    limit: i64,
) -> Result<Vec<ParkedRow>, WebhookError> {
    let rows = sqlx::query!(
        r#"SELECT stripe_event_id, event, parked_at FROM webhook_parked
           WHERE environment = $1 AND subject = $2
           ORDER BY event_created_at, stripe_event_id
           LIMIT $3"#,
        environment.as_str(),
        subject,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ParkedRow {
            stripe_event_id: row.stripe_event_id,
            event: row.event,
            parked_at: row.parked_at,
        })
        .collect())
}

/// One page of the subjects with parked events, in subject order after `after` (`""` for the
/// first page). Keyset pages reach every subject however many there are, and a subject
/// resolved or parked while the pages are read moves no other across a page boundary.
pub(super) async fn parked_subjects_after(
    pool: &PgPool,
    environment: Environment,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, WebhookError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT subject FROM webhook_parked
           WHERE environment = $1 AND subject > $2
           ORDER BY subject
           LIMIT $3"#,
        environment.as_str(),
        after,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Gives up on a parked event that was parked before `cutoff`: its parked row goes and its
/// delivery row becomes `expired` (created from the parked row if the delivery was never
/// recorded), in one statement. Returns whether it expired now; an event resolved or parked
/// anew meanwhile is left alone, and a delivery that was applied keeps its outcome.
pub(super) async fn expire_parked(
    pool: &PgPool,
    environment: Environment,
    stripe_event_id: &str,
    cutoff: DateTime<Utc>,
    detail_prefix: &str,
    processed_at: DateTime<Utc>,
) -> Result<bool, WebhookError> {
    let expired = sqlx::query_scalar!(
        r#"WITH expired AS (
               DELETE FROM webhook_parked
               WHERE environment = $1 AND stripe_event_id = $2 AND parked_at < $3
               RETURNING environment, stripe_event_id, subject, event_type, reason, parked_at)
           INSERT INTO webhook_deliveries (
               environment, stripe_event_id, event_type, payment_intent_id, outcome, detail,
               received_at, last_received_at, processed_at)
           SELECT environment, stripe_event_id, event_type,
                  CASE WHEN subject LIKE 'pi\_%' THEN subject END, 'expired',
                  left($4 || reason, 2000), parked_at, parked_at, $5
           FROM expired
           ON CONFLICT (environment, stripe_event_id) DO UPDATE SET
               outcome = 'expired', detail = EXCLUDED.detail,
               first_position = NULL, last_position = NULL,
               processed_at = EXCLUDED.processed_at
           WHERE webhook_deliveries.outcome NOT IN ('applied', 'duplicate', 'ignored')
           RETURNING stripe_event_id"#,
        environment.as_str(),
        stripe_event_id,
        cutoff,
        detail_prefix,
        processed_at
    )
    .fetch_optional(pool)
    .await?;
    Ok(expired.is_some())
}

/// The settlement batch of this environment that initiated the payout, if any, from the
/// settlement read model. A batch the read model has not applied yet is looked for again
/// after bringing the settlement projection up to the log's head, so a payout never waits
/// for a batch the log already holds.
pub(super) async fn batch_for_payout(
    pool: &PgPool,
    environment: Environment,
    payout_id: &str,
) -> Result<Option<Uuid>, WebhookError> {
    if let Some(batch_id) = settlement::batch_of_payout(pool, environment, payout_id).await? {
        return Ok(Some(batch_id));
    }
    let mut projector = Projector::new(
        pool.clone(),
        SchemaName::live(),
        &[Projection::Settlement],
        ProjectorOptions::default(),
    );
    projector.catch_up(None).await?;
    Ok(settlement::batch_of_payout(pool, environment, payout_id).await?)
}
