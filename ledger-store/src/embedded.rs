//! The embedded default database: a private PostgreSQL cluster under a directory of ours
//! (the `ledger` binary uses `./.ledger/`), for when no `DATABASE_URL` is set.
//!
//! - Built from the machine's server programs (see `server_binaries`): `initdb` once, then
//!   `pg_ctl start`. Its data stay in `<dir>/data` between runs: they are the ledger.
//! - Run as an unprivileged user when we are root (PostgreSQL refuses root). That user must
//!   be able to enter the directory; if an ancestor is closed to it (say `/root`), starting
//!   fails with [`StoreError::DirectoryNotAccessible`] naming the directory, rather than
//!   silently placing the ledger's data somewhere else.
//! - Reachable only through a Unix socket (no TCP port to collide on) in a short directory
//!   under `/tmp` derived from the data directory's path, because socket paths are limited to
//!   about 107 bytes and a project path can be longer.
//! - A second process that finds the cluster running (say `ledger export` while `ledger
//!   serve` runs) connects to it and leaves it running; the process that started it stops it
//!   ([`EmbeddedCluster::stop`], or on drop). The owner's pid is kept in `<dir>/owner.pid`: a
//!   process that finds the server running with its owner gone adopts it and stops it later.
//! - Durability stays on (`fsync`, `synchronous_commit`, full page writes: PostgreSQL's
//!   defaults); only tests pass settings that trade it for speed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::server_binaries::{ServerBinaries, ServerUser};

/// The superuser `initdb` creates, and the name we connect as.
pub const SUPERUSER: &str = "ledger";
/// The database the ledger lives in (the one `initdb` creates).
pub const DATABASE: &str = "postgres";
/// The port number in the socket's file name; no TCP port is opened.
pub const PORT: u16 = 5432;
/// The file, beside the data directory, naming the process that owns the running server.
const OWNER_FILE: &str = "owner.pid";

/// How long starting the server may take before we give up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running private cluster; stopped on drop when this process started it.
#[derive(Debug)]
pub struct EmbeddedCluster {
    data_dir: PathBuf,
    url: String,
    binaries: ServerBinaries,
    user: ServerUser,
    started_here: bool,
}

impl EmbeddedCluster {
    /// Creates (first time) and starts the cluster under `base_dir`, durably, or connects to
    /// it if it is already running. Blocks while PostgreSQL starts.
    pub fn start(base_dir: &Path) -> Result<Self, StoreError> {
        Self::start_with_settings(base_dir, &[])
    }

    /// As [`EmbeddedCluster::start`], with extra server settings (`name`, `value`) for this
    /// start, e.g. `("fsync", "off")` in tests.
    pub fn start_with_settings(
        base_dir: &Path,
        settings: &[(&str, &str)],
    ) -> Result<Self, StoreError> {
        let binaries = ServerBinaries::find()?;
        let user = ServerUser::choose()?;
        let base_dir = prepare_private_dir(&user, base_dir)?;
        let data_dir = base_dir.join("data");
        if !data_dir.join("PG_VERSION").is_file() {
            let log = base_dir.join("initdb.log");
            initdb(&binaries, &user, &data_dir, &log, InitdbSync::Durable)?;
        }
        let mut cluster = EmbeddedCluster {
            url: String::new(),
            data_dir,
            binaries,
            user,
            started_here: false,
        };
        let owner_file = base_dir.join(OWNER_FILE);
        if !cluster.is_running()? {
            let socket_dir = prepare_private_dir(&cluster.user, &socket_dir_for(&base_dir))?;
            match cluster.pg_ctl_start(&socket_dir, &base_dir.join("postgres.log"), settings) {
                Ok(()) => cluster.started_here = true,
                // Another process may have started it at the same moment: use theirs.
                Err(error) if !cluster.is_running()? => return Err(error),
                Err(_) => {}
            }
        } else if !owner_alive(&owner_file) {
            // Its starter died without stopping it (killed, say): adopt it, so that it is
            // stopped when this process is done instead of running on unowned.
            cluster.started_here = true;
        }
        if cluster.started_here {
            std::fs::write(&owner_file, std::process::id().to_string()).map_err(|error| {
                StoreError::io(format!("writing {}", owner_file.display()), error)
            })?;
        }
        cluster.url = url_from_pid_file(&cluster.data_dir)?;
        Ok(cluster)
    }

    /// A `postgres://` URL for the ledger's database over the Unix socket.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether this process started the server (and so stops it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the server (fast shutdown: open transactions roll back, committed data stay)
    /// if this process started it. Later calls do nothing.
    pub fn stop(&mut self) -> Result<(), StoreError> {
        if !self.started_here {
            return Ok(());
        }
        self.started_here = false;
        let mut command = self.pg_ctl();
        command
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(&self.data_dir);
        run(command, "pg_ctl stop")
    }

    fn pg_ctl(&self) -> Command {
        let working_dir = self.data_dir.parent().unwrap_or(&self.data_dir);
        let mut command = self
            .user
            .command(&self.binaries.program("pg_ctl"), working_dir);
        // pg_ctl reports progress on standard output, which is ours: it may be a data stream
        // (`ledger export > audit.jsonl`). Its errors still reach standard error.
        command.stdout(Stdio::null());
        command
    }

    fn is_running(&self) -> Result<bool, StoreError> {
        let status = self
            .pg_ctl()
            .arg("status")
            .arg("-D")
            .arg(&self.data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|error| StoreError::io("running pg_ctl status", error))?;
        Ok(status.success())
    }

