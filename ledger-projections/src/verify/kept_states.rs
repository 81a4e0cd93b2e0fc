//! The refold's check of the states the log keeps in its stream rows (ledger-store's
//! `kept_state`): a read of a stream trusts its row's state, version, times and last position
//! instead of folding its events, so each must be what the fold of the log makes them.
//!
//! After each page, the rows of the page's streams are read, but only those the page settles:
//! a row at the version the fold has reached is compared whole; a row behind the fold, or
//! claiming events at positions the fold has passed, is wrong. A row ahead of the fold, whose
//! last position is beyond the page, waits for its page. At the end, every row keeping a state
//! whose last position is within what was folded must have been compared: more of them than
//! were compared means rows for events the log does not hold, which are listed.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use ledger_core::aggregate::Aggregate;
use ledger_core::codec::CodecError;
use ledger_core::kept_form;
use ledger_core::payment::PaymentState;
use ledger_core::reconciliation::ReconciliationRunState;
use ledger_core::settlement::SettlementBatchState;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Discrepancy;
use crate::error::{from_stored, to_stored, ProjectionError};
use crate::stream_states::{StreamState, StreamStates};

/// Rows reported by the end's look for rows the fold never met.
const MAX_UNMET_REPORTED: i64 = 50;

/// A stream's last event in a page.
pub(super) struct PageEnd {
    pub position: u64,
    pub occurred_at: DateTime<Utc>,
}

/// How many kept states the refold compared, and the streams whose rows it reported.
#[derive(Default)]
pub(super) struct KeptStates {
    compared: u64,
    reported: HashSet<Uuid>,
}

impl KeptStates {
    /// How many kept states were compared so far.
    pub(super) fn compared(&self) -> u64 {
        self.compared
    }

