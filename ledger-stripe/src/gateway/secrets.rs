//! Webhook signing secrets, parsed from `LEDGER_STRIPE_WEBHOOK_SECRETS`.
//!
//! The variable holds comma-separated `test:whsec_…` and `live:whsec_…` entries. Several
//! entries per environment let an operator rotate a secret without dropping deliveries: Stripe
//! signs with the old and the new secret during a roll, and either verifies here.
//!
//! Parse, don't validate: a [`WebhookSecrets`] holds only well-formed entries, at least one and
//! at most [`MAX_WEBHOOK_SECRETS`]. Neither type prints its secrets, in `Debug` or anywhere
//! else; reading the variable is the caller's job (this module does no I/O).

use std::fmt;

use hmac::{Hmac, Mac};
use ledger_core::ids::Environment;
use sha2::Sha256;

use super::error::StripeError;

/// The name of the environment variable the configuration comes from.
pub const WEBHOOK_SECRETS_VARIABLE: &str = "LEDGER_STRIPE_WEBHOOK_SECRETS";

/// More entries than this is a configuration mistake, not a rotation: each one costs an HMAC
/// per delivery.
pub const MAX_WEBHOOK_SECRETS: usize = 16;

/// Stripe's endpoint secrets are about 40 characters; the bound keeps a pasted file out.
const MAX_SECRET_LENGTH: usize = 256;

/// Stripe prefixes every webhook endpoint secret with this.
const SECRET_PREFIX: &str = "whsec_";

/// One endpoint secret and the environment whose events it signs. Only the HMAC keyed with
/// the secret is kept, so the secret text itself cannot leak from here.
#[derive(Clone)]
pub struct WebhookSecret {
    environment: Environment,
    keyed_mac: Hmac<Sha256>,
}

impl WebhookSecret {
    /// Parses one `test:whsec_…` or `live:whsec_…` entry. `position` (1-based) names the entry
    /// in the error, because the entry itself may be a secret.
    fn parse_entry(entry: &str, position: usize) -> Result<WebhookSecret, StripeError> {
        let invalid = |reason| StripeError::InvalidSecretsConfiguration { position, reason };
        let (environment, secret) = entry
            .trim()
            .split_once(':')
            .ok_or_else(|| invalid("it has no `test:` or `live:` prefix"))?;
        let environment: Environment = environment
            .parse()
            .map_err(|_| invalid("the environment must be `test` or `live`"))?;
        WebhookSecret::build(environment, secret).map_err(invalid)
    }

    /// Builds one secret, e.g. for tests and `ledger demo`; a malformed one is reported as
    /// entry 1 of a configuration.
    pub fn new(environment: Environment, secret: &str) -> Result<WebhookSecret, StripeError> {
        WebhookSecret::build(environment, secret).map_err(|reason| {
            StripeError::InvalidSecretsConfiguration {
                position: 1,
                reason,
            }
        })
    }

    fn build(environment: Environment, secret: &str) -> Result<WebhookSecret, &'static str> {
        let key = secret
            .strip_prefix(SECRET_PREFIX)
            .ok_or("the secret must start with `whsec_`")?;
        if key.is_empty() {
            return Err("the secret is empty after `whsec_`");
        }
        if secret.len() > MAX_SECRET_LENGTH {
            return Err("the secret is longer than 256 characters");
        }
        if !secret.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err("the secret may contain only printable ASCII characters");
        }
        // Stripe keys the HMAC with the whole secret string, `whsec_` included.
        let keyed_mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .map_err(|_| "the secret cannot key an HMAC")?;
        Ok(WebhookSecret {
            environment,
            keyed_mac,
        })
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// A fresh HMAC-SHA256 keyed with this secret, with nothing fed in yet.
    pub(super) fn keyed_mac(&self) -> Hmac<Sha256> {
        self.keyed_mac.clone()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "WebhookSecret({}:whsec_<redacted>)",
            self.environment
        )
    }
}

