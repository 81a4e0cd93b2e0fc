//! The `ledger` binary.
//!
//! Only the command-line surface exists so far; the server and its subcommands arrive with
//! issue 5. Running it prints what it will do.

use clap::Parser;

/// An event-sourced payment ledger: every payment fact in an append-only, tamper-evident log.
#[derive(Debug, Parser)]
#[command(name = "ledger", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "ledger {}: the server is not built yet (see issue 5); run `ledger --help`.",
        env!("CARGO_PKG_VERSION")
    );
}
