//! Stripe Connect: which ledger merchant a connected account (`acct_…`) is, parsed from
//! `LEDGER_STRIPE_CONNECTED_ACCOUNTS`.
//!
//! The variable holds comma-separated `acct_…:merchant_id` entries, for platforms whose ledger
//! merchant ids are their own. An account it does not name is the merchant of the same id
//! (`acct_…`): a platform that configures nothing has one ledger merchant per connected
//! account, named as Stripe names it, and an account added later is never refused or
//! attributed to a merchant it is not (see `mapping::identity` for the rule).
//!
//! Parse, don't validate: a [`ConnectedAccounts`] holds only well-formed entries, each account
//! once, at most [`MAX_CONNECTED_ACCOUNTS`]. Reading the variable is the caller's job.

use std::collections::BTreeMap;

use ledger_core::ids::MerchantId;

use super::error::StripeError;

/// The name of the environment variable the mapping comes from.
pub const CONNECTED_ACCOUNTS_VARIABLE: &str = "LEDGER_STRIPE_CONNECTED_ACCOUNTS";

/// More entries than this belong in a table, not in an environment variable.
pub const MAX_CONNECTED_ACCOUNTS: usize = 10_000;

/// Stripe prefixes every account id with this.
const ACCOUNT_PREFIX: &str = "acct_";

/// Stripe's account ids are about 21 characters; the bound keeps a pasted file out.
const MAX_ACCOUNT_ID_LENGTH: usize = 255;

/// The configured merchants of connected accounts; empty when none is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectedAccounts {
    merchants: BTreeMap<String, MerchantId>,
}

impl ConnectedAccounts {
    /// Parses `acct_…:merchant_id` entries separated by commas; blank text is no entry.
    pub fn parse(text: &str) -> Result<ConnectedAccounts, StripeError> {
        let mut merchants = BTreeMap::new();
        let entries = text.split(',').filter(|entry| !entry.trim().is_empty());
        for (index, entry) in entries.enumerate() {
            let position = index + 1;
            let invalid =
                |reason: String| StripeError::InvalidConnectedAccounts { position, reason };
            if position > MAX_CONNECTED_ACCOUNTS {
                return Err(invalid(format!(
                    "more than {MAX_CONNECTED_ACCOUNTS} accounts are configured"
                )));
            }
            let (account, merchant) = entry
                .trim()
                .split_once(':')
                .ok_or_else(|| invalid("it is not `acct_…:merchant_id`".to_owned()))?;
            let account = account.trim();
            if !account.starts_with(ACCOUNT_PREFIX)
                || account.len() == ACCOUNT_PREFIX.len()
                || account.len() > MAX_ACCOUNT_ID_LENGTH
                || !account
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
            {
                return Err(invalid(format!("`{account}` is not a Stripe account id")));
            }
            let merchant = MerchantId::parse(merchant.trim().to_owned())
                .map_err(|error| invalid(format!("the merchant id is invalid: {error}")))?;
            if merchants.insert(account.to_owned(), merchant).is_some() {
                // Two merchants for one account would make the ledger pick one silently.
                return Err(invalid(format!("`{account}` is configured twice")));
            }
        }
        Ok(ConnectedAccounts { merchants })
    }

    /// The merchant configured for an account, if any.
    pub fn merchant_of(&self, account: &str) -> Option<&MerchantId> {
        self.merchants.get(account)
    }

    pub fn is_empty(&self) -> bool {
        self.merchants.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_map_accounts_to_merchants() {
        let accounts = ConnectedAccounts::parse(" acct_1Abc:merchant_a , acct_2Def:m-b,").unwrap();
        assert_eq!(
            accounts.merchant_of("acct_1Abc"),
            Some(&MerchantId::parse("merchant_a").unwrap())
        );
        assert_eq!(
            accounts.merchant_of("acct_2Def"),
            Some(&MerchantId::parse("m-b").unwrap())
        );
        assert_eq!(accounts.merchant_of("acct_3Ghi"), None);
        assert!(ConnectedAccounts::parse("").unwrap().is_empty());
    }

    #[test]
    fn malformed_entries_are_refused_by_position() {
        for (text, position) in [
            ("acct_1Abc", 1),
            ("acct_1Abc:m,merchant:m", 2),
            ("acct_:m", 1),
            ("acct_1Abc:", 1),
            ("acct_1Abc:m,acct_1Abc:n", 2),
        ] {
            match ConnectedAccounts::parse(text) {
                Err(StripeError::InvalidConnectedAccounts { position: got, .. }) => {
                    assert_eq!(got, position, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
