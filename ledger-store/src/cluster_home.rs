//! Where the embedded cluster lives, and the directories it needs, made safely.
//!
//! The cluster's home is a directory owned by the server user, mode 0700, holding `data/`,
//! `postgres.log`, `owner.pid` and, when its path is short enough, the server's socket.
//!
//! - As an ordinary user, or as root when the server user can reach the project (every
//!   ancestor of `./.ledger` traversable), the home is `./.ledger` itself, as it always was.
//! - As root when it cannot (a project under `/root`, or in a `mktemp -d` directory), the
//!   home is `/var/lib/ledger/clusters/<16 hex digits of SHA-256 of the canonical path of
//!   ./.ledger>`, persistent; `./.ledger/` then belongs to root and holds `cluster-location`,
//!   one line naming the home, so that it can be found from the project directory and every
//!   later process (a second `ledger` command, or after the project moved) uses the same one.
//!
//! Root creates and adjusts directories only through a handle opened without following
//! links (`O_NOFOLLOW`), after checking that it is a directory it just created or one with
//! the expected owner, so a link planted by another user is refused, never followed.
//! The socket goes into the home, or when the home's path is too long for a socket address
//! into a fresh directory of random name under `/tmp`, created so that it fails if the name
//! exists; no other user can take it first.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::StoreError;
use crate::server_binaries::ServerUser;

/// Where root keeps clusters whose project directory the server user cannot reach.
pub const PERSISTENT_CLUSTERS_DIR: &str = "/var/lib/ledger/clusters";
/// The file in `./.ledger/` naming the cluster's home when it lives elsewhere.
pub const LOCATION_FILE: &str = "cluster-location";
/// The longest socket path a Unix socket address holds (108 bytes with the final NUL).
const MAX_SOCKET_PATH_BYTES: usize = 107;
/// Where a socket directory goes when the home's path is too long for the socket.
const SOCKET_PARENT: &str = "/tmp";
const SOCKET_DIR_PREFIX: &str = "ledger-socket-";
/// Attempts at a fresh random socket directory name before giving up.
const SOCKET_DIR_ATTEMPTS: usize = 8;

/// The directory the cluster lives in, and the file that points to it when it is not the
/// project's `.ledger` itself.
#[derive(Debug, Clone)]
pub(crate) struct ClusterHome {
    pub dir: PathBuf,
    pub location_file: Option<PathBuf>,
}

/// Who is to own a directory we make, and whether we can give it to them (we are root).
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
    chown: bool,
}

impl Owner {
    fn server(user: &ServerUser) -> Self {
        Owner {
            uid: user.uid,
            gid: user.gid,
            chown: user.switches(),
        }
    }

    const ROOT: Owner = Owner {
        uid: 0,
        gid: 0,
        chown: true,
    };
}

/// Refuses a path that cannot reach `pg_ctl` safely: it runs the server through `/bin/sh`
/// with the data directory and log in double quotes and our `-o` options (the socket
/// directory in single quotes) as they are, so quotes, `\`, `$`, backticks and control
/// characters would change the command. Also refuses paths that are not UTF-8.
pub(crate) fn refuse_unquotable(path: &Path) -> Result<(), StoreError> {
    let refuse = |reason: String| {
        Err(StoreError::UnsafePath {
            path: path.to_path_buf(),
            reason,
        })
    };
    let Some(text) = path.to_str() else {
        return refuse("the path is not valid UTF-8".into());
    };
    match text
        .chars()
        .find(|c| matches!(c, '"' | '\'' | '\\' | '$' | '`') || c.is_control())
    {
        Some(character) => refuse(format!(
            "it contains {character:?}, which cannot be passed safely to pg_ctl (it starts \
             the server through a shell); use a directory whose path has no quotes, \
             backslashes, `$`, backticks or control characters, or set DATABASE_URL"
        )),
        None => Ok(()),
    }
}

