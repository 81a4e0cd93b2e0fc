//! The `ledger` command line: one binary, a subcommand per job.

pub mod audit;
pub mod bench;
pub mod client;
pub mod demo;
pub mod endpoints;
pub mod keys;
pub mod playbook;
pub mod reconcile;
pub mod sandbox;
pub mod scenarios;
pub mod serve;
pub mod store_load;

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
    /// Create, list, disable and rotate outbound notification endpoints; list their
    /// deliveries and replay them.
    Endpoints {
        #[command(subcommand)]
        command: endpoints::EndpointsCommand,
    },
    /// Rebuild read models from the event log: to the end (built beside the live ones, then
    /// swapped in without downtime), or as they were at a past position or time, into a schema
    /// of their own (`projection_at_<position>`) that auditors can query.
    Replay {
        /// Build the read models as of this log position.
        #[arg(long, conflicts_with = "as_of")]
        to_position: Option<u64>,
        /// Build the read models as of this time (RFC 3339).
        #[arg(long)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
        /// Only this projection (payments, orders, disputes, settlement, journal, metrics,
        /// reconciliation).
        #[arg(long)]
        projection: Option<String>,
    },
    /// Check the hash chain, fold every stream through the domain, check every invariant and
    /// the trial balance, and compare every read model with a fresh fold. Exits non-zero on
    /// any discrepancy.
    Verify {
        /// A head kept from an earlier export (POSITION:HASH, as `ledger export` printed it on
        /// standard error): also check that it is still in the chain.
        #[arg(long, value_name = "POSITION:HASH")]
        expect_head: Option<ledger_store::LogHead>,
    },
    /// Play a realistic day through the public API: payments of every lifecycle, refunds, a
    /// dispute won and one lost, a Stripe webhook, a settlement batch and its payout.
    Demo {
        /// How many payments to play (12 to 1000).
        #[arg(long, default_value_t = 60)]
        payments: usize,
    },
    /// Drive mixed traffic through HTTP on a scratch database and print throughput and
    /// latency beside a baseline measured in the same run.
    Bench {
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Writers of the last phase, the store benchmark's load: commands straight to the
        /// command handler, no HTTP, while the live projections follow and their lag is
        /// sampled. 0 skips it.
        #[arg(long, default_value_t = 32)]
        store_writers: usize,
    },
    /// Reconcile the gateway's reports with the ledger.
    Reconcile {
        #[command(subcommand)]
        command: reconcile::ReconcileCommand,
    },
    /// Run a local Stripe-compatible test gateway: Stripe's API, test cards and signed
    /// webhooks, in memory. Never reaches a real gateway; opens no database.
    Sandbox {
        /// Address to listen on.
        #[arg(long, default_value = ledger_sandbox::DEFAULT_BIND, env = "LEDGER_SANDBOX_BIND")]
        bind: SocketAddr,
        /// Deliver events here (repeatable), e.g. http://127.0.0.1:8080/webhooks/stripe.
        #[arg(long = "webhook-url", value_name = "URL")]
        webhook_urls: Vec<String>,
        /// The event types every --webhook-url receives, as a Stripe endpoint's
        /// `enabled_events`: comma-separated types, `*` for all, or `ledger` for the types
        /// this ledger maps (what its Stripe endpoint should subscribe to).
        #[arg(long = "webhook-events", value_name = "TYPES", default_value = "*")]
        webhook_events: String,
        /// The endpoint secret that signs deliveries; one is generated and printed if unset.
        #[arg(long, env = "LEDGER_SANDBOX_WEBHOOK_SECRET", value_name = "whsec_…")]
        webhook_secret: Option<String>,
        /// How hostile delivery is: none, delays, duplicates, reorder, drop-first, hostile.
        #[arg(long, default_value = "none")]
        chaos: ledger_sandbox::Chaos,
        /// Seeds ids and chaos, so that a run can be replayed. Random when unset (and
        /// printed): the ids follow from the seed, and a ledger that outlives this sandbox
        /// must not meet the same PaymentIntent ids from its next run.
        #[arg(long)]
        seed: Option<u64>,
        /// Days from a capture, refund or dispute to its funds' availability and payout.
        #[arg(long, default_value_t = ledger_sandbox::DEFAULT_PAYOUT_DELAY_DAYS)]
        payout_delay_days: u32,
    },
    /// Rehearse payments: run scenario files against a sandbox and a ledger (started here,
    /// on a scratch database, unless given) and check what engineering, support and finance
    /// expect. Opens no database of its own.
    Scenarios {
        #[command(subcommand)]
        command: scenarios::ScenariosCommand,
    },
    /// Write the event log as JSON Lines on standard output (one event a line, with its hash
    /// and the previous hash), for auditors to re-verify independently.
    Export {
        #[arg(long)]
        from_position: Option<u64>,
        #[arg(long)]
        to_position: Option<u64>,
    },
    /// Print the failure playbook: every decline and error code, what to tell the customer,
    /// whether a retry may help, the next step and who to escalate to. Needs no database.
    Playbook {
        #[arg(long, value_enum, default_value = "markdown")]
        format: playbook::Format,
    },
}
