//! Stripe's official Python library, which the sandbox's tests drive it with: the pinned
//! version, installed on first use from PyPI into the build's target directory when the
//! machine's `python3` does not have it, so `cargo test --workspace` needs no set-up beyond
//! `python3` with pip (`.ci/run` installs it system-wide as well).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The version of `stripe` the tests are written against.
pub const STRIPE_PYTHON_VERSION: &str = "16.1.0";

/// A `python3` command that imports the pinned `stripe`; panics with the reason when it cannot
/// be had (it is test support).
pub fn python_with_stripe() -> Command {
    let mut command = Command::new("python3");
    if let Some(path) = stripe_path() {
        command.env("PYTHONPATH", path);
    }
    command
}

/// Where the library was installed, or `None` when the machine's python has it already.
fn stripe_path() -> Option<&'static PathBuf> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| {
        let check =
            format!("import sys, stripe; sys.exit(stripe.VERSION != '{STRIPE_PYTHON_VERSION}')");
        let has = |path: Option<&PathBuf>| {
            let mut command = Command::new("python3");
            if let Some(path) = path {
                command.env("PYTHONPATH", path);
            }
            command
                .args(["-c", &check])
                .output()
                .is_ok_and(|output| output.status.success())
        };
        if has(None) {
            return None;
        }
        // Beside the test executables: target/<profile>/python/stripe-<version>.
        let directory = std::env::current_exe()
            .ok()
            .and_then(|test| Some(test.parent()?.parent()?.join("python")))
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("stripe-{STRIPE_PYTHON_VERSION}"));
        if !has(Some(&directory)) {
            let installed = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg("--target")
                .arg(&directory)
                .arg(format!("stripe=={STRIPE_PYTHON_VERSION}"))
                .output();
            match installed {
                Ok(output) if output.status.success() => {}
                Ok(output) => panic!(
                    "could not install Stripe's Python library: {}",
                    String::from_utf8_lossy(&output.stderr)
                ),
                Err(error) => panic!("python3 with pip is needed: {error}"),
            }
        }
        Some(directory)
    })
    .as_ref()
}
