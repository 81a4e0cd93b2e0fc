//! A page's table as a CSV download (written by the `csv` crate, quoting included): the same
//! rows the page shows, so a spreadsheet and the page never disagree.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ConsoleError;

/// The rows, under their header, as `filename` for the browser to save.
pub fn download(
    filename: &str,
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Response, ConsoleError> {
    let failed = |error: csv::Error| ConsoleError::Internal(format!("writing CSV: {error}"));
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header).map_err(failed)?;
    for row in rows {
        writer.write_record(&row).map_err(failed)?;
    }
    let body = writer
        .into_inner()
        .map_err(|error| ConsoleError::Internal(format!("writing CSV: {error}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response())
}
