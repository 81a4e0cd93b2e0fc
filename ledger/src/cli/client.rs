//! A small GraphQL-over-HTTP client for `ledger demo` and `ledger bench`, which drive the
//! public API exactly as outside services do, and an in-process server for them to drive.

use std::net::SocketAddr;

use anyhow::Context as _;
use serde_json::{json, Value};
use sqlx::PgPool;

use ledger_api::auth::{create_key, Role};
use ledger_core::ids::Environment;

#[derive(Clone)]
pub struct GraphqlClient {
    http: reqwest::Client,
    endpoint: String,
    key: String,
}

impl GraphqlClient {
    pub fn new(address: SocketAddr, key: String) -> anyhow::Result<GraphqlClient> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("could not build the HTTP client")?;
        Ok(GraphqlClient {
            http,
            endpoint: format!("http://{address}/graphql"),
            key,
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Runs one operation; GraphQL errors become an error naming their code.
    pub async fn run(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let response: Value = self
            .http
            .post(&self.endpoint)
            .bearer_auth(&self.key)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .context("the request did not reach the server")?
            .json()
            .await
            .context("the server's answer is not JSON")?;
        if let Some(error) = response.get("errors").and_then(|errors| errors.get(0)) {
            anyhow::bail!(
                "{} ({})",
                error["message"].as_str().unwrap_or("error"),
                error["extensions"]["code"].as_str().unwrap_or("?")
            );
        }
        Ok(response["data"].clone())
    }
}

/// Serves the application on a free loopback port in this process, with the projections
/// following the log.
pub async fn serve_in_process(pool: PgPool) -> anyhow::Result<InProcessServer> {
    let (_, routes) =
        ledger_api::server::application(pool.clone(), crate::config::server_config()?)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("could not listen on a loopback port")?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<()>| async move {
        // Fires when the sender is dropped, with the server.
        let _ = stopped.changed().await;
    };
    let serving =
        axum::serve(listener, routes).with_graceful_shutdown(until_stopped(stopped.clone()));
    tokio::spawn(async move { serving.await });
    tokio::spawn(ledger_projections::Projector::live(pool).follow(until_stopped(stopped)));
    Ok(InProcessServer {
        address,
        _stop: stop,
    })
}

/// The server and live projector of an in-process run. Dropping it stops both, so that they
/// are done with the database before the caller closes or drops it.
pub struct InProcessServer {
    pub address: SocketAddr,
    _stop: tokio::sync::watch::Sender<()>,
}

/// A key for the in-process run; printed nowhere, revoked never (it lives in this database).
pub async fn admin_key(pool: &PgPool, name: &str) -> anyhow::Result<String> {
    let (key, _) = create_key(pool, Role::Admin, Environment::Test, name).await?;
    Ok(key.reveal().to_owned())
}
