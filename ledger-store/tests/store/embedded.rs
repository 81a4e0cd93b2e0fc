//! The embedded default database: created once, reused, shared with a second process, stopped
//! by the process that started it.

use std::path::PathBuf;

use ledger_store::embedded::EmbeddedCluster;
use ledger_store::StoreError;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

fn scratch_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ledger-{name}-{}",
        &Uuid::new_v4().simple().to_string()[..8]
    ))
}

async fn reachable(url: &str) -> bool {
    PgConnection::connect(url).await.is_ok()
}

/// The first start creates and starts the cluster; a second start while it runs connects to
/// it without starting another and leaves it running when dropped; the starter stops it; a
/// later start reuses the data.
#[tokio::test]
async fn cluster_is_created_reused_shared_and_stopped() {
    let dir = scratch_dir("embedded");
    let settings = [("fsync", "off")];
    let mut first = EmbeddedCluster::start_with_settings(&dir, &settings).unwrap();
    assert!(first.started_here());
    let mut connection = PgConnection::connect(first.url()).await.unwrap();
    sqlx::query("CREATE TABLE kept (value int)")
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();

    let second = EmbeddedCluster::start(&dir).unwrap();
    assert!(!second.started_here());
    assert_eq!(second.url(), first.url());
    drop(second);
    assert!(
        reachable(first.url()).await,
        "the second user must not stop it"
    );

    first.stop().unwrap();
    assert!(!reachable(first.url()).await, "the starter stops it");

    let mut again = EmbeddedCluster::start_with_settings(&dir, &settings).unwrap();
    assert!(again.started_here());
    let mut connection = PgConnection::connect(again.url()).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM kept")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(count, 0);
    connection.close().await.unwrap();
    again.stop().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// When we are root and the directory lies under one the server user cannot enter, starting
/// fails with an error naming the directory and what to do.
#[tokio::test]
async fn an_unreachable_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let running_as_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"));
    if !running_as_root {
        return;
    }
    let closed = scratch_dir("closed");
    std::fs::create_dir_all(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let error = EmbeddedCluster::start(&closed.join("ledger")).unwrap_err();
    assert!(
        matches!(error, StoreError::DirectoryNotAccessible { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("DATABASE_URL"));
    std::fs::remove_dir_all(&closed).unwrap();
}

/// A server whose starter died without stopping it is adopted by the next process, which
/// then stops it when done, so it does not run on unowned.
#[tokio::test]
async fn an_orphaned_server_is_adopted_and_stopped() {
    let dir = scratch_dir("orphan");
    let first = EmbeddedCluster::start_with_settings(&dir, &[("fsync", "off")]).unwrap();
    let url = first.url().to_owned();
    // Like a process killed before it could stop the server: no drop, and a pid that no
    // process has (above Linux's largest pid).
    std::mem::forget(first);
    std::fs::write(dir.join("owner.pid"), "4194304999").unwrap();

    let mut adopter = EmbeddedCluster::start(&dir).unwrap();
    assert!(adopter.started_here());
    assert_eq!(adopter.url(), url);
    adopter.stop().unwrap();
    assert!(!reachable(&url).await);
    std::fs::remove_dir_all(&dir).unwrap();
}
