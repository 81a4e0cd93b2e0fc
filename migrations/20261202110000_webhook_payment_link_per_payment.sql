-- A ledger payment is linked to one PaymentIntent (interfaces.md): the second key of
-- `webhook_payment_links` makes the first link of a payment win, as the primary key does for a
-- PaymentIntent, and settles races between processes. A PaymentIntent whose link is refused is
-- a conflict for a person (`ledger-stripe`'s `webhooks::process`).
CREATE UNIQUE INDEX webhook_payment_links_payment
    ON webhook_payment_links (environment, payment_id);
