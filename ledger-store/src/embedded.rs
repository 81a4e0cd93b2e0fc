//! The embedded default database: a private PostgreSQL cluster of ours (the `ledger` binary
//! asks for one under `./.ledger/`), for when no `DATABASE_URL` is set.
//!
//! - Built from the machine's server programs (see `server_binaries`): `initdb` once, then
//!   `pg_ctl start`. Its data stay in `<home>/data` between runs: they are the ledger.
//! - Where the home is (see `cluster_home`): `./.ledger` itself, except when we are root and
//!   the server user cannot reach it (a project under `/root`, or in a `mktemp -d`
//!   directory); then `/var/lib/ledger/clusters/<hash of the path>`, persistent, named by
//!   the root-owned file `./.ledger/cluster-location`, so that it can be found from the
//!   project directory and every later process finds the same cluster.
//! - Run as `postgres` when we are root (PostgreSQL refuses root), never as `nobody`. Root
//!   writes nothing inside the server user's directories: files there are written and read
//!   by a child process running as that user, and `initdb`'s output is kept in memory.
//! - Safe to start by hand, too: the cluster's own configuration keeps TCP out (`initdb
//!   --auth-host=reject`, and `listen_addresses = ''` and `unix_socket_permissions = 0700`
//!   appended to `postgresql.conf`); clusters made before get the same settings on their
//!   next start, written as the server user. It is reachable only through a Unix socket (no
//!   TCP port to collide on), in the home when the socket's path fits in a socket address
//!   (about 107 bytes), else in a fresh directory of random name under `/tmp`, mode 0700,
//!   removed after the server stops. Other processes find the socket in `postmaster.pid`.
//! - `pg_ctl start` runs the server through `/bin/sh` with our paths in its command line: a
//!   path holding a quote, `\`, `$`, a backtick or a control character is refused
//!   ([`StoreError::UnsafePath`]) before anything runs.
//! - A second process that finds the cluster running (say `ledger export` while `ledger
//!   serve` runs) connects to it and leaves it running; the process that started it stops it
//!   ([`EmbeddedCluster::stop`], or on drop). The owner's pid is kept in `<home>/owner.pid`:
//!   a process that finds the server running with its owner gone adopts it and stops it later.
//! - Durability stays on (`fsync`, `synchronous_commit`, full page writes: PostgreSQL's
//!   defaults); only tests pass settings that trade it for speed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster_home::{self, is_random_socket_dir, refuse_unquotable};
use crate::error::StoreError;
use crate::server_binaries::{ServerBinaries, ServerUser};

pub use crate::cluster_home::{LOCATION_FILE, PERSISTENT_CLUSTERS_DIR};

/// The superuser `initdb` creates, and the name we connect as.
pub const SUPERUSER: &str = "ledger";
/// The database the ledger lives in (the one `initdb` creates).
pub const DATABASE: &str = "postgres";
/// The port number in the socket's file name; no TCP port is opened.
pub const PORT: u16 = 5432;
/// The file, in the home, naming the process that owns the running server.
const OWNER_FILE: &str = "owner.pid";
/// How many lines of a log or of `initdb`'s output an error quotes.
const LOG_TAIL_LINES: usize = 10;

/// How long starting the server may take before we give up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The first line of the block of safety settings appended to `postgresql.conf`.
const SAFETY_MARKER: &str = "# ledger: the embedded cluster's safety settings";

/// Run as the server user with the data directory and [`SAFETY_MARKER`]: appends the safety
/// settings to `postgresql.conf` once (later lines win over initdb's), and turns `trust` on
/// the TCP lines of `pg_hba.conf` (clusters made before `--auth-host=reject`) into `reject`.
const SECURE_CONFIGURATION_SCRIPT: &str = r#"
conf="$1/postgresql.conf"
hba="$1/pg_hba.conf"
if ! grep -qxF "$2" "$conf"; then
    printf '\n%s\n%s\n%s\n' "$2" "listen_addresses = ''" 'unix_socket_permissions = 0700' >> "$conf" || exit 1
fi
trusted='^([[:space:]]*host[a-z]*[[:space:]].*[[:space:]])trust([[:space:]]*)$'
if grep -Eq "$trusted" "$hba"; then
    sed -i -E "s/$trusted/\1reject\2/" "$hba" || exit 1
fi
"#;

/// A running private cluster; stopped on drop when this process started it.
#[derive(Debug)]
pub struct EmbeddedCluster {
    home: PathBuf,
    location_file: Option<PathBuf>,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    url: String,
    binaries: ServerBinaries,
    user: ServerUser,
    started_here: bool,
}

