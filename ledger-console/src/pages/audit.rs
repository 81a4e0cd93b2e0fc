//! Audit: the hash chain's head (what an auditor keeps, to check a later export still holds
//! it), the last `ledger verify` run as it recorded itself, and a download of the export for auditors: the log as JSON Lines in the format of
//! interfaces.md, the same lines `ledger export` writes (`ledger_store::export_line`), streamed
//! page by page up to the head read when the download starts, so memory stays flat whatever
//! the log's size. Only roles that may read the global log (finance, auditor, admin).

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use ledger_api::auth::Permission;
use ledger_projections::export::EXPORT_PAGE_SIZE;
use ledger_store::{export_line, EventStore};

use super::html;
use super::payments::time;
use crate::current::{Current, Frame};
use crate::error::ConsoleError;
use crate::ConsoleState;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    frame: Frame,
    position: u64,
    hash: String,
    head: String,
    verification: Option<VerificationLine>,
}

pub struct VerificationLine {
    pub verified_at: String,
    pub through_position: u64,
    pub events_checked: u64,
    pub discrepancies: u64,
    pub first_discrepancy: String,
    pub expected_head: String,
}

pub async fn page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadGlobalLog, "the audit page")?;
    let head = state.handler.store().head().await?;
    let verification = ledger_projections::last_verification(&state.pool)
        .await?
        .map(|record| VerificationLine {
            verified_at: time(record.verified_at),
            through_position: record.through_position,
            events_checked: record.events_checked,
            discrepancies: record.discrepancies,
            first_discrepancy: record.first_discrepancy.unwrap_or_default(),
            expected_head: record.expected_head.unwrap_or_default(),
        });
    html(&AuditPage {
        verification,
        frame: current.frame("audit"),
        position: head.last_position,
        hash: hex::encode(head.last_hash),
        head: head.to_string(),
    })
}

/// `/console/audit/export.jsonl`: every event up to the head read now, one JSON line each.
pub async fn export(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadGlobalLog, "the audit export")?;
    let store = state.handler.store().clone();
    let head = store.head().await?;
    let last = head.last_position;
    // One page of lines per chunk; a failed read ends the body with an error, so the client
    // sees a broken download rather than a short file that looks whole.
    let pages = futures::stream::try_unfold(1_u64, move |next| {
        let store: EventStore = store.clone();
        async move {
            if next > last {
                return Ok::<_, std::io::Error>(None);
            }
            let page = store
                .read_all(next, EXPORT_PAGE_SIZE)
                .await
                .map_err(std::io::Error::other)?;
            let mut chunk = Vec::new();
            let mut after = last + 1;
            for event in page.iter().take_while(|event| event.position <= last) {
                serde_json::to_writer(&mut chunk, &export_line(event))?;
                chunk.push(b'\n');
                after = event.position + 1;
            }
            if page.is_empty() {
                return Ok(None);
            }
            Ok(Some((Bytes::from(chunk), after)))
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"ledger-export-{last}.jsonl\""),
            ),
            (
                header::HeaderName::from_static("x-ledger-export-head"),
                head.to_string(),
            ),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}
