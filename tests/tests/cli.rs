//! The `ledger` binary as a person runs it: on its embedded default database in a fresh
//! directory, with nothing but the binary and PostgreSQL's server programs.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use ledger_tests::{fresh_directory, ledger_binary};

fn ledger(directory: &Path, arguments: &[&str]) -> Output {
    ledger_logging(directory, arguments, Some("warn"))
}

/// The binary run with `RUST_LOG` set to `log`, or unset (its own default) when `None`.
fn ledger_logging(directory: &Path, arguments: &[&str], log: Option<&str>) -> Output {
    let mut command = Command::new(ledger_binary());
    command
        .args(arguments)
        .current_dir(directory)
        .env_remove("DATABASE_URL")
        .env_remove("LEDGER_STRIPE_WEBHOOK_SECRETS");
    match log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    command.output().expect("the ledger binary runs")
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

    // As a newcomer runs it, with no RUST_LOG: the story, not the server's log lines.
    let demo = ledger_logging(&directory, &["demo", "--payments", "12"], None);
    let story = String::from_utf8_lossy(&demo.stderr);
    assert!(demo.status.success(), "{story}");
    assert!(story.contains("playing a day of 12 payments"), "{story}");
    // The card payments go through the in-process sandbox, and its payout report (with
    // the chargeback lost on the way) reconciles cleanly.
    assert!(
        story.contains("four card payments through the sandbox"),
        "{story}"
    );
    assert!(story.contains("0 exceptions, the payout proven"), "{story}");
    for level in [" INFO ", " WARN ", " ERROR "] {
        assert!(
            !story.contains(level),
            "the demo printed log lines ({level}) into its story:\n{story}"
        );
    }

    // Its log lines, read from a pipe or a file as an operator's log collector does: plain
    // text, without a terminal's colour codes.
    let verify = ledger_logging(&directory, &["verify"], Some("info"));
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
    assert!(report.contains("no discrepancies"), "{report}");
    let log = String::from_utf8_lossy(&verify.stderr);
    assert!(log.contains(" INFO "), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in log lines written to a pipe:\n{log}"
    );

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

    // The head the export reached, printed for the auditor to keep, is the last line's.
    let last = lines.last().unwrap();
    let kept_head = format!("{}:{}", last["position"], last["hash"].as_str().unwrap());
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert!(
        stderr.contains(&format!("head {kept_head}")),
        "no head on standard error: {stderr}"
    );
    let kept = ledger(&directory, &["verify", "--expect-head", &kept_head]);
    assert!(
        kept.status.success(),
        "{}",
        String::from_utf8_lossy(&kept.stdout)
    );
    let forged_head = format!("{}:{}", last["position"], "ab".repeat(32));
    let forged = ledger(&directory, &["verify", "--expect-head", &forged_head]);
    let report = String::from_utf8_lossy(&forged.stdout);
    assert!(!forged.status.success(), "{report}");
    assert!(report.contains("is not in the chain"), "{report}");

    // As an auditor types it: the export piped into the independent checker.
    let checked = pipe_export_into_checker(&directory);
    assert!(
        checked.starts_with(&format!("ok {} events, head {kept_head}", lines.len())),
        "{checked}"
    );

    // A reader that stops early (`ledger export | head`) ends the export quietly.
    let mut export = Command::new(ledger_binary())
        .arg("export")
        .current_dir(&directory)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(export.stdout.take());
    let closed = export.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(closed.status.success(), "{stderr}");
    assert!(
        !stderr.to_lowercase().contains("error") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&directory);
}

/// `ledger export | python3 audit/verify_export.py`, and what the checker printed.
fn pipe_export_into_checker(directory: &Path) -> String {
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/verify_export.py");
    let mut export = Command::new(ledger_binary())
        .arg("export")
        .current_dir(directory)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checked = Command::new("python3")
        .arg(checker)
        .stdin(export.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(export.wait().unwrap().success());
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    String::from_utf8_lossy(&checked.stdout).into_owned()
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

/// As root in a directory the server user cannot enter (like a project under `/root`, or
/// what `mktemp -d` makes), `ledger serve` works, prints where the ledger's data are, names
/// that place in `.ledger/cluster-location`, and a second command run meanwhile uses the
/// same cluster.
#[test]
fn as_root_in_a_closed_directory_serve_prints_where_the_data_are() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    let running_as_root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"));
    if !running_as_root {
        return;
    }
    let directory = fresh_directory("closed");
    std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o700))
        .expect("chmod 0700");
    let mut serve = Command::new(ledger_binary())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(&directory)
        .env_remove("DATABASE_URL")
        .env_remove("LEDGER_STRIPE_WEBHOOK_SECRETS")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ledger serve starts");
    let stdout = serve.stdout.take().expect("piped standard output");
    // Kept open until the server exits: it prints more, and a closed pipe would fail it.
    let mut lines = BufReader::new(stdout).lines();
    let printed = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("ledger data: ").map(str::to_owned));

    let key = ledger(
        &directory,
        &["keys", "create", "--role", "admin", "--env", "test"],
    );
    let stopped = Command::new("kill")
        .args(["-INT", &serve.id().to_string()])
        .status()
        .expect("kill runs");
    let served = serve.wait().expect("ledger serve exits");
    drop(lines);

    let printed = printed.expect("ledger serve prints `ledger data: …`");
    let named = std::fs::read_to_string(directory.join(".ledger/cluster-location"))
        .expect("the location file exists");
    let _ = std::fs::remove_dir_all(&printed);
    let _ = std::fs::remove_dir_all(&directory);
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    assert!(stopped.success() && served.success(), "{served}");
    assert_eq!(named.trim(), printed);
    assert!(
        printed.starts_with("/var/lib/ledger/clusters/"),
        "{printed}"
    );
}

/// Support prints the playbook on any machine: it is data of the binary, so it starts no
/// database (a `DATABASE_URL` nobody answers, and no `./.ledger/` made), and a reader that
/// stops early (`| head`) ends it quietly.
#[test]
fn the_playbook_prints_for_support_without_a_database() {
    let directory = fresh_directory("playbook");
    let playbook = |format: &str| {
        let output = Command::new(ledger_binary())
            .args(["playbook", "--format", format])
            .current_dir(&directory)
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nothing")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };

    let rows: serde_json::Value = serde_json::from_str(&playbook("json")).unwrap();
    let rows = rows.as_array().unwrap();
    let stolen = rows
        .iter()
        .find(|row| row["code"] == "stolen_card")
        .unwrap();
    assert_eq!(stolen["category"], "FRAUD");
    assert_eq!(stolen["escalation"], "SUPPORT");

    let csv = playbook("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("code,category,decline,customer_message,retry,next_step,escalation,meaning")
    );
    assert_eq!(lines.count(), rows.len());

    let markdown = playbook("markdown");
    assert!(markdown.contains("| `insufficient_funds` | ISSUER_SOFT_DECLINE |"));
    assert!(!directory.join(".ledger").exists());

    let mut printing = Command::new(ledger_binary())
        .arg("playbook")
        .current_dir(&directory)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(printing.stdout.take());
    let closed_early = printing.wait_with_output().unwrap();
    assert!(closed_early.status.success());
    assert_eq!(String::from_utf8_lossy(&closed_early.stderr), "");
    let _ = std::fs::remove_dir_all(&directory);
}
