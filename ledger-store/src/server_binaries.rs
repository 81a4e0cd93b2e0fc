//! Finding PostgreSQL's server programs, and the unprivileged user to run them as.
//!
//! PostgreSQL refuses to run as root, so when we are root every server program is started
//! as `postgres` through `CommandExt::uid`/`gid`, which also drops root's supplementary
//! groups. Never as `nobody`: that account is shared by unrelated services, any of which
//! could then read or change the ledger. Without a `postgres` user, root gets an error
//! saying to create one or to set `DATABASE_URL`.
//!
//! The server user owns the cluster's directory. Root never reads or writes a file inside
//! it by path, since that user could have put a symbolic link there: whatever must be
//! written there (the owner's pid, the configuration's safety settings) or read from there
//! (`postmaster.pid`, the end of a log) is handled by a child process running as the server
//! user ([`ServerUser::write_file`], [`ServerUser::read_file`], [`ServerUser::read_tail`]),
//! which can do no more than that user could anyway.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::StoreError;

/// Overrides the search: a directory holding `initdb`, `pg_ctl` and `postgres`.
pub const BIN_DIR_VARIABLE: &str = "LEDGER_POSTGRES_BIN_DIR";

const PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
const DISTRIBUTION_ROOT: &str = "/usr/lib/postgresql";

/// The directory of the server programs.
#[derive(Debug, Clone)]
pub(crate) struct ServerBinaries {
    bin_dir: PathBuf,
}

impl ServerBinaries {
    /// `$LEDGER_POSTGRES_BIN_DIR`, then the first `PATH` entry with all three programs
    /// (symbolic links followed, as Debian links them), then the highest version under
    /// `/usr/lib/postgresql/*/bin`.
    pub fn find() -> Result<Self, StoreError> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = std::env::var_os(BIN_DIR_VARIABLE) {
            candidates.push(PathBuf::from(dir));
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let initdb = dir.join("initdb");
                if let Ok(real) = std::fs::canonicalize(&initdb) {
                    candidates.extend(real.parent().map(Path::to_path_buf));
                }
                candidates.push(dir);
            }
        }
        candidates.extend(distribution_dirs());
        Self::find_among(candidates)
    }

    /// The first candidate directory holding all three programs.
    pub fn find_among(candidates: Vec<PathBuf>) -> Result<Self, StoreError> {
        let mut searched = Vec::new();
        for dir in candidates {
            if PROGRAMS.iter().all(|program| dir.join(program).is_file()) {
                return Ok(ServerBinaries { bin_dir: dir });
            }
            searched.push(dir);
        }
        searched.dedup();
        Err(StoreError::PostgresBinariesNotFound { searched })
    }

    pub fn program(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

/// `/usr/lib/postgresql/<version>/bin`, highest version first.
fn distribution_dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(DISTRIBUTION_ROOT) else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// The user PostgreSQL runs as when we are root. Never `nobody`.
pub(crate) const SERVER_USER_WHEN_ROOT: &str = "postgres";

/// Who runs the server programs: ourselves, or when we are root the user `postgres`.
#[derive(Debug, Clone)]
pub(crate) struct ServerUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Whether commands switch to this user (we are root); otherwise they run as ourselves.
    switches: bool,
}

impl ServerUser {
    pub fn choose() -> Result<Self, StoreError> {
        let (uid, gid) = effective_ids()?;
        let passwd = if uid == 0 {
            std::fs::read_to_string("/etc/passwd")
                .map_err(|error| StoreError::io("reading /etc/passwd", error))?
        } else {
            String::new()
        };
        let own_name = std::env::var("USER").unwrap_or_else(|_| "current user".into());
        Self::choose_from((uid, gid), &own_name, &passwd)
    }

