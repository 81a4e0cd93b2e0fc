//! Who is signed in on a request, and the frame every page shares.
//!
//! The session's key is authenticated again on every request, as an API request would be:
//! a key revoked since sign-in ends its sessions at the next click.

use axum::http::HeaderMap;
use ledger_api::auth::{authenticate, Permission, Principal};
use ledger_api::error::ApiError;
use ledger_core::ids::Environment;

use crate::error::ConsoleError;
use crate::session::{cookie_value, same_token, Session, SESSION_COOKIE};
use crate::ConsoleState;

/// The signed-in caller of a request.
pub struct Current {
    pub session_id: String,
    pub session: Session,
    pub principal: Principal,
}

impl Current {
    /// The caller of this request, or [`ConsoleError::SignedOut`].
    pub async fn of(state: &ConsoleState, headers: &HeaderMap) -> Result<Current, ConsoleError> {
        let session_id = cookie_value(headers, SESSION_COOKIE).ok_or(ConsoleError::SignedOut)?;
        let session = state
            .sessions
            .get(&session_id)
            .ok_or(ConsoleError::SignedOut)?;
        match authenticate(&state.pool, &session.key).await {
            Ok(principal) => Ok(Current {
                session_id,
                session,
                principal,
            }),
            Err(ApiError::Unauthenticated) => {
                state.sessions.close(&session_id);
                Err(ConsoleError::SignedOut)
            }
            Err(error) => Err(ConsoleError::Internal(error.to_string())),
        }
    }

    /// Refuses unless the key's role grants the permission; `what` names the page.
    pub fn require(&self, permission: Permission, what: &str) -> Result<(), ConsoleError> {
        if self.may(permission) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(format!(
                "A {} key may not see {what}; ask an admin for a key with the right role.",
                self.principal.role
            )))
        }
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.principal.role.may(permission)
    }

    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ConsoleError> {
        match presented {
            Some(token) if same_token(token, &self.session.csrf) => Ok(()),
            _ => Err(ConsoleError::Csrf),
        }
    }

    pub fn frame(&self, active: &'static str) -> Frame {
        let live = self.principal.environment == Environment::Live;
        Frame {
            environment: if live { "LIVE" } else { "TEST" },
            environment_class: if live { "live" } else { "test" },
            environment_note: if live {
                "Live: real money, real customers."
            } else {
                "Test: nothing here moves real money."
            },
            role: self.principal.role.as_str(),
            csrf: self.session.csrf.clone(),
            active,
            may_balances: self.may(Permission::ReadBalances),
            may_exceptions: self.may(Permission::ReadReconciliations),
            may_audit: self.may(Permission::ReadGlobalLog),
            may_webhook_health: self.may(Permission::ReadOrdersAndDisputes),
            may_launch_metrics: self.may(Permission::ReadBalances),
        }
    }
}

/// What the shared layout shows: the environment banner, the role, the links the role may
/// follow, and the sign-out form's token.
pub struct Frame {
    pub environment: &'static str,
    pub environment_class: &'static str,
    pub environment_note: &'static str,
    pub role: &'static str,
    pub csrf: String,
    pub active: &'static str,
    pub may_balances: bool,
    pub may_exceptions: bool,
    pub may_audit: bool,
    pub may_webhook_health: bool,
    pub may_launch_metrics: bool,
}
