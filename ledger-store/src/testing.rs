//! Test harness (feature `testing`): every test gets its own fresh, migrated database.
//!
//! From another crate, as a dev-dependency:
//!
//! ```toml
//! [dev-dependencies]
//! ledger-store = { workspace = true, features = ["testing"] }
//! ```
//!
//! ```no_run
//! # async fn example() {
//! let db = ledger_store::testing::TestDatabase::new().await;
//! let store = db.store(); // or use db.pool() / db.url()
//! # }
//! ```
//!
//! With `DATABASE_URL` set, databases are created on that server (and dropped afterwards).
//! Otherwise each test process starts one private cluster, lazily, on first use, in its own
//! directory under `/tmp` with its own socket (so parallel test processes never collide),
//! with `fsync` off because test data need not survive a power cut.
//!
//! The cluster must not outlive the process, yet Rust never drops statics. So `postgres` runs
//! in the foreground under a small `sh` wrapper whose standard input is a pipe that only this
//! process holds. However the process ends (even killed), the kernel closes the pipe, `read`
//! in the wrapper returns, and the wrapper shuts PostgreSQL down and removes the directory.
//!
//! A test that needs to restart or crash the server starts its own [`TestCluster`]; one that
//! needs a streaming standby makes it of such a cluster ([`TestCluster::start_standby`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use ledger_core::aggregate::Aggregate;
use ledger_core::kept_form;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::cluster_home::create_private_dir;
use crate::embedded::{initdb, socket_url, wait_ready, with_log_tail, InitdbSync, PORT, SUPERUSER};
use crate::error::StoreError;
use crate::server_binaries::{ServerBinaries, ServerUser};
use crate::store::{migrate, EventStore};

/// Connections per test database pool.
pub const TEST_POOL_CONNECTIONS: u32 = 10;

/// Settings for test clusters that are not durable.
const FAST_SETTINGS: [&str; 3] = [
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
];

/// Runs `postgres "$@"` in the background, its output appended to the log (opened by the
/// server user, not by root), and stops it when a line, or end of file, arrives on standard
/// input: `immediate` crashes it (SIGQUIT), anything else shuts it down fast (SIGINT). On end
/// of file, the owning process is gone: the directory is removed too.
const WRAPPER_SCRIPT: &str = r#"
exec >>"$LEDGER_TEST_CLUSTER_LOG" 2>&1
"$0" "$@" &
pid=$!
read -r mode
if [ "$mode" = immediate ]; then kill -QUIT "$pid"; else kill -INT "$pid"; fi
wait "$pid"
if [ -z "$mode" ]; then rm -rf "$LEDGER_TEST_CLUSTER_DIR"; fi
"#;

/// How a [`TestCluster`] stops its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Open transactions roll back, and a checkpoint is written.
    Fast,
    /// Like a crash or power cut of the server: recovery replays the WAL on the next start.
    Immediate,
}

/// A private PostgreSQL cluster owned by this process.
#[derive(Debug)]
pub struct TestCluster {
    dir: PathBuf,
    data_dir: PathBuf,
    binaries: ServerBinaries,
    user: ServerUser,
    durable: bool,
    server: Mutex<Option<Server>>,
}

#[derive(Debug)]
struct Server {
    child: Child,
    control: ChildStdin,
}

impl TestCluster {
    /// A fast cluster (`fsync` off), for tests that need a server of their own.
    pub fn start() -> Result<Self, StoreError> {
        Self::start_with(false)
    }

    /// A cluster with durability on, for tests that crash it and expect committed data back.
    pub fn start_durable() -> Result<Self, StoreError> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<Self, StoreError> {
        let binaries = ServerBinaries::find()?;
        let user = ServerUser::choose()?;
        let unique = &Uuid::new_v4().simple().to_string()[..8];
        let dir = short_temp_dir().join(format!("ledger-test-{}-{unique}", std::process::id()));
        create_private_dir(&user, &dir)?;
        let data_dir = dir.join("data");
        let sync = if durable {
            InitdbSync::Durable
        } else {
            InitdbSync::NoSync
        };
        initdb(&binaries, &user, &data_dir, sync)?;
        let cluster = TestCluster {
            dir,
            data_dir,
            binaries,
            user,
            durable,
            server: Mutex::new(None),
        };
        cluster.start_server()?;
        Ok(cluster)
    }

