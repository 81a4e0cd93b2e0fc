//! Roles and what each may do, per the roles table of interfaces.md.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submits payment and settlement commands; reads payments.
    Service,
    /// Reads payments, orders, disputes and a payment's event history.
    Support,
    /// Reads everything but keys (the global log included); records settlements; runs
    /// reconciliation.
    Finance,
    /// Reads everything, the global log, chain verification, as-of queries.
    Auditor,
    /// Everything, including refunds above the approval threshold and keys.
    Admin,
}

/// The things a caller may try to do; each resolver asks for exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ReadPayments,
    ReadOrdersAndDisputes,
    ReadPaymentHistory,
    ReadSettlements,
    ReadBalances,
    ReadGlobalLog,
    SubmitPaymentCommands,
    RefundAboveThreshold,
    RecordSettlements,
    /// Reconciliation runs, their payouts and exceptions.
    ReadReconciliations,
    /// Import payout reports and resolve the exceptions they raise.
    RunReconciliation,
    ManageKeys,
    /// Outbound notification endpoints, their deliveries and replays.
    ManageNotificationEndpoints,
}

impl Permission {
    pub const ALL: [Permission; 13] = [
        Permission::ReadPayments,
        Permission::ReadOrdersAndDisputes,
        Permission::ReadPaymentHistory,
        Permission::ReadSettlements,
        Permission::ReadBalances,
        Permission::ReadGlobalLog,
        Permission::SubmitPaymentCommands,
        Permission::RefundAboveThreshold,
        Permission::RecordSettlements,
        Permission::ReadReconciliations,
        Permission::RunReconciliation,
        Permission::ManageKeys,
        Permission::ManageNotificationEndpoints,
    ];
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Service,
        Role::Support,
        Role::Finance,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Support => "support",
            Role::Finance => "finance",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Every role is an allow-list, admin's too: a permission added later is granted to no
    /// role until someone decides it here.
    pub fn may(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => matches!(
                permission,
                ReadPayments
                    | ReadOrdersAndDisputes
                    | ReadPaymentHistory
                    | ReadSettlements
                    | ReadBalances
                    | ReadGlobalLog
                    | SubmitPaymentCommands
                    | RefundAboveThreshold
                    | RecordSettlements
                    | ReadReconciliations
                    | RunReconciliation
                    | ManageKeys
                    | ManageNotificationEndpoints
            ),
            Role::Service => matches!(
                permission,
                ReadPayments | SubmitPaymentCommands | RecordSettlements
            ),
            Role::Support => matches!(
                permission,
                ReadPayments | ReadOrdersAndDisputes | ReadPaymentHistory
            ),
            Role::Finance => matches!(
                permission,
                ReadPayments
                    | ReadOrdersAndDisputes
                    | ReadPaymentHistory
                    | ReadSettlements
                    | ReadBalances
                    | ReadGlobalLog
                    | RecordSettlements
                    | ReadReconciliations
                    | RunReconciliation
            ),
            Role::Auditor => matches!(
                permission,
                ReadPayments
                    | ReadOrdersAndDisputes
                    | ReadPaymentHistory
                    | ReadSettlements
                    | ReadBalances
                    | ReadGlobalLog
                    | ReadReconciliations
            ),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown role {text:?}: expected service, support, finance, auditor or admin"
                )
            })
    }
}
