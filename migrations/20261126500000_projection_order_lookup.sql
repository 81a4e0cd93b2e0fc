-- The orders read model looks up all payments of the orders a batch touched. Keying
-- projection_order_payments by (environment, merchant_id, order_id, payment_id) makes that
-- lookup use the primary key, which builds keep (they drop secondary indexes while filling).
-- A payment's environment, merchant and order never change, so the key is as unique as
-- payment_id alone.
ALTER TABLE projection_order_payments DROP CONSTRAINT projection_order_payments_pkey;
ALTER TABLE projection_order_payments
    ADD PRIMARY KEY (environment, merchant_id, order_id, payment_id);
DROP INDEX projection_order_payments_order;
CREATE UNIQUE INDEX projection_order_payments_payment ON projection_order_payments (payment_id);
