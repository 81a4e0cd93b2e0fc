//! The audit export re-verifies with an independent implementation of the hash rule (a
//! Python script written from interfaces.md, sharing no code with the store).

use std::path::PathBuf;
use std::process::Command;

use ledger_projections::export;
use ledger_store::testing::TestDatabase;

use crate::support::{every_lifecycle, Ledger};

fn verifier() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../audit/verify_export.py")
}

fn run_verifier(lines: &[u8]) -> std::process::Output {
    let file = std::env::temp_dir().join(format!("ledger-export-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&file, lines).unwrap();
    let output = Command::new("python3")
        .arg(verifier())
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    output
}

/// The whole log exports line by line and an independent verifier accepts the chain; one
/// changed byte in a payload makes it fail.
#[tokio::test]
async fn an_export_reverifies_independently() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    let mut out = Vec::new();
    let summary = export(&ledger.store, 1, None, &mut out).await.unwrap();
    let log_head = ledger.store.head().await.unwrap();
    let head = log_head.last_position;
    assert_eq!(
        (
            summary.events,
            summary.first_position,
            summary.last_position
        ),
        (head, Some(1), Some(head))
    );
    let text = String::from_utf8(out.clone()).unwrap();
    assert_eq!(text.lines().count() as u64, head);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "event_id",
            "event_type",
            "hash",
            "metadata",
            "payload",
            "position",
            "prev_hash",
            "recorded_at",
            "schema_version",
            "stream_id",
            "stream_version"
        ]
    );

    let verified = run_verifier(&out);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout).trim(),
        format!("ok {head} events, head {log_head}")
    );
    assert_eq!(
        summary.head,
        Some(log_head),
        "the export reached the log head"
    );

    let tampered = text.replacen("\"100.00\"", "\"100.01\"", 1);
    assert_ne!(tampered, text);
    let rejected = run_verifier(tampered.as_bytes());
    assert!(!rejected.status.success());
}

/// A range exports only its positions, and verifies from the anchor its first line names.
#[tokio::test]
async fn a_range_exports_only_its_positions() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    let mut out = Vec::new();
    let summary = export(&ledger.store, 5, Some(10), &mut out).await.unwrap();
    assert_eq!(
        (
            summary.events,
            summary.first_position,
            summary.last_position
        ),
        (6, Some(5), Some(10))
    );
    let verified = run_verifier(&out);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}
