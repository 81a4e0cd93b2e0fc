//! The payment status of an order, derived from all of its payments: how support and finance
//! speak of an order that may have been paid in several attempts.

use serde::{Deserialize, Serialize};

use super::state::PaymentStatus;
use crate::stored::stored_names;

/// The payment status of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderPaymentStatus {
    /// No payment has been authorized or captured.
    Unpaid,
    /// Money is held for the order but nothing is captured.
    Authorized,
    Paid,
    PartiallyRefunded,
    Refunded,
    /// A payment has an open or lost dispute: money is withheld from the merchant.
    Disputed,
}

stored_names!(OrderPaymentStatus, "order payment status" {
    Unpaid => "UNPAID",
    Authorized => "AUTHORIZED",
    Paid => "PAID",
    PartiallyRefunded => "PARTIALLY_REFUNDED",
    Refunded => "REFUNDED",
    Disputed => "DISPUTED",
});

/// What the order status needs of one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderPayment {
    pub payment_status: PaymentStatus,
    pub has_disputed_funds: bool,
}

/// The order status from its payments. Payments may be in different currencies, so the rule
/// works on statuses, never on sums: any disputed payment makes the order disputed; otherwise
/// captured payments decide (all refunded, some refunded, or paid); otherwise an authorized
/// one makes it authorized; declined, voided, expired or pending payments leave it unpaid.
pub fn order_status(payments: &[OrderPayment]) -> OrderPaymentStatus {
    if payments.iter().any(|payment| payment.has_disputed_funds) {
        return OrderPaymentStatus::Disputed;
    }
    let captured: Vec<PaymentStatus> = payments
        .iter()
        .map(|payment| payment.payment_status)
        .filter(|status| {
            matches!(
                status,
                PaymentStatus::Captured
                    | PaymentStatus::PartiallyCaptured
                    | PaymentStatus::PartiallyRefunded
                    | PaymentStatus::Refunded
            )
        })
        .collect();
    if !captured.is_empty() {
        if captured
            .iter()
            .all(|status| *status == PaymentStatus::Refunded)
        {
            return OrderPaymentStatus::Refunded;
        }
        if captured.iter().any(|status| {
            matches!(
                status,
                PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded
            )
        }) {
            return OrderPaymentStatus::PartiallyRefunded;
        }
        return OrderPaymentStatus::Paid;
    }
    if payments
        .iter()
        .any(|payment| payment.payment_status == PaymentStatus::Authorized)
    {
        return OrderPaymentStatus::Authorized;
    }
    OrderPaymentStatus::Unpaid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: PaymentStatus, disputed: bool) -> OrderPayment {
        OrderPayment {
            payment_status: status,
            has_disputed_funds: disputed,
        }
    }

    /// Every order status follows from the statuses of its payments.
    #[test]
    fn derives_the_order_status_from_its_payments() {
        use PaymentStatus::*;
        assert_eq!(order_status(&[]), OrderPaymentStatus::Unpaid);
        assert_eq!(
            order_status(&[payment(Declined, false)]),
            OrderPaymentStatus::Unpaid
        );
        assert_eq!(
            order_status(&[payment(Declined, false), payment(Authorized, false)]),
            OrderPaymentStatus::Authorized
        );
        assert_eq!(
            order_status(&[payment(Captured, false)]),
            OrderPaymentStatus::Paid
        );
        assert_eq!(
            order_status(&[payment(Captured, false), payment(Refunded, false)]),
            OrderPaymentStatus::PartiallyRefunded
        );
        assert_eq!(
            order_status(&[payment(Refunded, false), payment(Voided, false)]),
            OrderPaymentStatus::Refunded
        );
        assert_eq!(
            order_status(&[payment(Refunded, true)]),
            OrderPaymentStatus::Disputed
        );
    }
}
