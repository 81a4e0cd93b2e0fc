//! The hash chain: verifiable from an export line alone, and tampering is found.

use ledger_store::testing::TestDatabase;
use ledger_store::{export_line, ChainVerification, EventStore, ExpectedVersion};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::single;

/// An exported line re-verifies with nothing but SHA-256 and JCS, as an auditor would:
/// hash = SHA-256(raw prev_hash bytes ++ JCS(line without prev_hash and hash)).
#[tokio::test]
async fn export_lines_verify_by_hand() {
    let db = TestDatabase::new().await;
    let store = db.store();
    store
        .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 3))
        .await
        .unwrap();
    let mut previous_hash = "00".repeat(32);
    for event in store.read_all(1, 100).await.unwrap() {
        let mut line = export_line(&event);
        let fields = line.as_object_mut().unwrap();
        let hash = fields.remove("hash").unwrap();
        let prev_hash = fields.remove("prev_hash").unwrap();
        assert_eq!(prev_hash.as_str().unwrap(), previous_hash);
        let canonical = serde_json_canonicalizer::to_vec(&line).unwrap();
        let mut hasher = Sha256::new();
        hasher.update(hex::decode(prev_hash.as_str().unwrap()).unwrap());
        hasher.update(&canonical);
        assert_eq!(hex::encode(hasher.finalize()), hash.as_str().unwrap());
        let recorded_at = line["recorded_at"].as_str().unwrap();
        assert_eq!(recorded_at.len(), "2026-11-26T13:41:00.123456Z".len());
        assert!(recorded_at.ends_with('Z'));
        previous_hash = hash.as_str().unwrap().to_owned();
    }
}

/// A row changed behind the log's back (as a superuser, with the trigger disabled) breaks the
/// chain at exactly that position; the events before it still verify.
#[tokio::test]
async fn verify_finds_the_tampered_row() {
    let db = TestDatabase::new().await;
    let store = db.store();
    store
        .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 5))
        .await
        .unwrap();
    let clean = store.verify_chain(1, None).await.unwrap();
    assert!(clean.is_intact());
    assert_eq!(clean.events_checked, 5);
    assert_eq!(checked_by_pages(&store, 2).await, clean);

    let mut connection = db.pool().acquire().await.unwrap();
    sqlx::query!("ALTER TABLE events DISABLE TRIGGER ALL")
        .execute(&mut *connection)
        .await
        .unwrap();
    sqlx::query!(
        r#"UPDATE events SET payload = jsonb_set(payload, '{amount}', '"99.99"') WHERE position = 3"#
    )
    .execute(&mut *connection)
    .await
    .unwrap();
    sqlx::query!("ALTER TABLE events ENABLE TRIGGER ALL")
        .execute(&mut *connection)
        .await
        .unwrap();

    let verification = store.verify_chain(1, None).await.unwrap();
    assert_eq!(checked_by_pages(&store, 2).await, verification);
    let broken = verification.first_broken.expect("tampering must be found");
    assert_eq!(broken.position, 3);
    assert_eq!(verification.last_intact_position, 2);
    assert!(store.verify_chain(1, Some(2)).await.unwrap().is_intact());
    assert!(!store.verify_chain(3, None).await.unwrap().is_intact());
}

/// Events removed from the end of the log (as a superuser, with the triggers disabled) leave
/// a chain whose every link still holds; the head, moved with every append, shows the cut.
#[tokio::test]
async fn verify_finds_a_log_truncated_at_its_end() {
    let db = TestDatabase::new().await;
    let store = db.store();
    store
        .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 5))
        .await
        .unwrap();
    assert!(store.verify_chain(1, None).await.unwrap().is_intact());

    let mut connection = db.pool().acquire().await.unwrap();
    sqlx::query!("ALTER TABLE events DISABLE TRIGGER ALL")
        .execute(&mut *connection)
        .await
        .unwrap();
    sqlx::query!("DELETE FROM events WHERE position > 3")
        .execute(&mut *connection)
        .await
        .unwrap();
    sqlx::query!("ALTER TABLE events ENABLE TRIGGER ALL")
        .execute(&mut *connection)
        .await
        .unwrap();

    let verification = store.verify_chain(1, None).await.unwrap();
    assert_eq!(checked_by_pages(&store, 2).await, verification);
    let broken = verification
        .first_broken
        .expect("the truncation must be found");
    assert_eq!(broken.position, 4);
    assert!(broken.reason.contains("removed"), "{}", broken.reason);
    assert_eq!(verification.last_intact_position, 3);
    // A range that stops before the cut is still intact: only its end is compared to the head.
    assert!(store.verify_chain(1, Some(3)).await.unwrap().is_intact());
}

/// The chain as `ledger verify` checks it: fed the pages of one read of the whole log, which
/// its refold folds too. Its verdict must be `verify_chain`'s, breaks and cut ends included.
async fn checked_by_pages(store: &EventStore, page_size: usize) -> ChainVerification {
    let mut check = store.start_chain_check().await.unwrap();
    let mut next = 1;
    loop {
        let page = store.read_all(next, page_size).await.unwrap();
        let Some(last) = page.last() else { break };
        next = last.position + 1;
        check.check(&page);
    }
    store.finish_chain_check(check).await.unwrap()
}