    fn pg_ctl_start(
        &self,
        socket_dir: &Path,
        log: &Path,
        settings: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let mut options = format!(
            "-c listen_addresses='' -k '{}' -p {PORT}",
            socket_dir.display()
        );
        for (name, value) in settings {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let mut command = self.pg_ctl();
        command
            .args(["start", "-w", "-t"])
            .arg(START_TIMEOUT.as_secs().to_string())
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(log)
            .arg("-o")
            .arg(options);
        run(command, "pg_ctl start").map_err(|error| with_log_tail(error, log))
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::warn!(%error, "stopping the embedded PostgreSQL cluster failed");
        }
    }
}

/// Whether the process named in the owner file still runs (Linux: `/proc/<pid>` exists).
fn owner_alive(owner_file: &Path) -> bool {
    std::fs::read_to_string(owner_file)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Creates `dir` if needed, gives it to the server user with mode 0700, checks the user can
/// reach it, and returns its absolute path.
pub(crate) fn prepare_private_dir(user: &ServerUser, dir: &Path) -> Result<PathBuf, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)
        .map_err(|error| StoreError::io(format!("creating {}", dir.display()), error))?;
    let dir = std::fs::canonicalize(dir)
        .map_err(|error| StoreError::io(format!("resolving {}", dir.display()), error))?;
    user.take_ownership(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|error| StoreError::io(format!("chmod {}", dir.display()), error))?;
    user.check_access(&dir)?;
    Ok(dir)
}

/// `/tmp/ledger-<16 hex digits of SHA-256 of the path>`: short, and the same for every
/// process that uses the same cluster.
fn socket_dir_for(base_dir: &Path) -> PathBuf {
    let digest = Sha256::digest(base_dir.as_os_str().as_encoded_bytes());
    PathBuf::from(format!("/tmp/ledger-{}", &hex::encode(digest)[..16]))
}

/// Whether `initdb` waits for its files to reach the disk (tests skip it for speed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitdbSync {
    Durable,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    NoSync,
}

/// Runs `initdb` for a cluster whose superuser is [`SUPERUSER`], trusted on the local socket
/// (the socket directory is private to the server user and root).
pub(crate) fn initdb(
    binaries: &ServerBinaries,
    user: &ServerUser,
    data_dir: &Path,
    log: &Path,
    sync: InitdbSync,
) -> Result<(), StoreError> {
    let working_dir = data_dir.parent().unwrap_or(data_dir);
    let mut command = user.command(&binaries.program("initdb"), working_dir);
    command.arg("-D").arg(data_dir).args([
        "-U",
        SUPERUSER,
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    if sync == InitdbSync::NoSync {
        command.arg("--no-sync");
    }
    let log_file = std::fs::File::create(log)
        .map_err(|error| StoreError::io(format!("creating {}", log.display()), error))?;
    user.take_ownership(log)?;
    let log_copy = log_file
        .try_clone()
        .map_err(|error| StoreError::io("duplicating the log handle", error))?;
    command.stdout(log_file).stderr(log_copy);
    run(command, "initdb").map_err(|error| with_log_tail(error, log))
}

/// Runs a command to completion; a failure carries its exit status.
pub(crate) fn run(mut command: Command, name: &str) -> Result<(), StoreError> {
    command.stdin(Stdio::null());
    let status = command
        .status()
        .map_err(|error| StoreError::io(format!("running {name}"), error))?;
    if status.success() {
        Ok(())
    } else {
        Err(StoreError::ClusterCommand {
            command: name.into(),
            detail: format!("exited with {status}"),
        })
    }
}

/// Adds the end of a server log to a failure, where PostgreSQL says what went wrong.
pub(crate) fn with_log_tail(error: StoreError, log: &Path) -> StoreError {
    let StoreError::ClusterCommand { command, detail } = error else {
        return error;
    };
    let log_text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = log_text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    StoreError::ClusterCommand {
        command,
        detail: format!("{detail}; last lines of {}:\n{tail}", log.display()),
    }
}

/// The connection URL of a running cluster, from the socket directory and port that the
/// server wrote into `postmaster.pid` (lines 4 and 5).
pub(crate) fn url_from_pid_file(data_dir: &Path) -> Result<String, StoreError> {
    let pid_file = data_dir.join("postmaster.pid");
    let text = std::fs::read_to_string(&pid_file)
        .map_err(|error| StoreError::io(format!("reading {}", pid_file.display()), error))?;
    let lines: Vec<&str> = text.lines().collect();
    let (Some(port), Some(socket_dir)) = (lines.get(3), lines.get(4)) else {
        return Err(StoreError::ClusterCommand {
            command: "postmaster.pid".into(),
            detail: format!("{} lacks the port and socket lines", pid_file.display()),
        });
    };
    Ok(socket_url(
        Path::new(socket_dir.trim()),
        port.trim(),
        DATABASE,
    ))
}

pub(crate) fn socket_url(socket_dir: &Path, port: &str, database: &str) -> String {
    format!(
        "postgres://{SUPERUSER}@localhost/{database}?host={}&port={port}",
        socket_dir.display()
    )
}

/// Waits until `postmaster.pid` says the server accepts connections (line 8 is `ready`), as
/// `pg_ctl -w` does. Only the test harness starts `postgres` itself (the binary uses `pg_ctl`).
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn wait_ready(
    data_dir: &Path,
    timeout: Duration,
    mut still_alive: impl FnMut() -> bool,
) -> Result<(), StoreError> {
    let deadline = Instant::now() + timeout;
    let pid_file = data_dir.join("postmaster.pid");
    loop {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if text.lines().nth(7).map(str::trim) == Some("ready") {
            return Ok(());
        }
        if !still_alive() || Instant::now() > deadline {
            return Err(StoreError::ClusterCommand {
                command: "postgres".into(),
                detail: "the server did not become ready".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
