//! Support for the end-to-end tests of the whole ledger: where the `ledger` binary is, a
//! fresh directory to run it in, as a person would, a real browser (`browser`) and Stripe's
//! Python library (`python`).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod browser;
pub mod python;
pub mod running;
pub mod server;

use std::path::PathBuf;

/// The `ledger` binary of this build. `cargo test --workspace` builds it before any test runs
/// (it is the `ledger` package's binary target, and that package has tests); run alone, these
/// tests ask for `cargo build --bin ledger` first.
pub fn ledger_binary() -> PathBuf {
    // Test executables live in `target/<profile>/deps`; the binaries one level up.
    let binary = std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.join("ledger")))
        .filter(|binary| binary.is_file());
    match binary {
        Some(binary) => binary,
        None => panic!("the ledger binary is not built: run `cargo build --bin ledger` first"),
    }
}

/// A new empty directory under the system's temporary directory.
pub fn fresh_directory(purpose: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!(
        "ledger-{purpose}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    if let Err(error) = std::fs::create_dir_all(&directory) {
        panic!("{}: {error}", directory.display());
    }
    directory
}