    /// Compares the kept states the page settles; `page_last` is the page's last position.
    pub(super) async fn check_page(
        &mut self,
        connection: &mut PgConnection,
        states: &StreamStates,
        page: &HashMap<Uuid, PageEnd>,
        page_last: u64,
        discrepancies: &mut Vec<Discrepancy>,
    ) -> Result<(), ProjectionError> {
        let mut stream_ids = Vec::with_capacity(page.len());
        let mut folded_versions = Vec::with_capacity(page.len());
        for stream_id in page.keys() {
            if let Some(state) = states.get(stream_id) {
                stream_ids.push(*stream_id);
                folded_versions.push(to_stored(state.version())?);
            }
        }
        // One probe of the primary key per stream, whatever the planner makes of the table's
        // size (`OFFSET 0` keeps it from hashing a scan of every row, as it did once per page).
        let rows = sqlx::query!(
            r#"SELECT s.stream_id AS "stream_id!", s.stream_type AS "stream_type!",
                   s.version AS "version!", s.state_format AS "state_format!",
                   s.state AS "state!", s.first_occurred_at AS "first_occurred_at!",
                   s.last_occurred_at AS "last_occurred_at!", s.last_position AS "last_position!"
               FROM UNNEST($1::uuid[], $2::bigint[]) AS folded (stream_id, version)
               CROSS JOIN LATERAL (
                   SELECT * FROM streams
                   WHERE streams.stream_id = folded.stream_id AND streams.state IS NOT NULL
                     AND (streams.version <= folded.version OR streams.last_position <= $3)
                   OFFSET 0
               ) s"#,
            &stream_ids,
            &folded_versions,
            to_stored(page_last)?,
        )
        .fetch_all(connection)
        .await?;
        for row in rows {
            let (Some(state), Some(end)) = (states.get(&row.stream_id), page.get(&row.stream_id))
            else {
                continue;
            };
            let Ok(format) = u32::try_from(row.state_format) else {
                continue;
            };
            if format != format_of(state) {
                // Reads do not use a state of another format; neither is it counted below.
                continue;
            }
            self.compared += 1;
            let found = Found {
                stream_type: &row.stream_type,
                version: from_stored(row.version)?,
                bytes: &row.state,
                first_occurred_at: row.first_occurred_at,
                last_occurred_at: row.last_occurred_at,
                last_position: from_stored(row.last_position)?,
            };
            let first_occurred_at = states.first_occurred_at(&row.stream_id);
            if let Some(reason) = differs(&found, state, end, first_occurred_at) {
                self.reported.insert(row.stream_id);
                discrepancies.push(Discrepancy::KeptStateDiffers {
                    stream_id: row.stream_id,
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Checks that every row keeping a state at or before `folded_to` was compared; `skipped`
    /// rows of streams the refold stopped folding (already reported) are not.
    pub(super) async fn finish(
        self,
        connection: &mut PgConnection,
        folded_to: u64,
        skipped: u64,
        discrepancies: &mut Vec<Discrepancy>,
    ) -> Result<(), ProjectionError> {
        let folded_to = to_stored(folded_to)?;
        let formats = [
            i32::try_from(PaymentState::STATE_FORMAT).unwrap_or(i32::MAX),
            i32::try_from(SettlementBatchState::STATE_FORMAT).unwrap_or(i32::MAX),
            i32::try_from(ReconciliationRunState::STATE_FORMAT).unwrap_or(i32::MAX),
        ];
        let kept = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM streams
               WHERE state IS NOT NULL AND last_position <= $1
                 AND state_format = CASE stream_type WHEN 'payment' THEN $2::integer
                     WHEN 'settlement_batch' THEN $3::integer ELSE $4::integer END"#,
            folded_to,
            formats[0],
            formats[1],
            formats[2],
        )
        .fetch_one(&mut *connection)
        .await?;
        let kept = u64::try_from(kept).unwrap_or(0);
        if kept <= self.compared + skipped {
            return Ok(());
        }
        let unmet = sqlx::query!(
            r#"SELECT s.stream_id, s.version, s.last_position AS "last_position!"
               FROM streams s
               WHERE s.state IS NOT NULL AND s.last_position <= $1
                 AND NOT EXISTS (
                     SELECT 1 FROM events e
                     WHERE e.position = s.last_position AND e.stream_id = s.stream_id
                       AND e.stream_version = s.version)
               ORDER BY s.last_position
               LIMIT $2"#,
            folded_to,
            MAX_UNMET_REPORTED,
        )
        .fetch_all(&mut *connection)
        .await?;
        let unmet: Vec<_> = unmet
            .into_iter()
            .filter(|row| !self.reported.contains(&row.stream_id))
            .collect();
        if unmet.is_empty() {
            discrepancies.push(Discrepancy::KeptStateDiffers {
                stream_id: Uuid::nil(),
                reason: format!(
                    "{kept} stream rows keep a state up to position {folded_to}, but the fold \
                     met {} of them",
                    self.compared + skipped
                ),
            });
        }
        for row in unmet {
            discrepancies.push(Discrepancy::KeptStateDiffers {
                stream_id: row.stream_id,
                reason: format!(
                    "its row keeps a state of version {} ending at position {}, an event the \
                     log does not hold for it",
                    row.version, row.last_position
                ),
            });
        }
        Ok(())
    }
}

/// A row as stored.
struct Found<'row> {
    stream_type: &'row str,
    version: u64,
    bytes: &'row [u8],
    first_occurred_at: DateTime<Utc>,
    last_occurred_at: DateTime<Utc>,
    last_position: u64,
}

fn format_of(state: &StreamState) -> u32 {
    match state {
        StreamState::Payment(_) => PaymentState::STATE_FORMAT,
        StreamState::Settlement(_) => SettlementBatchState::STATE_FORMAT,
        StreamState::Reconciliation(_) => ReconciliationRunState::STATE_FORMAT,
    }
}

/// What is wrong with a row against the fold, if anything.
fn differs(
    found: &Found<'_>,
    folded: &StreamState,
    end: &PageEnd,
    first_occurred_at: Option<DateTime<Utc>>,
) -> Option<String> {
    let version = folded.version();
    if found.version != version {
        return Some(format!(
            "its row is at version {} and ends at position {}, but the log holds version \
             {version} at position {}",
            found.version, found.last_position, end.position
        ));
    }
    let (stream_type, same_state) = match folded {
        StreamState::Payment(state) => ("payment", same(found.bytes, state)),
        StreamState::Settlement(state) => ("settlement_batch", same(found.bytes, state)),
        StreamState::Reconciliation(state) => ("reconciliation_run", same(found.bytes, state)),
    };
    if found.stream_type != stream_type {
        return Some(format!(
            "its row says a {} stream, its events a {stream_type} stream",
            found.stream_type
        ));
    }
    if found.last_position != end.position {
        return Some(format!(
            "its row ends at position {}, its last event is at {}",
            found.last_position, end.position
        ));
    }
    if found.last_occurred_at != end.occurred_at
        || Some(found.first_occurred_at) != first_occurred_at
    {
        return Some(format!(
            "its row's times ({} to {}) are not its events' ({} to {})",
            found.first_occurred_at,
            found.last_occurred_at,
            first_occurred_at.map_or_else(|| "?".to_owned(), |time| time.to_string()),
            end.occurred_at
        ));
    }
    match same_state {
        Ok(true) => None,
        Ok(false) => Some(format!(
            "its kept state at version {version} is not the fold of its events"
        )),
        Err(error) => Some(format!("its kept state does not read back: {error}")),
    }
}

fn same<State>(bytes: &[u8], folded: &State) -> Result<bool, CodecError>
where
    State: Aggregate + PartialEq,
{
    Ok(kept_form::decode::<State>(bytes)? == *folded)
}