    /// The choice itself, on the given effective ids and `/etc/passwd` text: as root, the
    /// user `postgres` (which must not be root itself) or an error; otherwise ourselves.
    pub fn choose_from(
        (uid, gid): (u32, u32),
        own_name: &str,
        passwd: &str,
    ) -> Result<Self, StoreError> {
        if uid != 0 {
            return Ok(ServerUser {
                name: own_name.into(),
                uid,
                gid,
                switches: false,
            });
        }
        match lookup_user(passwd, SERVER_USER_WHEN_ROOT) {
            Some((uid, gid)) if uid != 0 => Ok(ServerUser {
                name: SERVER_USER_WHEN_ROOT.into(),
                uid,
                gid,
                switches: true,
            }),
            found => Err(StoreError::ClusterCommand {
                command: "choosing the user to run PostgreSQL as".into(),
                detail: format!(
                    "running as root, and PostgreSQL refuses to run as root, but {}; the \
                     embedded database runs only as `{SERVER_USER_WHEN_ROOT}` (never as \
                     `nobody`, which other services share): create that user (installing \
                     PostgreSQL's server package does, or `useradd --system \
                     {SERVER_USER_WHEN_ROOT}`), run as an ordinary user, or set DATABASE_URL",
                    if found.is_some() {
                        format!("user `{SERVER_USER_WHEN_ROOT}` has uid 0")
                    } else {
                        format!("no user `{SERVER_USER_WHEN_ROOT}` exists")
                    }
                ),
            }),
        }
    }

    /// Whether the server programs run as another user than ourselves (we are root).
    pub fn switches(&self) -> bool {
        self.switches
    }

    /// A command for one server program, run as this user in `working_dir` (PostgreSQL
    /// complains when it cannot read its starting directory).
    pub fn command(&self, program: &Path, working_dir: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(working_dir);
        // Our own connection settings must not leak into the server's programs.
        for variable in ["PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"] {
            command.env_remove(variable);
        }
        if self.switches {
            command.uid(self.uid).gid(self.gid);
        }
        command
    }