/// Decides where the cluster of `base_dir` (the project's `.ledger`) lives, and makes the
/// directories it needs (see the module docs).
pub(crate) fn locate(user: &ServerUser, base_dir: &Path) -> Result<ClusterHome, StoreError> {
    refuse_unquotable(base_dir)?;
    let base_dir = absolute(base_dir)?;
    refuse_unquotable(&base_dir)?;
    let local = ClusterHome {
        dir: base_dir.clone(),
        location_file: None,
    };
    if !user.switches() {
        ensure_dir(&base_dir, Owner::server(user), 0o700, &[user.uid])?;
        return Ok(local);
    }
    let location_file = base_dir.join(LOCATION_FILE);
    if let Some(home) = read_location_file(&base_dir, &location_file)? {
        ensure_persistent_home(user, &home)?;
        return Ok(ClusterHome {
            dir: home,
            location_file: Some(location_file),
        });
    }
    let existing_local = std::fs::symlink_metadata(base_dir.join("data/PG_VERSION")).is_ok();
    let parent = base_dir.parent().unwrap_or(Path::new("/"));
    if existing_local || user.can_enter(parent)? {
        // An existing cluster stays where it is; if the server user can no longer reach
        // it, `check_access` says so rather than starting an empty ledger elsewhere.
        ensure_dir(&base_dir, Owner::server(user), 0o700, &[0, user.uid])?;
        user.check_access(&base_dir)?;
        return Ok(local);
    }
    // The project is closed to the server user: `.ledger` is root's and points elsewhere.
    ensure_dir(&base_dir, Owner::ROOT, 0o755, &[0, user.uid])?;
    let home = persistent_home_for(&base_dir);
    ensure_persistent_home(user, &home)?;
    write_location_file(&base_dir, &home)?;
    Ok(ClusterHome {
        dir: home,
        location_file: Some(location_file),
    })
}

/// `/var/lib/ledger/clusters/<16 hex digits of SHA-256 of the path>`.
pub(crate) fn persistent_home_for(canonical_base_dir: &Path) -> PathBuf {
    let digest = Sha256::digest(canonical_base_dir.as_os_str().as_encoded_bytes());
    Path::new(PERSISTENT_CLUSTERS_DIR).join(&hex::encode(digest)[..16])
}

/// The path with its parent resolved (the parent must exist; the last part need not).
fn absolute(path: &Path) -> Result<PathBuf, StoreError> {
    let name = match path.components().next_back() {
        Some(Component::Normal(name)) => name,
        _ => {
            return Err(StoreError::UnsafePath {
                path: path.to_path_buf(),
                reason: "it does not end in a directory name".into(),
            })
        }
    };
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let parent = std::fs::canonicalize(parent)
        .map_err(|error| StoreError::io(format!("resolving {}", parent.display()), error))?;
    Ok(parent.join(name))
}

/// Makes `/var/lib/ledger/clusters` (root's, 0755, its ancestors root's and closed to
/// writes by others) and in it the home (the server user's, 0700).
fn ensure_persistent_home(user: &ServerUser, home: &Path) -> Result<(), StoreError> {
    let clusters = Path::new(PERSISTENT_CLUSTERS_DIR);
    let mut ancestors: Vec<&Path> = clusters.ancestors().collect();
    ancestors.reverse();
    for dir in ancestors {
        match std::fs::symlink_metadata(dir) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                ensure_dir(dir, Owner::ROOT, 0o755, &[0])?;
            }
            Err(error) => {
                return Err(StoreError::io(
                    format!("examining {}", dir.display()),
                    error,
                ))
            }
            Ok(metadata) => {
                let writable_by_others = metadata.mode() & 0o022 != 0;
                if !metadata.is_dir() || metadata.uid() != 0 || writable_by_others {
                    return Err(StoreError::UnsafePath {
                        path: dir.to_path_buf(),
                        reason: "the ledger's clusters live under it, so it must be a \
                                 directory (not a link) of root's that no one else can write"
                            .into(),
                    });
                }
            }
        }
    }
    ensure_dir(home, Owner::server(user), 0o700, &[user.uid])
}

