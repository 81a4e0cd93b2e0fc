//! The payment aggregate: one stream per payment.
//!
//! Read in this order: [`command`] (what can be asked), [`event`] (what gets recorded),
//! [`state`] (what the events add up to, and `evolve`), [`decide`] (the rules),
//! [`invariants`] (what must always hold). Facts a gateway reports (repeated, late or early)
//! are decided by [`gateway_fact`]; when a refund needs an admin's approval, by
//! [`refund_approval`].

pub mod command;
pub mod decide;
pub mod decline;
pub mod event;
pub mod gateway_fact;
pub mod invariants;
pub mod order;
pub mod refund_approval;
pub mod state;

pub use command::*;
pub use decide::decide;
pub use decline::DeclineCategory;
pub use event::*;
pub use order::{order_status, OrderPayment, OrderPaymentStatus};
pub use refund_approval::RefundApprovalThresholds;
pub use state::{evolve, fold, Payment, PaymentState, PaymentStatus};
