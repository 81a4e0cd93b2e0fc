-- `ledger serve` looks for authorizations past their expiry that could still be captured;
-- this index holds only those that can expire, so the sweep reads no other payment.
CREATE INDEX projection_payments_expiring
    ON projection_payments (authorization_expires_at, payment_id)
    WHERE capturable_amount > 0 AND authorization_expires_at IS NOT NULL;