    /// A hot standby of this cluster, as an operator makes one: `pg_basebackup -R` (WAL
    /// streamed during the copy, a fast checkpoint) into a directory of its own, then started
    /// on its own socket, where it replays this cluster's WAL as it streams in and answers
    /// read-only queries. Every database, including those created later, appears on it.
    /// Stop, crash or restart it like any cluster; it is removed when dropped.
    pub fn start_standby(&self) -> Result<TestCluster, StoreError> {
        let unique = &Uuid::new_v4().simple().to_string()[..8];
        let dir = short_temp_dir().join(format!("ledger-standby-{}-{unique}", std::process::id()));
        create_private_dir(&self.user, &dir)?;
        let data_dir = dir.join("data");
        let mut command = self
            .user
            .command(&self.binaries.program("pg_basebackup"), &dir);
        command
            .arg("-D")
            .arg(&data_dir)
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &PORT.to_string(), "-U", SUPERUSER])
            .args(["--wal-method=stream", "--write-recovery-conf"])
            .args(["--checkpoint=fast", "--no-password"]);
        if !self.durable {
            command.arg("--no-sync");
        }
        let standby = TestCluster {
            dir,
            data_dir,
            binaries: self.binaries.clone(),
            user: self.user.clone(),
            durable: self.durable,
            server: Mutex::new(None),
        };
        let output = command
            .stdin(Stdio::null())
            .output()
            .map_err(|error| StoreError::io("running pg_basebackup", error))?;
        if !output.status.success() {
            return Err(StoreError::ClusterCommand {
                command: "pg_basebackup".into(),
                detail: format!(
                    "exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        standby.start_server()?;
        Ok(standby)
    }

    /// The URL of one database of this cluster.
    pub fn url(&self, database: &str) -> String {
        socket_url(&self.dir, &PORT.to_string(), database)
    }

    /// A new, migrated database on this cluster.
    pub async fn create_database(&self) -> Result<TestDatabase, StoreError> {
        create_database(&self.url("postgres"), None).await
    }

    /// Starts the server again after [`TestCluster::stop`].
    pub fn start_server(&self) -> Result<(), StoreError> {
        let mut server = lock(&self.server);
        if server.is_some() {
            return Ok(());
        }
        // A crash may leave the lock file behind, which would read as "ready" below.
        let _ = std::fs::remove_file(self.data_dir.join("postmaster.pid"));
        let log_path = self.dir.join("postgres.log");
        let mut command = self.user.command(Path::new("/bin/sh"), &self.dir);
        command
            .arg("-c")
            .arg(WRAPPER_SCRIPT)
            .arg(self.binaries.program("postgres"))
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-k")
            .arg(&self.dir)
            .args(["-p", &PORT.to_string(), "-c", "listen_addresses=", "-c"])
            .arg("max_connections=300")
            .env("LEDGER_TEST_CLUSTER_DIR", &self.dir)
            .env("LEDGER_TEST_CLUSTER_LOG", &log_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !self.durable {
            for setting in FAST_SETTINGS {
                command.arg("-c").arg(setting);
            }
        }
        let mut child = command
            .spawn()
            .map_err(|error| StoreError::io("starting postgres", error))?;
        let Some(control) = child.stdin.take() else {
            return Err(StoreError::io(
                "starting postgres",
                std::io::ErrorKind::Other.into(),
            ));
        };
        let ready = wait_ready(&self.data_dir, Duration::from_secs(30), || {
            matches!(child.try_wait(), Ok(None))
        });
        *server = Some(Server { child, control });
        ready.map_err(|error| with_log_tail(&self.user, error, &log_path))
    }

    /// Stops the server and waits until it has exited; the data stay for a restart.
    pub fn stop(&self, mode: Shutdown) -> Result<(), StoreError> {
        let Some(mut server) = lock(&self.server).take() else {
            return Ok(());
        };
        let line: &[u8] = match mode {
            Shutdown::Fast => b"fast\n",
            Shutdown::Immediate => b"immediate\n",
        };
        server
            .control
            .write_all(line)
            .map_err(|error| StoreError::io("signalling the test server", error))?;
        server
            .child
            .wait()
            .map_err(|error| StoreError::io("waiting for the test server", error))?;
        Ok(())
    }

    /// Stops the server the given way and starts it again on the same data.
    pub fn restart(&self, mode: Shutdown) -> Result<(), StoreError> {
        self.stop(mode)?;
        self.start_server()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // Closing the pipe tells the wrapper to stop the server and remove the directory.
        if let Some(server) = lock(&self.server).take() {
            let Server { mut child, control } = server;
            drop(control);
            let _ = child.wait();
        } else {
            let _ = self.user.remove_tree(&self.dir);
        }
    }
}

/// The temporary directory, unless its path is so long that the server's socket path inside
/// it would pass the ~107-byte limit of Unix socket addresses; then `/tmp`.
fn short_temp_dir() -> PathBuf {
    const MAX_TEMP_DIR_BYTES: usize = 60;
    let temp_dir = std::env::temp_dir();
    if temp_dir.as_os_str().len() <= MAX_TEMP_DIR_BYTES {
        temp_dir
    } else {
        PathBuf::from("/tmp")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

static SHARED_CLUSTER: tokio::sync::OnceCell<TestCluster> = tokio::sync::OnceCell::const_new();

/// This process's shared cluster, started on first use.
pub async fn shared_cluster() -> Result<&'static TestCluster, StoreError> {
    SHARED_CLUSTER
        .get_or_try_init(|| async { TestCluster::start() })
        .await
}

/// A fresh, migrated database for one test.
#[derive(Debug)]
pub struct TestDatabase {
    pool: PgPool,
    url: String,
    name: String,
    /// Set when the database lives on a server given by `DATABASE_URL`: dropped afterwards.
    drop_from: Option<String>,
}

impl TestDatabase {
    /// A fresh database; panics with the reason if none can be had (it is a test helper).
    pub async fn new() -> Self {
        match Self::try_new().await {
            Ok(database) => database,
            Err(error) => panic!("cannot create a test database: {error}"),
        }
    }

    pub async fn try_new() -> Result<Self, StoreError> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => create_database(&url, Some(url.clone())).await,
            _ => shared_cluster().await?.create_database().await,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A pool on this database as `ledger serve` works: as [`crate::server_role::SERVER_ROLE`],
    /// which owns nothing (the owner's connections switch to it). Tests that serve the API
    /// serve it on this, so a grant a migration forgot fails them.
    pub async fn server_pool(&self) -> PgPool {
        match crate::server_role::server_pool_options(TEST_POOL_CONNECTIONS)
            .connect(&self.url)
            .await
        {
            Ok(pool) => pool,
            Err(error) => panic!("cannot connect as the server's role: {error}"),
        }
    }

    /// An event store on this database.
    pub fn store(&self) -> EventStore {
        EventStore::new(self.pool.clone())
    }

    /// Edits a stream's kept state behind the log's back (see `kept_state`), as someone with
    /// the database's password could: `edit` gets the state its row keeps, and the row keeps
    /// what `edit` leaves, with its format, version and times unchanged. Panics if the row
    /// keeps no state of `State`'s current format.
    #[allow(clippy::expect_used)]
    pub async fn edit_kept_state<State: Aggregate>(
        &self,
        stream_id: Uuid,
        edit: impl FnOnce(&mut State),
    ) {
        let bytes: Vec<u8> = sqlx::query_scalar("SELECT state FROM streams WHERE stream_id = $1")
            .bind(stream_id)
            .fetch_one(&self.pool)
            .await
            .expect("the stream's row keeps a state");
        let mut state: State = kept_form::decode(&bytes).expect("a kept state of this format");
        edit(&mut state);
        let bytes = kept_form::encode(&state).expect("a state encodes");
        sqlx::query("UPDATE streams SET state = $2 WHERE stream_id = $1")
            .bind(stream_id)
            .bind(bytes)
            .execute(&self.pool)
            .await
            .expect("the edit is written");
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(admin_url) = self.drop_from.take() else {
            return;
        };
        let name = self.name.clone();
        // Drop runs outside async: a short-lived runtime on its own thread does the work.
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                let statement = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                sqlx::query(&statement).execute(&mut admin).await.ok()
            })
        });
        let _ = dropping.join();
    }
}

/// Creates a uniquely named database through `admin_url` and applies the migrations.
async fn create_database(
    admin_url: &str,
    drop_from: Option<String>,
) -> Result<TestDatabase, StoreError> {
    let name = format!("test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(admin_url).await?;
    // Identifiers cannot be bound as parameters; the name is generated above, never input.
    sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let url = with_database(admin_url, &name);
    let pool = crate::store::pool_options(TEST_POOL_CONNECTIONS)
        .connect(&url)
        .await?;
    migrate(&pool).await?;
    Ok(TestDatabase {
        pool,
        url,
        name,
        drop_from,
    })
}

/// The same URL with another database name.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let prefix = match base[authority_start..].find('/') {
        Some(index) => &base[..authority_start + index],
        None => base,
    };
    match query {
        Some(query) => format!("{prefix}/{database}?{query}"),
        None => format!("{prefix}/{database}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::with_database;

    /// The database name is replaced in URLs with and without a path or a query.
    #[test]
    fn replaces_the_database_in_a_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5/db?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_database(
                "postgres://ledger@localhost/postgres?host=/tmp/a&port=5432",
                "t"
            ),
            "postgres://ledger@localhost/t?host=/tmp/a&port=5432"
        );
    }
}
