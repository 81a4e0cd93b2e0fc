//! The `ledger` binary as a person runs it: on its embedded default database in a fresh
//! directory, with nothing but the binary and PostgreSQL's server programs.

use std::path::Path;
use std::process::{Command, Output};

fn ledger(directory: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(arguments)
        .current_dir(directory)
        .env_remove("DATABASE_URL")
        .env_remove("LEDGER_STRIPE_WEBHOOK_SECRETS")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the ledger binary runs")
}

fn fresh_directory() -> std::path::PathBuf {
    let directory =
        std::env::temp_dir().join(format!("ledger-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&directory).expect("temporary directory");
    directory
}

#[test]
fn a_day_played_by_demo_verifies_and_exports_clean_json_lines() {
    let directory = fresh_directory();

    let empty = ledger(&directory, &["export"]);
    assert!(
        empty.status.success(),
        "{}",
        String::from_utf8_lossy(&empty.stderr)
    );
    assert!(
        empty.stdout.is_empty(),
        "an empty log exports nothing, and nothing else may reach standard output: {:?}",
        String::from_utf8_lossy(&empty.stdout)
    );

    let key = ledger(
        &directory,
        &["keys", "create", "--role", "auditor", "--env", "live"],
    );
    assert!(key.status.success());
    let stdout = String::from_utf8_lossy(&key.stdout);
    let last_line = stdout.lines().last().unwrap_or_default();
    assert!(
        ledger_api::auth::ApiKey::parse(last_line).is_ok(),
        "{stdout}"
    );

    let demo = ledger(&directory, &["demo", "--payments", "12"]);
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );

    let verify = ledger(&directory, &["verify"]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
    assert!(report.contains("no discrepancies"), "{report}");

    let export = ledger(&directory, &["export"]);
    assert!(export.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every exported line is one JSON event"))
        .collect();
    assert!(lines.len() > 50, "{} events", lines.len());
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["position"], index as u64 + 1);
        if index > 0 {
            assert_eq!(line["prev_hash"], lines[index - 1]["hash"]);
        }
    }
    let _ = std::fs::remove_dir_all(&directory);
}
