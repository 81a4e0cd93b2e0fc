//! The embedded default database: created once, reused, shared with a second process, stopped
//! by the process that started it; safe to run as root from any directory.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ledger_store::embedded::{EmbeddedCluster, LOCATION_FILE, PERSISTENT_CLUSTERS_DIR};
use ledger_store::StoreError;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const FAST: [(&str, &str); 1] = [("fsync", "off")];

fn scratch_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ledger-{name}-{}",
        &Uuid::new_v4().simple().to_string()[..8]
    ))
}

async fn reachable(url: &str) -> bool {
    PgConnection::connect(url).await.is_ok()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"))
}

/// A directory only root can enter, like `/root` or what `mktemp -d` makes.
fn closed_dir(name: &str) -> PathBuf {
    let closed = scratch_dir(name);
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    closed
}

async fn execute(url: &str, statement: &str) {
    let mut connection = PgConnection::connect(url).await.unwrap();
    sqlx::query(statement)
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
}

async fn count_kept(url: &str) -> i64 {
    let mut connection = PgConnection::connect(url).await.unwrap();
    let count = sqlx::query_scalar("SELECT count(*) FROM kept")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    count
}

/// The first start creates and starts the cluster; a second start while it runs connects to
/// it without starting another and leaves it running when dropped; the starter stops it; a
/// later start reuses the data.
#[tokio::test]
async fn cluster_is_created_reused_shared_and_stopped() {
    let dir = scratch_dir("embedded");
    let mut first = EmbeddedCluster::start_with_settings(&dir, &FAST).unwrap();
    assert!(first.started_here());
    execute(first.url(), "CREATE TABLE kept (value int)").await;

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

    let mut again = EmbeddedCluster::start_with_settings(&dir, &FAST).unwrap();
    assert!(again.started_here());
    assert_eq!(count_kept(again.url()).await, 0);
    again.stop().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// As root in a directory the server user cannot enter (a project under `/root`, a
/// `mktemp -d` directory), the cluster lives in the persistent place for it, which the
/// root-owned `.ledger/cluster-location` names; a second start finds the same cluster, and
/// the data stay across a stop and a start.
#[tokio::test]
async fn as_root_a_closed_directory_keeps_its_cluster_in_the_persistent_place() {
    if !running_as_root() {
        return;
    }
    let closed = closed_dir("closed");
    let base = closed.join(".ledger");
    let mut first = EmbeddedCluster::start_with_settings(&base, &FAST).unwrap();
    let home = first.home().to_path_buf();
    assert_eq!(home.parent(), Some(Path::new(PERSISTENT_CLUSTERS_DIR)));
    assert_eq!(first.data_dir(), home.join("data"));
    assert!(home.join("data/PG_VERSION").is_file());
    let home_metadata = std::fs::symlink_metadata(&home).unwrap();
    assert_eq!(home_metadata.mode() & 0o7777, 0o700);
    assert_ne!(home_metadata.uid(), 0, "the server user owns the home");
    let location_file = base.join(LOCATION_FILE);
    assert_eq!(first.location_file(), Some(location_file.as_path()));
    let named = std::fs::read_to_string(&location_file).unwrap();
    assert_eq!(Path::new(named.trim()), home);
    assert_eq!(std::fs::symlink_metadata(&base).unwrap().uid(), 0);
    assert_eq!(
        first.socket_dir(),
        home,
        "the socket is in the private home"
    );
    execute(first.url(), "CREATE TABLE kept (value int)").await;
    execute(first.url(), "INSERT INTO kept VALUES (1)").await;

    let second = EmbeddedCluster::start(&base).unwrap();
    assert!(!second.started_here());
    assert_eq!(second.home(), home);
    assert_eq!(second.url(), first.url());
    drop(second);
    first.stop().unwrap();
    assert!(!reachable(first.url()).await);

    let mut again = EmbeddedCluster::start_with_settings(&base, &FAST).unwrap();
    assert!(again.started_here());
    assert_eq!(again.home(), home);
    assert_eq!(count_kept(again.url()).await, 1, "the data persist");
    again.stop().unwrap();
    std::fs::remove_dir_all(&home).unwrap();
    std::fs::remove_dir_all(&closed).unwrap();
}

/// As root, a cluster already under `./.ledger/data` stays there; if the server user can no
/// longer reach it, starting fails with an error naming the directory and what to do,
/// rather than starting an empty ledger elsewhere.
#[tokio::test]
async fn as_root_an_existing_cluster_the_server_user_cannot_reach_is_a_clear_error() {
    if !running_as_root() {
        return;
    }
    let project = scratch_dir("unreachable");
    std::fs::create_dir(&project).unwrap();
    std::fs::set_permissions(&project, std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = project.join(".ledger");
    let mut cluster = EmbeddedCluster::start_with_settings(&base, &FAST).unwrap();
    assert_eq!(
        cluster.home(),
        base,
        "a reachable project keeps its cluster"
    );
    assert_eq!(cluster.location_file(), None);
    cluster.stop().unwrap();

    std::fs::set_permissions(&project, std::fs::Permissions::from_mode(0o700)).unwrap();
    let error = EmbeddedCluster::start(&base).unwrap_err();
    assert!(
        matches!(error, StoreError::DirectoryNotAccessible { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("DATABASE_URL"), "{error}");
    assert!(!base.join(LOCATION_FILE).exists());
    std::fs::remove_dir_all(&project).unwrap();
}

/// A path that `pg_ctl`'s shell could not take quoted is refused with a clear error before
/// anything is created or run.
#[tokio::test]
async fn a_path_with_a_quote_is_refused_before_anything_runs() {
    for name in ["it's", "say-\"hi\""] {
        let dir = scratch_dir(name);
        let error = EmbeddedCluster::start(&dir).unwrap_err();
        assert!(matches!(error, StoreError::UnsafePath { .. }), "{error}");
        assert!(error.to_string().contains("pg_ctl"), "{error}");
        assert!(!dir.exists(), "nothing was created for {dir:?}");
    }
}

/// The cluster's own configuration keeps TCP out, so starting it by hand is as safe:
/// `listen_addresses = ''`, a private socket, no `trust` on `host` lines. A cluster made
/// without them gets them on its next start.
#[tokio::test]
async fn the_configuration_holds_the_safety_settings() {
    let dir = scratch_dir("safety");
    let mut cluster = EmbeddedCluster::start_with_settings(&dir, &FAST).unwrap();
    let data_dir = cluster.data_dir().to_path_buf();
    assert_safety_settings(&data_dir);
    cluster.stop().unwrap();

    // As an older cluster was: initdb's files untouched, `trust` for TCP too.
    let configuration = data_dir.join("postgresql.conf");
    let text = std::fs::read_to_string(&configuration).unwrap();
    let marker = text.find("# ledger:").unwrap();
    std::fs::write(&configuration, text[..marker].trim_end()).unwrap();
    let hba = data_dir.join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, text.replace("reject", "trust")).unwrap();
    assert!(hba_trusts_tcp(&data_dir));

    let mut again = EmbeddedCluster::start_with_settings(&dir, &FAST).unwrap();
    assert_safety_settings(&data_dir);
    again.stop().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn assert_safety_settings(data_dir: &Path) {
    let configuration = std::fs::read_to_string(data_dir.join("postgresql.conf")).unwrap();
    let last_value = |name: &str| {
        configuration
            .lines()
            .rfind(|line| line.trim_start().starts_with(name))
            .map(str::trim)
    };
    assert_eq!(
        last_value("listen_addresses"),
        Some("listen_addresses = ''")
    );
    assert_eq!(
        last_value("unix_socket_permissions"),
        Some("unix_socket_permissions = 0700")
    );
    assert!(!hba_trusts_tcp(data_dir));
}

/// Whether a `host…` line of `pg_hba.conf` trusts.
fn hba_trusts_tcp(data_dir: &Path) -> bool {
    let hba = std::fs::read_to_string(data_dir.join("pg_hba.conf")).unwrap();
    hba.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.first().is_some_and(|kind| kind.starts_with("host")) && fields.contains(&"trust")
    })
}

/// When the home's path is too long for a socket address, the socket goes into a fresh
/// directory of random name (not derived from the path, so no one can take it first), mode
/// 0700, removed after the server stops.
#[tokio::test]
async fn a_long_path_gets_a_private_random_socket_directory() {
    let parent = scratch_dir("long");
    std::fs::create_dir(&parent).unwrap();
    let dir = parent.join("x".repeat(100));
    let mut cluster = EmbeddedCluster::start_with_settings(&dir, &FAST).unwrap();
    let socket_dir = cluster.socket_dir().to_path_buf();
    assert_ne!(socket_dir, cluster.home());
    let name = socket_dir.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("ledger-socket-"), "{name}");
    let metadata = std::fs::symlink_metadata(&socket_dir).unwrap();
    assert!(metadata.is_dir());
    assert_eq!(metadata.mode() & 0o7777, 0o700);
    assert!(reachable(cluster.url()).await);
    cluster.stop().unwrap();
    assert!(!socket_dir.exists(), "removed after the stop");
    std::fs::remove_dir_all(&parent).unwrap();
}

/// A server whose starter died without stopping it is adopted by the next process, which
/// then stops it when done, so it does not run on unowned.
#[tokio::test]
async fn an_orphaned_server_is_adopted_and_stopped() {
    let dir = scratch_dir("orphan");
    let first = EmbeddedCluster::start_with_settings(&dir, &FAST).unwrap();
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
