//! `ledger serve` as a child process on a database of the test's, and keys made the way an
//! operator makes them (`ledger keys create`): what the browser tests drive.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ledger_binary;

/// `ledger serve` on a free port of 127.0.0.1, stopped when dropped.
pub struct Server {
    process: Child,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
}

impl Server {
    /// Starts the server on `database_url` and waits until it listens (30 s at most).
    pub fn start(database_url: &str) -> Server {
        Server::start_with(database_url, &[])
    }

    /// [`Server::start`] with these environment variables set (the Stripe webhook secrets…).
    pub fn start_with(database_url: &str, environment: &[(&str, &str)]) -> Server {
        let port = free_port();
        let process = Command::new(ledger_binary())
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env_remove("LEDGER_SERVER_DATABASE_URL")
            .env_remove("LEDGER_STRIPE_WEBHOOK_SECRETS")
            .env("RUST_LOG", "error")
            .envs(environment.iter().copied())
            .stdout(Stdio::null())
            .spawn();
        let process = match process {
            Ok(process) => process,
            Err(error) => panic!("ledger serve does not start: {error}"),
        };
        let server = Server {
            process,
            address: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "ledger serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A port of 127.0.0.1 that nothing listens on now.
pub fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()) {
        Ok(address) => address.port(),
        Err(error) => panic!("no free port: {error}"),
    }
}

/// A test-environment key of `role`, made by `ledger keys create` on `database_url`.
pub fn create_key(database_url: &str, role: &str) -> String {
    let mut ledger = Command::new(ledger_binary());
    ledger.env("DATABASE_URL", database_url);
    create_key_with(ledger, role)
}

/// A test-environment key of `role`, made by `ledger keys create` run as `ledger` is set up
/// (its directory and database), as an operator makes one.
pub fn create_key_with(mut ledger: Command, role: &str) -> String {
    let output = ledger
        .args(["keys", "create", "--role", role, "--env", "test"])
        .env("RUST_LOG", "warn")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => panic!("ledger keys create does not run: {error}"),
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().last().unwrap_or_default().trim().to_owned()
}
