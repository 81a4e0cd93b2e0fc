//! Which URLs an endpoint may have. Live endpoints need `https` and a public address (a
//! notification must not become a way to reach the ledger's own network), unless the operator
//! allows private targets (`LEDGER_NOTIFY_ALLOW_PRIVATE_TARGETS`); test endpoints may use
//! `http` and any address, so that a developer's machine can receive them.
//!
//! The host is checked when the endpoint is created and again, resolved, before every attempt
//! ([`check_resolved`]), so a name that later points inside is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ledger_core::ids::Environment;
use url::{Host, Url};

use crate::error::NotifyError;

/// The longest URL accepted.
pub const MAX_URL_LENGTH: usize = 2048;

/// What the operator allows beyond the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct UrlPolicy {
    /// Live endpoints may point at private, loopback and link-local addresses.
    pub allow_private_targets: bool,
}

impl UrlPolicy {
    /// Parses and checks an endpoint's URL for `environment`.
    pub fn check(&self, environment: Environment, text: &str) -> Result<Url, NotifyError> {
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_URL_LENGTH {
            return Err(NotifyError::invalid(
                "url",
                format!("a URL has 1 to {MAX_URL_LENGTH} characters"),
            ));
        }
        let url = Url::parse(text)
            .map_err(|error| NotifyError::invalid("url", format!("not a URL: {error}")))?;
        let live = environment == Environment::Live;
        match url.scheme() {
            "https" => {}
            "http" if !live => {}
            "http" => {
                return Err(NotifyError::invalid(
                    "url",
                    "live endpoints must use https (http is allowed in test mode)",
                ))
            }
            _ => {
                return Err(NotifyError::invalid(
                    "url",
                    "the URL must start with https:// (or http:// in test mode)",
                ))
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(NotifyError::invalid(
                "url",
                "credentials in the URL are not accepted; the signature authenticates us",
            ));
        }
        if url.fragment().is_some() {
            return Err(NotifyError::invalid(
                "url",
                "a URL with a #fragment is not accepted",
            ));
        }
        let host = url
            .host()
            .ok_or_else(|| NotifyError::invalid("url", "the URL has no host"))?;
        if live && !self.allow_private_targets {
            let refused = match host {
                Host::Ipv4(address) => !is_public(IpAddr::V4(address)),
                Host::Ipv6(address) => !is_public(IpAddr::V6(address)),
                Host::Domain(name) => {
                    let name = name.trim_end_matches('.').to_ascii_lowercase();
                    name == "localhost" || name.ends_with(".localhost") || !name.contains('.')
                }
            };
            if refused {
                return Err(NotifyError::invalid(
                    "url",
                    "live endpoints may not point at private, loopback or link-local addresses",
                ));
            }
        }
        Ok(url)
    }

    /// Whether a live endpoint may be sent to `address`, the one its host resolved to.
    pub fn check_resolved(&self, environment: Environment, address: IpAddr) -> bool {
        environment != Environment::Live || self.allow_private_targets || is_public(address)
    }
}

/// Not loopback, private, link-local, unspecified, shared (CGNAT), multicast, documentation or
/// an IPv6 mapping of one of those.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(address) => is_public_v4(address),
        IpAddr::V6(address) => match address.to_ipv4_mapped() {
            Some(mapped) => is_public_v4(mapped),
            None => is_public_v6(address),
        },
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, _, _] = address.octets();
    !(address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    !(address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        // Unique local fc00::/7 and link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Documentation 2001:db8::/32.
        || (first == 0x2001 && address.segments()[1] == 0x0db8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(url: &str) -> Result<Url, NotifyError> {
        UrlPolicy::default().check(Environment::Live, url)
    }

    #[test]
    fn live_needs_https_and_a_public_host() {
        assert!(live("https://hooks.example.com/ledger").is_ok());
        assert!(live("http://hooks.example.com/ledger").is_err());
        for inside in [
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://localhost/x",
            "https://intranet/x",
            "https://0.0.0.0/x",
        ] {
            assert!(live(inside).is_err(), "{inside} should be refused");
        }
        let allowed = UrlPolicy {
            allow_private_targets: true,
        };
        assert!(allowed
            .check(Environment::Live, "https://10.1.2.3/x")
            .is_ok());
    }

    #[test]
    fn test_mode_allows_http_to_this_machine() {
        let policy = UrlPolicy::default();
        assert!(policy
            .check(Environment::Test, "http://127.0.0.1:9000/hook")
            .is_ok());
        assert!(policy
            .check(Environment::Test, "ftp://example.com/")
            .is_err());
        assert!(policy
            .check(Environment::Test, "https://user:pw@example.com/")
            .is_err());
        assert!(policy
            .check(
                Environment::Test,
                &format!("https://e.com/{}", "a".repeat(3000))
            )
            .is_err());
    }
}
