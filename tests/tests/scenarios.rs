//! `ledger scenarios run` as users run it: the shipped `scenarios/` against the runner's own
//! sandbox and scratch ledger pass within the minute, with a matrix and JUnit XML; a
//! scenario whose expectation is wrong fails the run and names what differed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ledger_tests::{fresh_directory, ledger_binary};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn scenarios(arguments: &[&str]) -> Output {
    Command::new(ledger_binary())
        .current_dir(repository())
        .env_remove("DATABASE_URL")
        .env("RUST_BACKTRACE", "0")
        .arg("scenarios")
        .arg("run")
        .args(arguments)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every shipped scenario file's name, as its `name =` line says.
fn shipped_names() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(repository().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let file = std::fs::read_to_string(&path).unwrap();
            let name = file
                .lines()
                .find_map(|line| line.strip_prefix("name = \""))
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_else(|| panic!("{} has no name line", path.display()));
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn the_shipped_scenarios_pass_for_every_team_within_a_minute() {
    let directory = fresh_directory("scenarios-junit");
    let junit = directory.join("scenarios.xml");
    let started = Instant::now();
    let run = scenarios(&["scenarios/", "--junit", junit.to_str().unwrap()]);
    let elapsed = started.elapsed();
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", text(&run.stderr));
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");

    let names = shipped_names();
    assert!(names.len() >= 18, "{names:?}");
    for name in &names {
        let row = stdout
            .lines()
            .find(|line| line.starts_with(&format!("{name}  ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"));
        assert!(row.contains("pass") && !row.contains("FAIL"), "{row}");
    }
    let header = stdout
        .lines()
        .find(|line| line.starts_with("scenario"))
        .unwrap();
    for team in ["engineering", "support", "finance"] {
        assert!(header.contains(team), "{header}");
    }
    // Support's column is checked wherever a card is declined.
    let declined = stdout
        .lines()
        .find(|line| line.starts_with("declined card"))
        .unwrap();
    assert_eq!(declined.matches("pass").count(), 3, "{declined}");
    assert!(
        stdout.contains(&format!("{0} of {0} scenarios passed", names.len())),
        "{stdout}"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    let _ = std::fs::remove_dir_all(&directory);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(&format!(
            "<testsuites name=\"ledger scenarios\" tests=\"{}\" failures=\"0\">",
            names.len() * 3
        )),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), names.len() * 3);
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(xml.contains("<testsuite name=\"3D Secure\""), "{xml}");
}

/// The file a team might write with a wrong belief: that a full refund leaves the payment
/// captured and its customer told to call the bank.
const WRONG_SCENARIO: &str = r#"
name = "wrong belief"

[[steps]]
do = "create"
amount = 2500
currency = "usd"
card = "pm_card_visa"
confirm = true
engineering = { status = "succeeded" }

[[steps]]
do = "refund"
engineering = { status = "succeeded" }

[[steps]]
do = "settle"

[steps.finance]
status = "CAPTURED"
refunded = "25.00"
"#;

#[test]
fn a_wrong_expectation_fails_the_run_and_names_the_difference() {
    let directory = fresh_directory("scenarios-wrong");
    let file = directory.join("wrong.toml");
    std::fs::write(&file, WRONG_SCENARIO).unwrap();
    let junit = directory.join("results.xml");
    let run = scenarios(&[
        "scenarios/happy_path.toml",
        file.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = text(&run.stdout);
    let stderr = text(&run.stderr);
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&directory);

    assert!(!run.status.success(), "{stdout}");
    assert!(stderr.contains("1 of 2 scenarios failed"), "{stderr}");
    let row = stdout
        .lines()
        .find(|line| line.starts_with("wrong belief"))
        .unwrap();
    assert!(row.contains("FAIL"), "{row}");
    assert!(
        stdout.contains(
            "wrong belief / finance: step 3 (settle): status: expected \"CAPTURED\", got \"REFUNDED\""
        ),
        "{stdout}"
    );
    // Only what differed: the refunded amount was right.
    assert!(!stdout.contains("refunded: expected"), "{stdout}");
    let happy = stdout
        .lines()
        .find(|line| line.starts_with("happy path"))
        .unwrap();
    assert!(!happy.contains("FAIL"), "{happy}");
    assert!(stdout.contains("1 of 2 scenarios passed"), "{stdout}");

    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<failure message=\"step 3 (settle): status: expected &quot;CAPTURED&quot;, got &quot;REFUNDED&quot;\">"),
        "{xml}"
    );
}

#[test]
fn a_misspelt_expectation_is_refused_before_anything_starts() {
    let directory = fresh_directory("scenarios-misspelt");
    let file = directory.join("misspelt.toml");
    std::fs::write(
        &file,
        "[[steps]]\ndo = \"settle\"\n[steps.finance]\ncaptred = \"1.00\"\n",
    )
    .unwrap();
    let started = Instant::now();
    let run = scenarios(&[file.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&directory);
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(stderr.contains("misspelt.toml"), "{stderr}");
    assert!(stderr.contains("captred"), "{stderr}");
    // Refused before a ledger or sandbox started (those take seconds).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
