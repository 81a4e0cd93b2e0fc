//! The `ledger` binary as a person runs it: on its embedded default database in a fresh
//! directory, with nothing but the binary and PostgreSQL's server programs.

use std::path::Path;
use std::process::{Command, Output};

use ledger_tests::{fresh_directory, ledger_binary};

fn ledger(directory: &Path, arguments: &[&str]) -> Output {
    Command::new(ledger_binary())
        .args(arguments)
        .current_dir(directory)
        .env_remove("DATABASE_URL")
        .env_remove("LEDGER_STRIPE_WEBHOOK_SECRETS")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the ledger binary runs")
}

#[test]
fn a_day_played_by_demo_verifies_and_exports_clean_json_lines() {
    let directory = fresh_directory("cli");

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

#[test]
fn bench_measures_every_phase_on_a_scratch_database_and_leaves_the_ledger_untouched() {
    let directory = fresh_directory("cli");

    let bench = ledger(
        &directory,
        &[
            "bench",
            "--clients",
            "4",
            "--seconds",
            "1",
            "--store-writers",
            "4",
        ],
    );
    let report = String::from_utf8_lossy(&bench.stdout);
    assert!(
        bench.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    for phase in [
        "baseline: GET /healthz",
        "commands (initiate/authorize/capture)",
        "payment(id) queries",
        "payments page queries",
        "store load: 4 writers",
    ] {
        let line = report
            .lines()
            .find(|line| line.starts_with(phase))
            .unwrap_or_else(|| panic!("no figures for {phase:?}:\n{report}"));
        let ok: u64 = line
            .split(" ok, ")
            .next()
            .and_then(|before| before.rsplit('(').next())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("no count of successes in {line:?}"));
        assert!(ok > 0, "{line}");
        assert!(line.contains(" 0 failed"), "{line}");
    }
    assert_eq!(
        report
            .lines()
            .filter(|line| line.starts_with("projection lag under that load"))
            .count(),
        2,
        "the lag is sampled under the HTTP commands and under the store load:\n{report}"
    );

    let export = ledger(&directory, &["export"]);
    assert!(export.status.success());
    assert!(
        export.stdout.is_empty(),
        "the benchmark wrote into the ledger's own log"
    );
    let _ = std::fs::remove_dir_all(&directory);
}
