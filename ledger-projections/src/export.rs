//! The audit export: the log as JSON Lines, one event per line in position order, in the
//! format of interfaces.md ("Audit export and hash chain"), streamed page by page so that
//! memory stays flat whatever the log's size.

use std::io::Write;

use ledger_store::{export_line, EventStore, LogHead};

use crate::error::ProjectionError;

/// Events read per page.
pub const EXPORT_PAGE_SIZE: usize = 5_000;

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportSummary {
    pub events: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// The last event written, as the head an auditor keeps for `ledger verify --expect-head`.
    pub head: Option<LogHead>,
}

/// Writes positions `from_position..=to_position` (to the head when `None`) to `out`.
#[tracing::instrument(skip(store, out))]
pub async fn export(
    store: &EventStore,
    from_position: u64,
    to_position: Option<u64>,
    out: &mut impl Write,
) -> Result<ExportSummary, ProjectionError> {
    let mut summary = ExportSummary::default();
    let mut next = from_position.max(1);
    loop {
        if to_position.is_some_and(|to| next > to) {
            break;
        }
        let page = store.read_all(next, EXPORT_PAGE_SIZE).await?;
        if page.is_empty() {
            break;
        }
        for event in &page {
            if to_position.is_some_and(|to| event.position > to) {
                out.flush()?;
                return Ok(summary);
            }
            serde_json::to_writer(&mut *out, &export_line(event))?;
            out.write_all(b"\n")?;
            summary.first_position.get_or_insert(event.position);
            summary.last_position = Some(event.position);
            summary.head = Some(LogHead {
                last_position: event.position,
                last_hash: event.hash,
            });
            summary.events += 1;
            next = event.position + 1;
        }
    }
    out.flush()?;
    Ok(summary)
}
