//! A 100,000-line report through the `ledger` binary: streamed, with progress, in memory that
//! does not grow with the file.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use ledger_store::testing::TestDatabase;
use ledger_tests::{fresh_directory, ledger_binary};

/// A report of `lines` charges, 100 to a payout, for PaymentIntents the ledger never saw.
fn write_report(path: &Path, lines: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut out = std::io::BufWriter::new(file);
    writeln!(
        out,
        "automatic_payout_id,balance_transaction_id,available_on_utc,currency,gross,fee,net,reporting_category,source_id,payment_intent_id,charge_id,description"
    )
    .unwrap();
    for line in 0..lines {
        writeln!(
            out,
            "po_1Lg{:08},txn_3Lg{:016},2026-11-20 00:00:00,usd,{}.00,0.59,{}.41,charge,ch_3Lg{:012},pi_3Lg{:012},Order {line}",
            line / 100,
            line,
            10 + line % 90,
            9 + line % 90,
            line,
            line,
        )
        .unwrap();
    }
}

struct Imported {
    stdout: String,
    stderr: String,
    peak_mib: u64,
}

fn import(database: &TestDatabase, path: &Path) -> Imported {
    let output = Command::new(ledger_binary())
        .args(["reconcile", "stripe-payouts"])
        .arg(path)
        .args(["--environment", "test"])
        .env("DATABASE_URL", database.url())
        .env("RUST_LOG", "warn")
        // The binary's allocator (mimalloc) keeps freed pages a while before giving them
        // back; peak RSS would then count that retention, which varies with thread timing,
        // rather than what the import holds. Returned at once, the peak is the import's own.
        .env("MIMALLOC_PURGE_DELAY", "0")
        .output()
        .expect("the ledger binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let peak_mib = stdout
        .lines()
        .find_map(|line| line.strip_prefix("peak memory "))
        .and_then(|rest| rest.trim_end_matches(" MiB").parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in {stdout}"));
    Imported {
        stdout,
        stderr,
        peak_mib,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100000_line_report_streams_in_flat_memory() {
    let directory = fresh_directory("recon");
    let small = directory.join("payouts-10k.csv");
    let large = directory.join("payouts-100k.csv");
    write_report(&small, 10_000);
    write_report(&large, 100_000);
    let database = TestDatabase::new().await;

    let small_run = import(&database, &small);
    let large_run = import(&database, &large);

    assert!(
        large_run
            .stdout
            .contains("lines 100000  matched 0  exceptions 100000"),
        "{}",
        large_run.stdout
    );
    assert!(
        large_run.stderr.contains("read 100000 lines"),
        "{}",
        large_run.stderr
    );
    assert!(
        large_run.stdout.contains("payouts proven 0  unproven 1000"),
        "{}",
        large_run.stdout
    );
    eprintln!(
        "peak memory: {} MiB for 10,000 lines, {} MiB for 100,000",
        small_run.peak_mib, large_run.peak_mib
    );
    // Ten times the lines may not cost more than a little more memory: nothing holds the file.
    assert!(
        large_run.peak_mib <= small_run.peak_mib + 24,
        "peak memory grew with the file: {} MiB for 10,000 lines, {} MiB for 100,000",
        small_run.peak_mib,
        large_run.peak_mib
    );
    let _ = std::fs::remove_dir_all(&directory);
}
