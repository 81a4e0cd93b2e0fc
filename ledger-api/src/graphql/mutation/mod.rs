//! Mutations: each parses its input into a ledger-core command, runs it through the command
//! handler under the caller's environment and idempotency key, and returns the new state, the
//! events recorded and the log position. The fingerprint that recognises a retry is the
//! mutation's name and its raw input, so defaults filled in here (generated ids) do not make a
//! retry look like a new request.
//!
//! - `payments`: the payment and settlement commands.
//! - `reconcile_import`: `importStripePayoutReport`.
//! - `reconciliation`: `resolveReconciliationException`.

pub mod payments;
pub mod reconcile_import;
pub mod reconciliation;

use async_graphql::MergedObject;
use chrono::Utc;
use ledger_store::commands::{CommandContext, Idempotency};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use payments::PaymentMutation;
use reconcile_import::ReconciliationImportMutation;
use reconciliation::ReconciliationMutation;

/// The longest idempotency key accepted: the log's bound.
pub use ledger_store::MAX_IDEMPOTENCY_KEY_LENGTH;
/// Idempotency keys the webhook endpoint uses for Stripe events.
pub use ledger_stripe::webhooks::CLAIM_PREFIX as RESERVED_KEY_PREFIX;

/// Every mutation: payments and settlements, finance's report imports, and resolving
/// reconciliation exceptions. The printed name stays `MutationRoot`, which clients' generated
/// code may know.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    PaymentMutation,
    ReconciliationImportMutation,
    ReconciliationMutation,
    crate::graphql::notifications::NotificationMutation,
);

/// The command context of one mutation: the caller's environment and key, and the
/// idempotency key with the fingerprint (the mutation's name and raw input) that recognises a
/// retry.
pub(crate) fn command_context(
    principal: &Principal,
    mutation: &str,
    input: &impl Serialize,
    idempotency_key: &str,
) -> ApiResult<CommandContext> {
    let key = idempotency_key.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LENGTH {
        return Err(ApiError::validation(
            "idempotencyKey",
            format!("an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters"),
        ));
    }
    // Webhooks claim `stripe:<event id>` in the same key space: a client key there could block
    // a gateway event.
    if key.starts_with(RESERVED_KEY_PREFIX) {
        return Err(ApiError::validation(
            "idempotencyKey",
            format!("keys starting with {RESERVED_KEY_PREFIX:?} are reserved for webhooks"),
        ));
    }
    let fingerprint = serde_json::json!({
        "mutation": mutation,
        "input": serde_json::to_value(input).map_err(ApiError::internal)?,
    });
    Ok(CommandContext {
        environment: principal.environment,
        actor_id: principal.key_id.to_string(),
        actor_role: principal.role.as_str().to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: Some(Idempotency::for_request(key, &fingerprint)?),
    })
}
