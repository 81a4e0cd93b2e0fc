//! The HTTP clients deliveries go out with: connect and response timeouts, no redirects (a
//! redirect could lead past the URL checks), and for live endpoints a resolver that refuses
//! private, loopback and link-local addresses unless the operator allows them, so a public
//! name that resolves inside is refused at every attempt, not only at creation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::NotifyError;
use crate::url_policy::is_public;

/// The timeouts of one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// The whole exchange, from sending to the end of what is kept of the answer.
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(10),
        }
    }
}

/// Resolves with the system resolver and keeps only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if addresses.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address; live endpoints may not point inside"
                )
                .into());
            }
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// A client; `public_only` for live endpoints without `allow_private_targets`. Connections
/// are kept alive and reused, up to `idle_per_host` per endpoint host (the sender's
/// concurrency, so a busy endpoint does not reconnect for every request).
pub fn build(
    timeouts: Timeouts,
    public_only: bool,
    idle_per_host: usize,
) -> Result<reqwest::Client, NotifyError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.response)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ledger-notify/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(idle_per_host);
    if public_only {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
        .build()
        .map_err(|error| NotifyError::Client(error.to_string()))
}