    /// Runs `/bin/sh -c script sh arguments…` as this user, in `/`, with `input` on its
    /// standard input; returns its output, or an error naming `what` with its message.
    pub fn shell(
        &self,
        what: &str,
        script: &str,
        arguments: &[&OsStr],
        input: &[u8],
    ) -> Result<Output, StoreError> {
        let mut command = self.command(Path::new("/bin/sh"), Path::new("/"));
        command
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|error| StoreError::io(format!("{what}: running /bin/sh"), error))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A script that does not read its input closes the pipe early: not an error.
            let _ = stdin.write_all(input);
        }
        child
            .wait_with_output()
            .map_err(|error| StoreError::io(format!("{what}: waiting for /bin/sh"), error))
    }

    /// Replaces `path` with a file holding `contents`, written as this user (so a link this
    /// user planted leads nowhere it could not write itself) beside it and renamed over it.
    pub fn write_file(&self, path: &Path, contents: &[u8]) -> Result<(), StoreError> {
        let what = format!("writing {} as {}", path.display(), self.name);
        let script = r#"cat > "$1.$$" && exec mv -f -- "$1.$$" "$1""#;
        let output = self.shell(&what, script, &[path.as_os_str()], contents)?;
        check_status(&what, &output)
    }

    /// Reads `path` as this user; `None` when it does not exist.
    pub fn read_file(&self, path: &Path) -> Result<Option<String>, StoreError> {
        let what = format!("reading {} as {}", path.display(), self.name);
        let script = r#"[ -e "$1" ] || [ -L "$1" ] || exit 3; exec cat -- "$1""#;
        let output = self.shell(&what, script, &[path.as_os_str()], b"")?;
        if output.status.code() == Some(3) {
            return Ok(None);
        }
        check_status(&what, &output)?;
        Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    /// The last `lines` lines of a file, read as this user (empty if it cannot be read).
    pub fn read_tail(&self, path: &Path, lines: usize) -> String {
        let script = r#"exec tail -n "$2" -- "$1""#;
        let count = lines.to_string();
        self.shell(
            "reading a log",
            script,
            &[path.as_os_str(), count.as_ref()],
            b"",
        )
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
    }

    /// Whether this user can enter `dir` (every ancestor traversable).
    pub fn can_enter(&self, dir: &Path) -> Result<bool, StoreError> {
        if !self.switches {
            return Ok(true);
        }
        let what = format!("checking whether {} can enter {}", self.name, dir.display());
        let output = self.shell(&what, r#"cd -- "$1""#, &[dir.as_os_str()], b"")?;
        Ok(output.status.success())
    }

    /// Removes `dir` and everything in it, as this user.
    pub fn remove_tree(&self, dir: &Path) -> Result<(), StoreError> {
        let what = format!("removing {} as {}", dir.display(), self.name);
        let output = self.shell(&what, r#"exec rm -rf -- "$1""#, &[dir.as_os_str()], b"")?;
        check_status(&what, &output)
    }

    /// Fails clearly when this user cannot enter and write `dir`, typically because an
    /// ancestor (such as `/root`) is closed to others.
    pub fn check_access(&self, dir: &Path) -> Result<(), StoreError> {
        if !self.switches {
            return Ok(());
        }
        let what = format!("checking {} as {}", dir.display(), self.name);
        let script = r#"cd -- "$1" && test -w "$1""#;
        if self
            .shell(&what, script, &[dir.as_os_str()], b"")?
            .status
            .success()
        {
            return Ok(());
        }
        Err(StoreError::DirectoryNotAccessible {
            path: dir.to_path_buf(),
            user: self.name.clone(),
            reason: "PostgreSQL cannot run as root, and this user cannot enter or write it; \
                     make every parent directory traversable (chmod o+x), choose a directory \
                     elsewhere, or set DATABASE_URL"
                .into(),
        })
    }
}

/// An error carrying a child's exit status and standard error when it failed.
fn check_status(what: &str, output: &Output) -> Result<(), StoreError> {
    if output.status.success() {
        return Ok(());
    }
    Err(StoreError::ClusterCommand {
        command: what.into(),
        detail: format!(
            "exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

/// Our effective uid and gid: the second fields of `Uid:` and `Gid:` in /proc/self/status
/// (Linux; the crate forbids the `unsafe` that `geteuid` would take).
pub(crate) fn effective_ids() -> Result<(u32, u32), StoreError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|error| StoreError::io("reading /proc/self/status", error))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(2))
            .and_then(|id| id.parse::<u32>().ok())
    };
    match (field("Uid:"), field("Gid:")) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err(StoreError::io(
            "reading our user id from /proc/self/status",
            std::io::ErrorKind::InvalidData.into(),
        )),
    }
}

/// The uid and gid of a user, from the text of `/etc/passwd`.
fn lookup_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Without the programs, the error names what is missing and every place searched.
    #[test]
    fn missing_binaries_are_named_with_the_places_searched() {
        let empty = std::env::temp_dir().join(format!("ledger-empty-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let error = ServerBinaries::find_among(vec![empty.clone()]).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, StoreError::PostgresBinariesNotFound { .. }));
        assert!(message.contains("initdb, pg_ctl, postgres"), "{message}");
        assert!(message.contains(&empty.display().to_string()), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");
        std::fs::remove_dir_all(&empty).unwrap();
    }

    const PASSWD_WITHOUT_POSTGRES: &str = "root:x:0:0:root:/root:/bin/bash\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

    /// Users are looked up in the passwd text by name.
    #[test]
    fn passwd_lookup_finds_users_by_name() {
        let passwd =
            format!("{PASSWD_WITHOUT_POSTGRES}postgres:x:101:104::/var/lib/postgresql:/bin/sh\n");
        assert_eq!(lookup_user(&passwd, "root"), Some((0, 0)));
        assert_eq!(lookup_user(&passwd, "postgres"), Some((101, 104)));
        assert_eq!(lookup_user(&passwd, "no-such-user-here"), None);
    }

    /// As root, PostgreSQL runs as `postgres`; without that user the choice is an error
    /// that says what to do, never `nobody`.
    #[test]
    fn root_runs_postgres_as_postgres_and_never_as_nobody() {
        let error = ServerUser::choose_from((0, 0), "root", PASSWD_WITHOUT_POSTGRES).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("no user `postgres`"), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");

        let passwd =
            format!("{PASSWD_WITHOUT_POSTGRES}postgres:x:101:104::/var/lib/postgresql:/bin/sh\n");
        let user = ServerUser::choose_from((0, 0), "root", &passwd).unwrap();
        assert_eq!(
            (user.name.as_str(), user.uid, user.gid),
            ("postgres", 101, 104)
        );
        assert!(user.switches());

        let rooted = format!("{PASSWD_WITHOUT_POSTGRES}postgres:x:0:0::/:/bin/sh\n");
        assert!(ServerUser::choose_from((0, 0), "root", &rooted).is_err());
    }

    /// An ordinary user runs the server programs as itself.
    #[test]
    fn an_ordinary_user_runs_postgres_as_itself() {
        let user = ServerUser::choose_from((1000, 1000), "alice", "").unwrap();
        assert_eq!((user.name.as_str(), user.uid), ("alice", 1000));
        assert!(!user.switches());
    }
}
