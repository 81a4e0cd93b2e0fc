//! `ledger reconcile stripe-payouts FILE.csv`: finance's import of Stripe's itemized payout
//! reconciliation report.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use ledger_core::ids::Environment;
use ledger_store::commands::CommandHandler;
use ledger_store::EventStore;
use sqlx::PgPool;

use ledger_stripe::reconcile::{import_and_apply_parked, ImportRequest, Progress};
use ledger_stripe::webhooks::WebhookState;

/// Days after a capture by which Stripe is expected to have paid it out, unless told.
pub const DEFAULT_AVAILABILITY_DAYS: u32 = 7;

#[derive(Debug, Subcommand)]
pub enum ReconcileCommand {
    /// Import Stripe's itemized payout reconciliation report (CSV, as downloaded from the
    /// Dashboard or the Reports API; extra and reordered columns are fine) as a reconciliation
    /// run: every line is matched against the ledger or recorded as an exception, and every
    /// payout whose lines all match is recorded as a settlement batch and its paid payout.
    /// Importing the same file again records nothing and prints the first run's summary; an
    /// interrupted import is finished by importing the file again.
    StripePayouts {
        /// The report file.
        file: PathBuf,
        /// The environment the report belongs to (a test-mode report is `test`). Required: a
        /// report recorded in the wrong environment would settle the wrong payments.
        #[arg(long, value_parser = parse_environment)]
        environment: Environment,
        /// Days after a capture by which it should be in a payout; older unsettled items are
        /// reported as missing from the payouts.
        #[arg(long, default_value_t = DEFAULT_AVAILABILITY_DAYS)]
        availability_days: u32,
    },
}

fn parse_environment(text: &str) -> Result<Environment, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not an environment: use live or test"))
}

pub async fn run(pool: &PgPool, command: ReconcileCommand) -> anyhow::Result<()> {
    let ReconcileCommand::StripePayouts {
        file,
        environment,
        availability_days,
    } = command;
    let handler = CommandHandler::new(EventStore::new(pool.clone()));
    let request = ImportRequest {
        environment,
        file_name: file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned()),
        actor_id: format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
        ),
        actor_role: "finance".to_owned(),
        availability_days,
        now: chrono::Utc::now(),
        idempotency: None,
    };
    let path = file.clone();
    let open = move || std::fs::File::open(&path).map(std::io::BufReader::new);
    let mut report_progress = |progress: Progress| {
        let line = match progress {
            Progress::Read { lines } => format!("read {lines} lines"),
            Progress::Matched { lines, payouts } if payouts % 50 == 0 => {
                format!("matched {lines} lines of {payouts} payouts")
            }
            Progress::Matched { .. } => return,
            Progress::Done => "done".to_owned(),
        };
        eprintln!("reconcile: {line}");
    };
    // Payout events parked by a server of this database wait for the batches this import
    // records; without webhook secrets no Stripe event was ever parked here.
    let webhooks =
        crate::config::webhook_config()?.map(|config| WebhookState::new(handler.clone(), config));
    let outcome = import_and_apply_parked(
        &handler,
        webhooks.as_ref(),
        &request,
        open,
        &mut report_progress,
    )
    .await
    .with_context(|| format!("could not import {}", file.display()))?;
    let summary = &outcome.summary;
    let mut out = std::io::stdout().lock();
    if outcome.already_imported {
        writeln!(
            out,
            "this file was already imported as run {}: nothing new was recorded",
            outcome.run_id
        )?;
    }
    writeln!(out, "run {} ({})", outcome.run_id, environment.as_str())?;
    writeln!(
        out,
        "lines {}  matched {}  exceptions {}",
        summary.lines, summary.matched_lines, summary.exceptions
    )?;
    writeln!(
        out,
        "payouts proven {}  unproven {}  settlement batches recorded {}",
        summary.payouts_proven, summary.payouts_unproven, summary.batches_recorded
    )?;
    if let Some(peak) = peak_memory_kib() {
        writeln!(out, "peak memory {} MiB", peak / 1024)?;
    }
    Ok(())
}

/// The process's peak resident memory (Linux), so that a large import can show it stayed flat.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}
