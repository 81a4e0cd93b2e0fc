//! `ledger replay`, `ledger verify` and `ledger export`: the auditor's commands.

use std::io::Write as _;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use ledger_projections::ProjectionError;
use ledger_projections::{
    build_point_in_time, rebuild, AsOf, Projection, ProjectorOptions, SchemaName,
};
use ledger_store::{EventStore, LogHead};
use sqlx::PgPool;

/// Rebuilds read models: to the end (built beside the live ones, then swapped in), or to a
/// point in the past into a schema of its own that auditors can query.
pub async fn replay(
    pool: &PgPool,
    to_position: Option<u64>,
    as_of: Option<DateTime<Utc>>,
    projection: Option<String>,
) -> anyhow::Result<()> {
    let projections = match projection {
        Some(name) => vec![name
            .parse::<Projection>()
            .map_err(|error| anyhow::anyhow!("{error}"))?],
        None => Projection::ALL.to_vec(),
    };
    let point = match (to_position, as_of) {
        (Some(position), None) => Some(AsOf::Position(position)),
        (None, Some(time)) => Some(AsOf::Time(time)),
        (None, None) => None,
        (Some(_), Some(_)) => anyhow::bail!("give --to-position or --as-of, not both"),
    };
    eprintln!(
        "rebuilding {} from the event log…",
        projections
            .iter()
            .map(|projection| projection.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let report = match point {
        None => rebuild(pool, &projections, ProjectorOptions::for_build())
            .await
            .context("the rebuild failed; the live read models are untouched")?,
        Some(point) => {
            let position = ledger_projections::position_as_of(pool, point).await?;
            let schema = SchemaName::for_point(position);
            build_point_in_time(
                pool,
                &schema,
                point,
                &projections,
                ProjectorOptions::for_build(),
            )
            .await
            .context("the point-in-time build failed")?
        }
    };
    println!(
        "built {} at position {} into schema {} ({} events, {:.0} events/s; {:.1} s of {:.1} s making \
         the tables durable and indexing them)",
        report
            .projections
            .iter()
            .map(|projection| projection.name())
            .collect::<Vec<_>>()
            .join(", "),
        report.position,
        report.schema,
        report.events_applied,
        report.events_per_second(),
        report.finishing.as_secs_f64(),
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Checks the hash chain up to the log head, every stream's invariants, the trial balance,
/// every read model and, when given, that a head kept from an earlier export is still in the
/// chain; fails (non-zero exit) on any discrepancy.
pub async fn verify(pool: &PgPool, expect_head: Option<LogHead>) -> anyhow::Result<()> {
    eprintln!("verifying the hash chain, every stream and every read model…");
    let store = EventStore::new(pool.clone());
    let mut report = ledger_projections::verify(&store, ProjectorOptions::for_build())
        .await
        .context("verification could not run")?;
    if let Some(kept) = expect_head {
        let missing = ledger_projections::check_kept_head(&store, kept)
            .await
            .context("verification could not run")?;
        report.discrepancies.extend(missing);
    }
    // Kept for the console's audit page ("the last verification"). An auditor may verify with
    // a read-only account: the verdict still stands when it cannot be recorded.
    if let Err(error) = ledger_projections::record_verification(pool, &report, expect_head).await {
        eprintln!("note: the verification was not recorded for the console: {error}");
    }
    println!("{report}");
    if report.is_clean() {
        Ok(())
    } else {
        anyhow::bail!("verification found discrepancies")
    }
}

/// Whether writing failed because the reader closed standard output.
fn closed_early(error: &ProjectionError) -> bool {
    let kind = match error {
        ProjectionError::Io(error) => Some(error.kind()),
        ProjectionError::Json(error) => error.io_error_kind(),
        _ => None,
    };
    kind == Some(std::io::ErrorKind::BrokenPipe)
}

/// Writes the log as JSON Lines (the audit format of interfaces.md) to standard output, then
/// the head it reached on standard error for the auditor to keep. A reader that closes the
/// pipe early (`ledger export | head`) ends the export quietly: it asked for no more.
pub async fn export(
    pool: &PgPool,
    from_position: Option<u64>,
    to_position: Option<u64>,
) -> anyhow::Result<()> {
    let store = EventStore::new(pool.clone());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let exported =
        ledger_projections::export(&store, from_position.unwrap_or(1), to_position, &mut out).await;
    let summary = match exported {
        Err(error) if closed_early(&error) => return Ok(()),
        other => other.context("the export failed")?,
    };
    match out.flush() {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        other => other.context("could not write the export")?,
    }
    eprintln!(
        "exported {} events ({}–{})",
        summary.events,
        summary
            .first_position
            .map_or("-".to_owned(), |p| p.to_string()),
        summary
            .last_position
            .map_or("-".to_owned(), |p| p.to_string())
    );
    match summary.head {
        Some(head) => eprintln!(
            "head {head}  (keep it: `ledger verify --expect-head {head}` proves this log was not \
             rewritten or cut since)"
        ),
        None => eprintln!("head: nothing exported"),
    }
    Ok(())
}
