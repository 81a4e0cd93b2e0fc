//! The `ledger` binary: parses the command line, opens the database, runs the subcommand.
//!
//! # Layout
//! - `cli`: the subcommands, one module each (`serve`, `keys`, `audit` for replay, verify and
//!   export, `reconcile`, `demo`, `bench`, `sandbox`, `scenarios`), and the HTTP client `demo` and `bench`
//!   drive.
//! - `config`: the server's configuration from the environment.
//! - `database`: `DATABASE_URL`, or the embedded default cluster under `./.ledger/`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cli;
mod config;
mod database;

use std::io::IsTerminal;

use clap::Parser;
use cli::{Cli, Command};
use database::Database;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The log filter when `RUST_LOG` sets none: the server logs what it does; `ledger demo` tells
/// its own story on the terminal, so its in-process server's lines (one per request and
/// webhook) would bury it, and only warnings and errors are shown.
fn default_filter(command: &Command) -> &'static str {
    match command {
        Command::Demo { .. } => "warn,sqlx=warn",
        _ => "info,sqlx=warn",
    }
}

fn init_logging(json: bool, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal: a pipe or a file (a log collector, journald)
    // gets plain lines, not escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_json, default_filter(&cli.command));
    // Commands that read no ledger data start no database.
    if let Command::Playbook { format } = cli.command {
        return cli::playbook::print(format);
    }
    // Listened for before the embedded cluster starts: Ctrl-C during start-up then stops the
    // server cleanly, and the cluster with it, instead of killing the process.
    let shutdown = matches!(cli.command, Command::Serve { .. })
        .then(cli::serve::ShutdownSignal::listen)
        .transpose()?;
    // The sandbox is a gateway stand-in, not the ledger: it must never open the database.
    if let Command::Sandbox {
        bind,
        webhook_urls,
        webhook_events,
        webhook_secret,
        chaos,
        seed,
        payout_delay_days,
    } = cli.command
    {
        return cli::sandbox::run(
            bind,
            webhook_urls,
            &webhook_events,
            webhook_secret,
            chaos,
            seed,
            payout_delay_days,
        )
        .await;
    }
    // The runner starts its own ledger as a child process when it needs one.
    if let Command::Scenarios { command } = cli.command {
        return cli::scenarios::run(command).await;
    }
    let database = Database::open()?;
    let outcome = run(&database, cli.command, shutdown).await;
    database.close()?;
    outcome
}

async fn run(
    database: &Database,
    command: Command,
    shutdown: Option<cli::serve::ShutdownSignal>,
) -> anyhow::Result<()> {
    let pool = database.connect().await?;
    let outcome = run_command(database, command, shutdown, pool.clone()).await;
    // Every connection back and closed before the embedded cluster stops: a connection still
    // on its way back to the pool (sqlx checks it there) would otherwise meet a stopping
    // server and log an error after a command that succeeded (`ledger export | head`).
    pool.close().await;
    outcome
}

async fn run_command(
    database: &Database,
    command: Command,
    shutdown: Option<cli::serve::ShutdownSignal>,
    pool: sqlx::PgPool,
) -> anyhow::Result<()> {
    match command {
        Command::Serve { bind } => {
            let shutdown = match shutdown {
                Some(shutdown) => shutdown,
                None => cli::serve::ShutdownSignal::listen()?,
            };
            if let Some(location) = database.data_location() {
                println!("ledger data: {}", location.display());
            }
            // The owner's connections were for the migrations; the server works as its own
            // role from here on.
            let serving = database.serving_pool(&pool).await?;
            pool.close().await;
            let outcome = cli::serve::run(serving.clone(), bind, shutdown).await;
            serving.close().await;
            outcome
        }
        Command::Migrate => {
            println!("migrations are current");
            Ok(())
        }
        Command::Keys { command } => cli::keys::run(&pool, command).await,
        Command::Endpoints { command } => cli::endpoints::run(&pool, command).await,
        Command::Replay {
            to_position,
            as_of,
            projection,
        } => cli::audit::replay(&pool, to_position, as_of, projection).await,
        Command::Verify { expect_head } => cli::audit::verify(&pool, expect_head).await,
        Command::Demo { payments } => cli::demo::run(pool, payments).await,
        Command::Bench {
            clients,
            seconds,
            store_writers,
        } => cli::bench::run(pool, database.url(), clients, seconds, store_writers).await,
        Command::Reconcile { command } => cli::reconcile::run(&pool, command).await,
        Command::Export {
            from_position,
            to_position,
        } => cli::audit::export(&pool, from_position, to_position).await,
        // Answered in `main` before any database starts.
        Command::Playbook { format } => cli::playbook::print(format),
        Command::Sandbox { .. } => {
            anyhow::bail!("ledger sandbox runs without the database; main answers it first")
        }
        Command::Scenarios { .. } => {
            anyhow::bail!("ledger scenarios runs without the database; main answers it first")
        }
    }
}
