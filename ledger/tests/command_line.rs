//! The command line's contract (interfaces.md): the subcommands users and scripts call by name.
//! This test also makes `cargo test --workspace` build the binary that the end-to-end tests of
//! the top-level `tests` crate run.

use std::process::Command;

#[test]
fn help_lists_every_subcommand_of_the_contract() {
    let help = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("--help")
        .output()
        .expect("the ledger binary runs");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    let listed: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for subcommand in [
        "serve",
        "migrate",
        "keys",
        "replay",
        "verify",
        "export",
        "reconcile",
        "demo",
        "bench",
        "playbook",
        "sandbox",
    ] {
        assert!(
            listed.contains(&subcommand),
            "{subcommand} missing from:\n{text}"
        );
    }
}

#[test]
fn an_unknown_subcommand_fails_and_says_so() {
    let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("frobnicate")
        .output()
        .expect("the ledger binary runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("frobnicate"));
}

/// A payout report belongs to one environment, and recording it in the other would settle the
/// wrong payments: the command refuses to guess, before it touches any database.
#[test]
fn reconcile_requires_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["reconcile", "stripe-payouts", "payouts.csv"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("the ledger binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--environment") && stderr.contains("required"),
        "{stderr}"
    );
}
