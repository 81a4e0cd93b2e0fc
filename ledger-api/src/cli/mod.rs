//! The `ledger` command line: one binary, a subcommand per job.

pub mod keys;
pub mod serve;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

/// An event-sourced payment ledger: every payment fact in an append-only, hash-chained log.
///
/// Without DATABASE_URL, every command uses the embedded default database: a private
/// PostgreSQL cluster under ./.ledger/, started from this machine's PostgreSQL server binaries
/// and stopped again when the command that started it exits.
#[derive(Debug, Parser)]
#[command(name = "ledger", version, about, long_about)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "LEDGER_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the GraphQL API, webhooks, health and metrics (applies pending migrations first).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "LEDGER_BIND")]
        bind: SocketAddr,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create, list and revoke API keys (only their hashes are stored).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
}
