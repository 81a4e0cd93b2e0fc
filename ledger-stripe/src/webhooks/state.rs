//! [`WebhookState`]: everything `POST /webhooks/stripe` needs, built once at start-up.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use ledger_core::ids::{Environment, MerchantId};
use ledger_store::commands::CommandHandler;
use sqlx::PgPool;

use super::grouped::Grouped;
use crate::gateway::{ConnectedAccounts, WebhookSecrets, DEFAULT_MAX_BODY_BYTES};

/// Webhook events of one subject take turns in this process (see [`SubjectLocks`]); this
/// many stripes keep unrelated payments from waiting on each other.
const SUBJECT_LOCK_STRIPES: usize = 256;

/// What the operator configures.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// From `LEDGER_STRIPE_WEBHOOK_SECRETS` ([`WebhookSecrets::parse`]).
    pub secrets: WebhookSecrets,
    /// The merchant of events that name none (no `metadata.merchant_id`, no Connect account).
    pub default_merchant_id: MerchantId,
    /// Larger bodies are refused with 413 before they are read further.
    pub max_body_bytes: usize,
    /// From `LEDGER_STRIPE_CONNECTED_ACCOUNTS` ([`ConnectedAccounts::parse`]): the merchants of
    /// Connect accounts. Empty by default: each account is the merchant of its own id.
    pub connected_accounts: Arc<ConnectedAccounts>,
}

impl WebhookConfig {
    /// A configuration with the default body bound ([`DEFAULT_MAX_BODY_BYTES`]).
    pub fn new(secrets: WebhookSecrets, default_merchant_id: MerchantId) -> WebhookConfig {
        WebhookConfig {
            secrets,
            default_merchant_id,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            connected_accounts: Arc::default(),
        }
    }
}

/// The state of the Stripe webhook route. Cheap to clone.
///
/// Build it with [`WebhookState::new`] from the server's [`CommandHandler`] (sharing it
/// shares its per-stream turn-taking with the GraphQL mutations) and a [`WebhookConfig`].
/// The database pool is the command handler's store's pool.
#[derive(Clone)]
pub struct WebhookState {
    inner: Arc<Inner>,
}

struct Inner {
    commands: CommandHandler,
    config: WebhookConfig,
    locks: SubjectLocks,
    /// Started on first use, inside the runtime that serves the route.
    grouped: OnceLock<Grouped>,
}

impl WebhookState {
    pub fn new(commands: CommandHandler, config: WebhookConfig) -> WebhookState {
        WebhookState {
            inner: Arc::new(Inner {
                commands,
                config,
                locks: SubjectLocks::new(),
                grouped: OnceLock::new(),
            }),
        }
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.inner.config
    }

    pub(super) fn commands(&self) -> &CommandHandler {
        &self.inner.commands
    }

    pub(super) fn pool(&self) -> &PgPool {
        self.inner.commands.store().pool()
    }

    /// The grouped statements of deliveries ([`Grouped`]).
    pub(super) fn grouped(&self) -> &Grouped {
        self.inner
            .grouped
            .get_or_init(|| Grouped::start(self.pool().clone()))
    }

    pub(super) async fn lock_subject(
        &self,
        environment: Environment,
        subject: &str,
    ) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.locks.lock(environment, subject).await
    }
}

/// Serializes this process's handling of one subject (a PaymentIntent or a payout). The
/// claim keeps the log correct without it; taking turns spares concurrent copies of one
/// event lost races, and makes "apply, then retry what was parked" one step per subject.
struct SubjectLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl SubjectLocks {
    fn new() -> SubjectLocks {
        SubjectLocks {
            stripes: (0..SUBJECT_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    async fn lock(
        &self,
        environment: Environment,
        subject: &str,
    ) -> tokio::sync::MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        (environment.as_str(), subject).hash(&mut hasher);
        let stripe = (hasher.finish() % SUBJECT_LOCK_STRIPES as u64) as usize;
        self.stripes[stripe].lock().await
    }
}
