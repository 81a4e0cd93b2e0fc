//! API keys: `lk_test_…` or `lk_live_…` followed by 48 random hex digits. A key is parsed
//! before it is looked up, so garbage never reaches the database, and only its SHA-256 is
//! ever stored or compared.

use std::fmt;

use ledger_core::ids::Environment;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const SECRET_HEX_DIGITS: usize = 48;

/// A well-formed API key. Its `Debug` and `Display` never show the secret part.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    text: String,
    environment: Environment,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the API key is malformed: expected lk_test_… or lk_live_… followed by 48 hex digits")]
pub struct MalformedApiKey;

impl ApiKey {
    pub fn parse(text: &str) -> Result<ApiKey, MalformedApiKey> {
        let (environment, secret) = if let Some(secret) = text.strip_prefix("lk_test_") {
            (Environment::Test, secret)
        } else if let Some(secret) = text.strip_prefix("lk_live_") {
            (Environment::Live, secret)
        } else {
            return Err(MalformedApiKey);
        };
        let well_formed = secret.len() == SECRET_HEX_DIGITS
            && secret
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !well_formed {
            return Err(MalformedApiKey);
        }
        Ok(ApiKey {
            text: text.to_owned(),
            environment,
        })
    }

    /// A new random key. The randomness comes from two version-4 UUIDs (244 random bits from
    /// the operating system's generator), of which 192 bits are used.
    pub fn generate(environment: Environment) -> ApiKey {
        let mut random = Vec::with_capacity(32);
        random.extend_from_slice(Uuid::new_v4().as_bytes());
        random.extend_from_slice(Uuid::new_v4().as_bytes());
        // Bytes 6 and 8 of a v4 UUID carry its version and variant: skip them.
        let secret: String = random
            .iter()
            .enumerate()
            .filter(|(index, _)| !matches!(index % 16, 6 | 8))
            .take(SECRET_HEX_DIGITS / 2)
            .map(|(_, byte)| format!("{byte:02x}"))
            .collect();
        let text = format!("lk_{}_{secret}", environment.as_str());
        ApiKey { text, environment }
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.text.as_bytes()).into()
    }

    /// The part shown in listings and logs: environment and the first four secret digits.
    pub fn prefix(&self) -> String {
        self.text.chars().take(12).collect()
    }

    /// The full key, to print exactly once when it is created.
    pub fn reveal(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ApiKey({}…)", self.prefix())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}…", self.prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hide_their_secret() {
        let key = ApiKey::generate(Environment::Live);
        let parsed = ApiKey::parse(key.reveal()).unwrap();
        assert_eq!(parsed, key);
        assert_eq!(parsed.environment(), Environment::Live);
        assert!(!format!("{key:?} {key}").contains(&key.reveal()[12..]));
        assert_ne!(
            ApiKey::generate(Environment::Test),
            ApiKey::generate(Environment::Test)
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        for text in [
            "",
            "lk_test_",
            "lk_prod_0123456789abcdef0123456789abcdef0123456789abcdef",
            "lk_test_0123456789ABCDEF0123456789abcdef0123456789abcdef",
            "lk_test_0123456789abcdef",
            "Bearer lk_test_0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(ApiKey::parse(text).is_err(), "{text:?}");
        }
    }
}