/// The home named by the location file, when there is one; it must be root's, in a
/// directory of root's, and name a directory under [`PERSISTENT_CLUSTERS_DIR`].
fn read_location_file(base_dir: &Path, file: &Path) -> Result<Option<PathBuf>, StoreError> {
    let metadata = match std::fs::symlink_metadata(file) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(StoreError::io(
                format!("examining {}", file.display()),
                error,
            ))
        }
        Ok(metadata) => metadata,
    };
    let directory_is_roots = std::fs::symlink_metadata(base_dir)
        .is_ok_and(|directory| directory.is_dir() && directory.uid() == 0);
    if !metadata.is_file() || metadata.uid() != 0 || !directory_is_roots {
        return Err(StoreError::UnsafePath {
            path: file.to_path_buf(),
            reason: "it must be a plain file of root's in a directory of root's".into(),
        });
    }
    let text = std::fs::read_to_string(file)
        .map_err(|error| StoreError::io(format!("reading {}", file.display()), error))?;
    let home = PathBuf::from(text.trim());
    let valid_name = home
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()));
    if home.parent() != Some(Path::new(PERSISTENT_CLUSTERS_DIR)) || !valid_name {
        return Err(StoreError::UnsafePath {
            path: file.to_path_buf(),
            reason: format!(
                "it names {}, which is not a cluster under {PERSISTENT_CLUSTERS_DIR}",
                home.display()
            ),
        });
    }
    Ok(Some(home))
}

/// Writes the location file into root's `base_dir`: a new file of random name, renamed
/// over the old one, so nothing already there is written through.
fn write_location_file(base_dir: &Path, home: &Path) -> Result<(), StoreError> {
    let file = base_dir.join(LOCATION_FILE);
    let temporary = base_dir.join(format!(".{LOCATION_FILE}.{}", Uuid::new_v4().simple()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .and_then(|mut out| out.write_all(format!("{}\n", home.display()).as_bytes()))
        .and_then(|()| std::fs::rename(&temporary, &file));
    written.map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        StoreError::io(format!("writing {}", file.display()), error)
    })
}

/// Creates `dir` with `mode` if it does not exist, then secures it (see [`secure_dir`]);
/// an existing directory must belong to one of `accepted_owners`.
fn ensure_dir(
    dir: &Path,
    owner: Owner,
    mode: u32,
    accepted_owners: &[u32],
) -> Result<(), StoreError> {
    let created = match DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(error) => return Err(StoreError::io(format!("creating {}", dir.display()), error)),
    };
    secure_dir(dir, created, owner, mode, accepted_owners)
}

/// Opens `dir` without following a link, checks it is a directory we just created or one
/// of an accepted owner, and gives it its owner and mode through that handle.
fn secure_dir(
    dir: &Path,
    created: bool,
    owner: Owner,
    mode: u32,
    accepted_owners: &[u32],
) -> Result<(), StoreError> {
    let handle = open_directory_no_follow(dir)?;
    let metadata = handle
        .metadata()
        .map_err(|error| StoreError::io(format!("examining {}", dir.display()), error))?;
    if !created && !accepted_owners.contains(&metadata.uid()) {
        return Err(StoreError::UnsafePath {
            path: dir.to_path_buf(),
            reason: format!(
                "it exists and belongs to uid {}, not to uid {}; remove it, choose another \
                 directory, or set DATABASE_URL",
                metadata.uid(),
                owner.uid
            ),
        });
    }
    if owner.chown && (metadata.uid(), metadata.gid()) != (owner.uid, owner.gid) {
        std::os::unix::fs::fchown(&handle, Some(owner.uid), Some(owner.gid))
            .map_err(|error| StoreError::io(format!("chown {}", dir.display()), error))?;
    }
    if metadata.mode() & 0o7777 != mode {
        handle
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|error| StoreError::io(format!("chmod {}", dir.display()), error))?;
    }
    Ok(())
}

fn open_directory_no_follow(dir: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => StoreError::UnsafePath {
                path: dir.to_path_buf(),
                reason: "it is a symbolic link or not a directory".into(),
            },
            _ => StoreError::io(format!("opening {}", dir.display()), error),
        })
}

/// Creates a new private directory for the server user (it must not exist yet), mode 0700,
/// and checks the user can use it. The test harness makes its clusters' homes with it.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn create_private_dir(user: &ServerUser, dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|error| StoreError::io(format!("creating {}", dir.display()), error))?;
    secure_dir(dir, true, Owner::server(user), 0o700, &[])?;
    user.check_access(dir)
}