/// Every configured secret, in configuration order.
#[derive(Clone)]
pub struct WebhookSecrets {
    secrets: Vec<WebhookSecret>,
}

impl WebhookSecrets {
    /// Parses the variable's value. Spaces around entries are ignored; an empty entry (as from
    /// a trailing comma) is refused, since it is more likely a paste error than intent.
    pub fn parse(text: &str) -> Result<WebhookSecrets, StripeError> {
        if text.trim().is_empty() {
            return Err(StripeError::InvalidSecretsConfiguration {
                position: 0,
                reason: "no secret is configured",
            });
        }
        let secrets = text
            .split(',')
            .enumerate()
            .map(|(index, entry)| WebhookSecret::parse_entry(entry, index + 1))
            .collect::<Result<Vec<_>, _>>()?;
        WebhookSecrets::from_secrets(secrets)
    }

    /// Builds the set from secrets made with [`WebhookSecret::new`].
    pub fn from_secrets(secrets: Vec<WebhookSecret>) -> Result<WebhookSecrets, StripeError> {
        if secrets.is_empty() {
            return Err(StripeError::InvalidSecretsConfiguration {
                position: 0,
                reason: "no secret is configured",
            });
        }
        if secrets.len() > MAX_WEBHOOK_SECRETS {
            return Err(StripeError::InvalidSecretsConfiguration {
                position: MAX_WEBHOOK_SECRETS + 1,
                reason: "more than 16 secrets are configured",
            });
        }
        Ok(WebhookSecrets { secrets })
    }

    pub fn iter(&self) -> impl Iterator<Item = &WebhookSecret> {
        self.secrets.iter()
    }

    /// The environments that have at least one secret, e.g. to warn at start-up that live
    /// events cannot be received.
    pub fn environments(&self) -> Vec<Environment> {
        let mut environments: Vec<Environment> = self
            .secrets
            .iter()
            .map(WebhookSecret::environment)
            .collect();
        environments.sort();
        environments.dedup();
        environments
    }

    /// The newest (last configured) secret of an environment: the one `ledger demo` and tests
    /// sign with.
    pub fn newest(&self, environment: Environment) -> Option<&WebhookSecret> {
        self.secrets
            .iter()
            .rev()
            .find(|secret| secret.environment == environment)
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_list().entries(self.secrets.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_secrets_per_environment() {
        let secrets =
            WebhookSecrets::parse(" test:whsec_old , test:whsec_new,live:whsec_live ").unwrap();
        assert_eq!(secrets.iter().count(), 3);
        assert_eq!(
            secrets.environments(),
            vec![Environment::Test, Environment::Live]
        );
        let newest = secrets.newest(Environment::Test).unwrap();
        let expected = WebhookSecret::new(Environment::Test, "whsec_new").unwrap();
        assert_eq!(
            newest.keyed_mac().finalize().into_bytes(),
            expected.keyed_mac().finalize().into_bytes()
        );
    }

    #[test]
    fn refuses_malformed_entries_by_position_without_echoing_them() {
        for (text, position) in [
            ("", 0),
            ("test:whsec_a,", 2),
            ("whsec_a", 1),
            ("prod:whsec_a", 1),
            ("test:sk_test_a", 1),
            ("test:whsec_", 1),
            ("test:whsec_a b", 1),
        ] {
            let error = WebhookSecrets::parse(text).unwrap_err();
            assert!(
                matches!(error, StripeError::InvalidSecretsConfiguration { position: found, .. } if found == position),
                "{text}: {error:?}"
            );
            assert!(!error.to_string().contains("sk_test_a"));
        }
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let secrets = WebhookSecrets::parse("test:whsec_supersecret,live:whsec_other").unwrap();
        let printed = format!("{secrets:?}");
        assert!(!printed.contains("supersecret"), "{printed}");
        assert!(!printed.contains("other"), "{printed}");
        assert!(printed.contains("test:whsec_<redacted>"), "{printed}");
    }
}