impl EmbeddedCluster {
    /// Creates (first time) and starts the cluster of `base_dir`, durably, or connects to
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
        refuse_unquotable(base_dir)?;
        refuse_unsafe_settings(settings)?;
        let binaries = ServerBinaries::find()?;
        let user = ServerUser::choose()?;
        let home = cluster_home::locate(&user, base_dir)?;
        let data_dir = home.dir.join("data");
        if std::fs::symlink_metadata(data_dir.join("PG_VERSION")).is_err() {
            initdb(&binaries, &user, &data_dir, InitdbSync::Durable)?;
        }
        let mut cluster = EmbeddedCluster {
            location_file: home.location_file,
            socket_dir: home.dir.clone(),
            url: String::new(),
            home: home.dir,
            data_dir,
            binaries,
            user,
            started_here: false,
        };
        let owner_file = cluster.home.join(OWNER_FILE);
        if !cluster.is_running()? {
            cluster.start_server(settings)?;
        } else if !cluster.owner_alive(&owner_file)? {
            // Its starter died without stopping it (killed, say): adopt it, so that it is
            // stopped when this process is done instead of running on unowned.
            cluster.started_here = true;
        }
        let (url, socket_dir) = url_from_pid_file(&cluster.user, &cluster.data_dir)?;
        cluster.url = url;
        cluster.socket_dir = socket_dir;
        if cluster.started_here {
            let pid = std::process::id().to_string();
            cluster.user.write_file(&owner_file, pid.as_bytes())?;
        }
        Ok(cluster)
    }

    /// A `postgres://` URL for the ledger's database over the Unix socket.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same database as [`Self::url`], logged in as `role` (on the same private socket).
    pub fn url_as(&self, role: &str) -> String {
        match self.url.strip_prefix(&format!("postgres://{SUPERUSER}@")) {
            Some(rest) => format!("postgres://{role}@{rest}"),
            None => self.url.clone(),
        }
    }

    /// The cluster's home: its data directory, log and socket are in it.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The file in the project's `.ledger` naming the home, when the home is elsewhere.
    pub fn location_file(&self) -> Option<&Path> {
        self.location_file.as_deref()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory holding the server's socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Whether this process started the server (and so stops it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the server (fast shutdown: open transactions roll back, committed data stay)
    /// if this process started it, and removes its socket directory if that was made for
    /// it. Later calls do nothing.
    pub fn stop(&mut self) -> Result<(), StoreError> {
        if !self.started_here {
            return Ok(());
        }
        self.started_here = false;
        let mut command = self.pg_ctl();
        command
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(&self.data_dir);
        run(command, "pg_ctl stop")?;
        if is_random_socket_dir(&self.socket_dir) {
            self.user.remove_tree(&self.socket_dir)?;
        }
        Ok(())
    }

    /// Brings the configuration's safety settings up to date, then starts the server with
    /// its socket in the home or a fresh private directory.
    fn start_server(&mut self, settings: &[(&str, &str)]) -> Result<(), StoreError> {
        secure_configuration(&self.user, &self.data_dir)?;
        let (socket_dir, made_for_it) = cluster_home::socket_dir(&self.user, &self.home, PORT)?;
        match self.pg_ctl_start(&socket_dir, settings) {
            Ok(()) => {
                self.started_here = true;
                Ok(())
            }
            Err(error) => {
                if let Some(dir) = made_for_it {
                    let _ = self.user.remove_tree(&dir);
                }
                // Another process may have started it at the same moment: use theirs.
                if self.is_running()? {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }

    fn pg_ctl(&self) -> Command {
        let mut command = self
            .user
            .command(&self.binaries.program("pg_ctl"), &self.home);
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

    /// Whether the process named in the owner file still runs (Linux: `/proc/<pid>`).
    fn owner_alive(&self, owner_file: &Path) -> Result<bool, StoreError> {
        let text = self.user.read_file(owner_file)?.unwrap_or_default();
        Ok(text
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists()))
    }

    /// `pg_ctl start`, which runs `postgres` through `/bin/sh` with the data directory and
    /// the log in double quotes and `-o` as it is: every path in it was refused above if it
    /// held a character that would change that command.
    fn pg_ctl_start(&self, socket_dir: &Path, settings: &[(&str, &str)]) -> Result<(), StoreError> {
        let log = self.home.join("postgres.log");
        for path in [&self.data_dir, &log, socket_dir] {
            refuse_unquotable(path)?;
        }
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
            .arg(&log)
            .arg("-o")
            .arg(options);
        run(command, "pg_ctl start").map_err(|error| with_log_tail(&self.user, error, &log))
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::warn!(%error, "stopping the embedded PostgreSQL cluster failed");
        }
    }
}

/// Settings reach `pg_ctl`'s shell inside `-o`: only names and values of letters, digits,
/// `_`, `.` and `-` pass.
fn refuse_unsafe_settings(settings: &[(&str, &str)]) -> Result<(), StoreError> {
    let plain = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    match settings
        .iter()
        .find(|(name, value)| !plain(name) || !plain(value))
    {
        Some((name, value)) => Err(StoreError::ClusterCommand {
            command: "pg_ctl start".into(),
            detail: format!(
                "the setting {name:?} = {value:?} may hold only letters, digits, `_`, `.` \
                 and `-`"
            ),
        }),
        None => Ok(()),
    }
}

/// Writes the safety settings into the cluster's own configuration, as the server user
/// (see [`SECURE_CONFIGURATION_SCRIPT`]).
fn secure_configuration(user: &ServerUser, data_dir: &Path) -> Result<(), StoreError> {
    let what = format!("writing the safety settings of {}", data_dir.display());
    let arguments = [data_dir.as_os_str(), SAFETY_MARKER.as_ref()];
    let output = user.shell(&what, SECURE_CONFIGURATION_SCRIPT, &arguments, b"")?;
    if output.status.success() {
        return Ok(());
    }
    Err(StoreError::ClusterCommand {
        command: what,
        detail: format!(
            "exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

/// Whether `initdb` waits for its files to reach the disk (tests skip it for speed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitdbSync {
    Durable,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    NoSync,
}

/// Runs `initdb` for a cluster whose superuser is [`SUPERUSER`], trusted on the local socket
/// (the socket is private to the server user and root) and refused over TCP. Its output is
/// kept in memory; a failure quotes its end.
pub(crate) fn initdb(
    binaries: &ServerBinaries,
    user: &ServerUser,
    data_dir: &Path,
    sync: InitdbSync,
) -> Result<(), StoreError> {
    let working_dir = data_dir.parent().unwrap_or(data_dir);
    let mut command = user.command(&binaries.program("initdb"), working_dir);
    command.arg("-D").arg(data_dir).args([
        "-U",
        SUPERUSER,
        "--auth-local=trust",
        "--auth-host=reject",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    if sync == InitdbSync::NoSync {
        command.arg("--no-sync");
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| StoreError::io("running initdb", error))?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Err(StoreError::ClusterCommand {
        command: "initdb".into(),
        detail: format!(
            "exited with {}; its last lines:\n{}",
            output.status,
            last_lines(&text, LOG_TAIL_LINES)
        ),
    })
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
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

/// Adds the end of a server log, read as the server user, to a failure: PostgreSQL says
/// there what went wrong.
pub(crate) fn with_log_tail(user: &ServerUser, error: StoreError, log: &Path) -> StoreError {
    let StoreError::ClusterCommand { command, detail } = error else {
        return error;
    };
    let tail = user.read_tail(log, LOG_TAIL_LINES);
    StoreError::ClusterCommand {
        command,
        detail: format!("{detail}; last lines of {}:\n{tail}", log.display()),
    }
}

/// The connection URL and socket directory of a running cluster, from what the server wrote
/// into `postmaster.pid` (lines 4 and 5), read as the server user.
pub(crate) fn url_from_pid_file(
    user: &ServerUser,
    data_dir: &Path,
) -> Result<(String, PathBuf), StoreError> {
    let pid_file = data_dir.join("postmaster.pid");
    let text = user.read_file(&pid_file)?.unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let (Some(port), Some(socket_dir)) = (lines.get(3), lines.get(4)) else {
        return Err(StoreError::ClusterCommand {
            command: "postmaster.pid".into(),
            detail: format!("{} lacks the port and socket lines", pid_file.display()),
        });
    };
    let socket_dir = PathBuf::from(socket_dir.trim());
    let url = socket_url(&socket_dir, port.trim(), DATABASE);
    Ok((url, socket_dir))
}

pub(crate) fn socket_url(socket_dir: &Path, port: &str, database: &str) -> String {
    format!(
        "postgres://{SUPERUSER}@localhost/{database}?host={}&port={port}",
        socket_dir.display()
    )
}

/// Waits until `postmaster.pid` says the server accepts connections (line 8 is `ready`, or
/// `standby` for a hot standby), as `pg_ctl -w` does. Only the test harness starts `postgres` itself (the binary uses `pg_ctl`).
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
        if matches!(
            text.lines().nth(7).map(str::trim),
            Some("ready" | "standby")
        ) {
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
