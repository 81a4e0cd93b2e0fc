//! Finding PostgreSQL's server programs, and the unprivileged user to run them as.
//!
//! PostgreSQL refuses to run as root, so when we are root every server program is started
//! as `postgres` (or `nobody` where no such user exists) through `CommandExt::uid`/`gid`,
//! which also drops root's supplementary groups.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Who runs the server programs: ourselves, or when we are root an unprivileged user.
#[derive(Debug, Clone)]
pub(crate) struct ServerUser {
    pub name: String,
    /// `None` when we are not root and the programs run as ourselves.
    pub ids: Option<(u32, u32)>,
}

impl ServerUser {
    pub fn choose() -> Result<Self, StoreError> {
        if !running_as_root() {
            let name = std::env::var("USER").unwrap_or_else(|_| "current user".into());
            return Ok(ServerUser { name, ids: None });
        }
        for name in ["postgres", "nobody"] {
            if let Some(ids) = lookup_user(name) {
                return Ok(ServerUser {
                    name: name.into(),
                    ids: Some(ids),
                });
            }
        }
        Err(StoreError::ClusterCommand {
            command: "user lookup".into(),
            detail: "running as root, and neither user `postgres` nor `nobody` exists to run \
                     PostgreSQL as; create one or set DATABASE_URL"
                .into(),
        })
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
        if let Some((uid, gid)) = self.ids {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Gives a directory we created to this user (only needed when we are root).
    pub fn take_ownership(&self, path: &Path) -> Result<(), StoreError> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|error| StoreError::io(format!("chown {}", path.display()), error))?;
        }
        Ok(())
    }

    /// Fails clearly when this user cannot enter and write `dir`, typically because an
    /// ancestor (such as `/root`) is closed to others.
    pub fn check_access(&self, dir: &Path) -> Result<(), StoreError> {
        let Some(_) = self.ids else { return Ok(()) };
        let status = self
            .command(Path::new("/bin/sh"), Path::new("/"))
            .arg("-c")
            .arg(r#"cd "$1" && test -w "$1""#)
            .arg("sh")
            .arg(dir)
            .status()
            .map_err(|error| StoreError::io("running /bin/sh", error))?;
        if status.success() {
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

fn running_as_root() -> bool {
    // The effective uid is the second field of `Uid:` in /proc/self/status (Linux).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|uid| uid == "0")
        })
        .unwrap_or(false)
}

/// The uid and gid of a user, from `/etc/passwd`.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
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

    /// Users are looked up in /etc/passwd by name.
    #[test]
    fn passwd_lookup_finds_root() {
        assert_eq!(lookup_user("root"), Some((0, 0)));
        assert_eq!(lookup_user("no-such-user-here"), None);
    }
}
