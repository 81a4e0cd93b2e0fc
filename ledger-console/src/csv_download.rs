//! Tables as CSV downloads: the same rows, filters and role checks as the page they come from
//! (each page's handler answers `format=csv` itself, after its own checks).

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ConsoleError;

/// A table's header and rows, written by the `csv` crate (quoting, embedded commas and line
/// breaks), answered as an attachment named `file_name` (ours, never the client's text).
pub fn csv_response(
    file_name: &str,
    header_row: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Response, ConsoleError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |error: csv::Error| ConsoleError::Internal(format!("a CSV download: {error}"));
    writer.write_record(header_row).map_err(failed)?;
    for row in rows {
        writer.write_record(&row).map_err(failed)?;
    }
    let body = writer
        .into_inner()
        .map_err(|error| ConsoleError::Internal(format!("a CSV download: {error}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Whether a page's `format` parameter asks for the CSV download; anything but `csv` or
/// nothing is refused.
pub fn wants_csv(format: Option<&str>) -> Result<bool, ConsoleError> {
    match format {
        None | Some("") | Some("html") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ConsoleError::BadInput(format!(
            "a page comes as html or csv, not {other:?}"
        ))),
    }
}
