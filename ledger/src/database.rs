//! Which PostgreSQL the binary uses: `DATABASE_URL` when set, else the embedded default, a
//! private cluster under `./.ledger/` that lives as long as the process that started it.
//! As root in a directory the server user cannot enter, the cluster lives in
//! `/var/lib/ledger/clusters/…` instead, and `./.ledger/cluster-location` names it.

use std::path::Path;

use anyhow::Context as _;
use ledger_store::embedded::EmbeddedCluster;
use ledger_store::server_role::{self, SERVER_ROLE};
use sqlx::PgPool;

/// Where the embedded cluster keeps its data, relative to the working directory.
pub const EMBEDDED_DIRECTORY: &str = ".ledger";
/// A connection URL for `ledger serve` as its own login (a role that is, or is a member of,
/// `ledger_server`), when `DATABASE_URL` is the owner's.
pub const SERVER_DATABASE_URL: &str = "LEDGER_SERVER_DATABASE_URL";
/// Connections one process keeps open.
pub const MAX_CONNECTIONS: u32 = 24;

pub struct Database {
    url: String,
    /// Held so the cluster stops when the process is done with it.
    cluster: Option<EmbeddedCluster>,
}

impl Database {
    pub fn open() -> anyhow::Result<Database> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return Ok(Database { url, cluster: None });
        }
        let directory = std::env::current_dir()
            .context("the working directory is unreadable")?
            .join(EMBEDDED_DIRECTORY);
        let cluster = EmbeddedCluster::start(&directory).with_context(|| {
            format!(
                "could not start the embedded PostgreSQL under {}; set DATABASE_URL to use a server of yours",
                directory.display()
            )
        })?;
        tracing::info!(
            data = %cluster.home().display(),
            location_file = ?cluster.location_file(),
            started_here = cluster.started_here(),
            "embedded PostgreSQL"
        );
        Ok(Database {
            url: cluster.url().to_owned(),
            cluster: Some(cluster),
        })
    }

    /// Connects and applies pending migrations.
    pub async fn connect(&self) -> anyhow::Result<PgPool> {
        let pool = ledger_store::pool_options(MAX_CONNECTIONS)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&self.url)
            .await
            .context("could not connect to PostgreSQL")?;
        ledger_store::migrate(&pool)
            .await
            .context("could not apply the database migrations")?;
        Ok(pool)
    }

    /// The pool `ledger serve` works with: as the database role [`SERVER_ROLE`], which owns
    /// nothing and cannot change the log; refused when its connections could do more, or lack
    /// what the server needs. Call after [`Self::connect`] (the migrations make the role).
    pub async fn serving_pool(&self, owner: &PgPool) -> anyhow::Result<PgPool> {
        let pool = if let Some(cluster) = &self.cluster {
            server_role::allow_login_on_private_socket(owner)
                .await
                .context("could not let the server's role log in to the embedded PostgreSQL")?;
            ledger_store::pool_options(MAX_CONNECTIONS)
                .connect(&cluster.url_as(SERVER_ROLE))
                .await
                .with_context(|| format!("could not connect to PostgreSQL as {SERVER_ROLE}"))?
        } else if let Ok(url) = std::env::var(SERVER_DATABASE_URL) {
            ledger_store::pool_options(MAX_CONNECTIONS)
                .connect(&url)
                .await
                .with_context(|| {
                    format!("could not connect to PostgreSQL with {SERVER_DATABASE_URL}")
                })?
        } else {
            server_role::server_pool_options(MAX_CONNECTIONS)
                .connect(&self.url)
                .await
                .with_context(|| {
                    format!("could not connect to PostgreSQL and switch to the role {SERVER_ROLE}")
                })?
        };
        let problems = server_role::serving_role_problems(&pool)
            .await
            .context("could not check the server's database role")?;
        if !problems.is_empty() {
            pool.close().await;
            anyhow::bail!(
                "the server will not work as a database role that could change the log or \
                 lacks what it needs: {}; see the README's \"Database roles\"",
                problems.join("; ")
            );
        }
        Ok(pool)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the embedded cluster keeps the ledger's data (`None` with `DATABASE_URL`).
    pub fn data_location(&self) -> Option<&Path> {
        self.cluster.as_ref().map(EmbeddedCluster::home)
    }

    /// Stops the embedded cluster if this process started it.
    pub fn close(mut self) -> anyhow::Result<()> {
        if let Some(cluster) = self.cluster.as_mut() {
            cluster
                .stop()
                .context("could not stop the embedded PostgreSQL")?;
        }
        Ok(())
    }
}