/// Where the server's socket goes: the home itself when the socket's path fits in a socket
/// address, else a fresh directory of random name under `/tmp` (returned as `Some`, to be
/// removed after the server stops).
pub(crate) fn socket_dir(
    user: &ServerUser,
    home: &Path,
    port: u16,
) -> Result<(PathBuf, Option<PathBuf>), StoreError> {
    let socket_name_bytes = format!("/.s.PGSQL.{port}").len();
    if home.as_os_str().len() + socket_name_bytes <= MAX_SOCKET_PATH_BYTES {
        return Ok((home.to_path_buf(), None));
    }
    for _ in 0..SOCKET_DIR_ATTEMPTS {
        let random = &Uuid::new_v4().simple().to_string()[..16];
        let dir = Path::new(SOCKET_PARENT).join(format!("{SOCKET_DIR_PREFIX}{random}"));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                secure_dir(&dir, true, Owner::server(user), 0o700, &[])?;
                return Ok((dir.clone(), Some(dir)));
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(StoreError::io(format!("creating {}", dir.display()), error)),
        }
    }
    Err(StoreError::io(
        "creating a socket directory under /tmp",
        std::io::ErrorKind::AlreadyExists.into(),
    ))
}

/// Whether `dir` is a socket directory of ours of random name (so removed after a stop).
pub(crate) fn is_random_socket_dir(dir: &Path) -> bool {
    dir.parent() == Some(Path::new(SOCKET_PARENT))
        && dir
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(SOCKET_DIR_PREFIX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Characters that would change `pg_ctl`'s shell command are refused; others pass.
    #[test]
    fn unquotable_paths_are_refused() {
        for bad in [
            "/a/it's",
            "/a/\"x\"",
            "/a/$HOME",
            "/a/`id`",
            "/a/b\\c",
            "/a/new\nline",
        ] {
            let error = refuse_unquotable(Path::new(bad)).unwrap_err();
            assert!(matches!(error, StoreError::UnsafePath { .. }), "{bad:?}");
            assert!(error.to_string().contains("pg_ctl"), "{error}");
        }
        refuse_unquotable(Path::new("/home/a b/ledger project/.ledger")).unwrap();
    }

    /// The persistent home is named by a short hash of the path, the same every time.
    #[test]
    fn the_persistent_home_is_a_short_hash_of_the_path() {
        let home = persistent_home_for(Path::new("/root/project/.ledger"));
        assert_eq!(
            home,
            persistent_home_for(Path::new("/root/project/.ledger"))
        );
        assert_ne!(home, persistent_home_for(Path::new("/root/other/.ledger")));
        assert_eq!(home.parent(), Some(Path::new(PERSISTENT_CLUSTERS_DIR)));
        assert_eq!(home.file_name().unwrap().len(), 16);
    }

    /// A long home gets a fresh socket directory of random name, mode 0700; a short one
    /// keeps the socket inside itself.
    #[test]
    fn the_socket_goes_into_the_home_or_a_random_private_directory() {
        let user = ServerUser::choose().unwrap();
        let short = Path::new("/var/lib/ledger/clusters/0123456789abcdef");
        assert_eq!(
            socket_dir(&user, short, 5432).unwrap(),
            (short.into(), None)
        );

        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(100)));
        let (first, Some(made)) = socket_dir(&user, &long, 5432).unwrap() else {
            panic!("a long home needs a socket directory elsewhere");
        };
        let (second, _) = socket_dir(&user, &long, 5432).unwrap();
        assert_ne!(
            first, second,
            "the name is random, not derived from the path"
        );
        for dir in [&first, &second] {
            let metadata = std::fs::symlink_metadata(dir).unwrap();
            assert_eq!(metadata.mode() & 0o7777, 0o700);
            assert_eq!(metadata.uid(), user.uid);
            assert!(is_random_socket_dir(dir));
        }
        assert_eq!(made, first);
        std::fs::remove_dir(&first).unwrap();
        std::fs::remove_dir(&second).unwrap();
    }

    /// A symbolic link where a directory is expected is refused, never followed.
    #[test]
    fn a_planted_link_is_refused() {
        let user = ServerUser::choose().unwrap();
        let scratch = std::env::temp_dir().join(format!("ledger-link-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&scratch).unwrap();
        let target = scratch.join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = scratch.join(".ledger");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = ensure_dir(&link, Owner::server(&user), 0o700, &[0, user.uid]).unwrap_err();
        assert!(matches!(error, StoreError::UnsafePath { .. }), "{error}");
        let target_mode = std::fs::metadata(&target).unwrap().mode() & 0o7777;
        assert_ne!(target_mode, 0o700, "the link's target was changed");
        std::fs::remove_dir_all(&scratch).unwrap();
    }
}
