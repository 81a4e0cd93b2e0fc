//! `ledger scenarios run`: the scenario runner (`ledger_sandbox::scenarios`) against the
//! given gateway and ledger, or against its own: a sandbox in this process and a ledger on a
//! scratch embedded database, this binary's own `ledger serve` as a child process in a
//! temporary directory (its cluster, its key, its webhook secret; all removed afterwards).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use ledger_sandbox::scenarios::{self, Gateway, Ledger, Target};
use ledger_sandbox::{Chaos, SandboxConfig};

/// How long the scratch ledger may take to serve (its cluster's first start included).
const START_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Subcommand)]
pub enum ScenariosCommand {
    /// Run scenario files (a directory runs its *.toml files) and print the matrix of
    /// scenario × team. Exits non-zero when any expectation fails.
    Run {
        /// Scenario files or directories.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// The ledger's base URL (with --key); without it a scratch ledger is started.
        #[arg(long, value_name = "URL", requires = "key")]
        ledger: Option<String>,
        /// An API key of that ledger, in the test environment.
        #[arg(long, env = "LEDGER_API_KEY", hide_env_values = true)]
        key: Option<String>,
        /// A running sandbox's base URL; it must deliver its webhooks to --ledger. Without
        /// it a sandbox runs in this process.
        #[arg(long, value_name = "URL", requires = "ledger")]
        sandbox: Option<String>,
        /// The webhook secret the --ledger takes (LEDGER_STRIPE_WEBHOOK_SECRETS), for the
        /// sandbox started here.
        #[arg(
            long,
            env = "LEDGER_SANDBOX_WEBHOOK_SECRET",
            value_name = "whsec_…",
            hide_env_values = true
        )]
        webhook_secret: Option<String>,
        /// The started sandbox's delivery: none, delays, duplicates, reorder, drop-first,
        /// hostile. A property of the sandbox run, so not with --sandbox.
        #[arg(long, default_value = "none", conflicts_with = "sandbox")]
        chaos: Chaos,
        /// Seeds the started sandbox's ids and chaos. Random when unset (printed, to replay
        /// a run): the sandbox's ids follow from its seed, and a ledger that outlives the run
        /// must not meet the same PaymentIntent ids twice.
        #[arg(long, conflicts_with = "sandbox")]
        seed: Option<u64>,
        /// Also write the results as JUnit XML here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
}

pub async fn run(command: ScenariosCommand) -> anyhow::Result<()> {
    let ScenariosCommand::Run {
        paths,
        ledger,
        key,
        sandbox,
        webhook_secret,
        chaos,
        seed,
        junit,
    } = command;
    // Checked before anything starts: a bad file costs no cluster.
    let loaded = scenarios::load(&paths)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("the HTTP client")?;
    let mut own_ledger = None;
    let (ledger_url, key, secret) = match (ledger, key) {
        (Some(url), Some(key)) => (url, key, webhook_secret),
        _ => {
            // It waits on child processes: off the async workers.
            let started = tokio::task::spawn_blocking(ScratchLedger::start)
                .await
                .context("starting the scratch ledger")??;
            let answer = (
                started.url.clone(),
                started.key.clone(),
                Some(started.secret.clone()),
            );
            own_ledger = Some(started);
            answer
        }
    };
    let seed = seed.unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let mut own_sandbox = None;
    let sandbox_url = match sandbox {
        Some(url) => url,
        None => {
            let Some(secret) = secret else {
                bail!("--webhook-secret (the secret --ledger takes) is needed for the sandbox started here; or give --sandbox");
            };
            let mut config = SandboxConfig::new(&secret)
                .context("--webhook-secret")?
                .with_webhook_url(&format!(
                    "{}/webhooks/stripe",
                    ledger_url.trim_end_matches('/')
                ))
                .context("--ledger")?;
            config.chaos = chaos;
            config.seed = seed;
            let started = ledger_sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .context("the sandbox")?;
            let url = started.base_url();
            own_sandbox = Some(started);
            url
        }
    };
    let started_sandbox = if own_sandbox.is_some() {
        format!(" (started here: --chaos {chaos} --seed {seed})")
    } else {
        String::new()
    };
    println!(
        "{} scenarios against the gateway at {sandbox_url}{started_sandbox} and the ledger at {ledger_url}",
        loaded.len()
    );
    let target = Target {
        gateway: Gateway::new(client.clone(), &sandbox_url),
        ledger: Ledger::new(client, &ledger_url, &key),
        run_id: uuid::Uuid::new_v4().simple().to_string(),
    };
    let outcomes = scenarios::run_all(&target, loaded).await;
    if let Some(sandbox) = own_sandbox {
        sandbox.task.abort();
    }
    drop(own_ledger);
    print!("{}", scenarios::matrix(&outcomes));
    if let Some(path) = junit {
        std::fs::write(&path, scenarios::junit(&outcomes))
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    let failed = outcomes.iter().filter(|outcome| !outcome.passed()).count();
    if failed > 0 {
        bail!("{failed} of {} scenarios failed", outcomes.len());
    }
    Ok(())
}

/// This binary's `ledger serve` on a scratch embedded database in a temporary directory,
/// stopped with SIGINT (so its cluster stops too) and removed when dropped.
struct ScratchLedger {
    child: Child,
    directory: PathBuf,
    url: String,
    key: String,
    secret: String,
}

impl ScratchLedger {
    fn start() -> anyhow::Result<ScratchLedger> {
        let executable = std::env::current_exe().context("where this binary is")?;
        let directory = std::env::temp_dir().join(format!(
            "ledger-scenarios-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&directory)
            .with_context(|| format!("could not create {}", directory.display()))?;
        let key = ledger_command(&executable, &directory)
            .args(["keys", "create", "--role", "admin", "--env", "test"])
            .stderr(Stdio::inherit())
            .output()
            .context("ledger keys create")?;
        if !key.status.success() {
            let _ = std::fs::remove_dir_all(&directory);
            bail!("ledger keys create failed in {}", directory.display());
        }
        let key = String::from_utf8_lossy(&key.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let secret = format!("whsec_scenarios_{}", uuid::Uuid::new_v4().simple());
        let port = free_port()?;
        let log = std::fs::File::create(directory.join("serve.log"))
            .context("the scratch ledger's log")?;
        let mut child = ledger_command(&executable, &directory)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("LEDGER_STRIPE_WEBHOOK_SECRETS", format!("test:{secret}"))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("ledger serve")?;
        // Read on a thread of its own, so that a server that never gets ready cannot hang
        // the run; its later lines are drained there, so it never blocks on a full pipe.
        let (ready_sender, ready_receiver) = std::sync::mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
                let ready = lines.any(|line| line.starts_with("ledger serving"));
                let _ = ready_sender.send(ready);
                lines.for_each(drop);
            });
        }
        let ready = ready_receiver.recv_timeout(START_TIMEOUT).unwrap_or(false);
        let started = ScratchLedger {
            child,
            directory,
            url: format!("http://127.0.0.1:{port}"),
            key,
            secret,
        };
        if !ready {
            let log =
                std::fs::read_to_string(started.directory.join("serve.log")).unwrap_or_default();
            bail!("the scratch ledger did not start:\n{log}");
        }
        Ok(started)
    }
}

impl Drop for ScratchLedger {
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        let interrupted = pid.is_some_and(|pid| {
            rustix::process::kill_process(pid, rustix::process::Signal::INT).is_ok()
        });
        if !interrupted {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// The binary in `directory`, on its embedded database whatever the caller's environment
/// names: a scratch run must never touch a real database.
fn ledger_command(executable: &Path, directory: &Path) -> Command {
    let mut command = Command::new(executable);
    command
        .current_dir(directory)
        .env_remove("DATABASE_URL")
        .env_remove(crate::database::SERVER_DATABASE_URL)
        .env_remove("LEDGER_BIND")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("a free port")?;
    Ok(listener.local_addr().context("a free port")?.port())
}
