-- The console's exceptions queue lists webhook deliveries a person must look at (parked,
-- in conflict, rejected, expired), newest first, and counts them per outcome. They are a few
-- among millions of applied ones: this partial index holds only them, so neither the page
-- nor its counts walk the applied deliveries. An index needs no grant for `ledger_server`.
CREATE INDEX webhook_deliveries_problems
    ON webhook_deliveries (environment, last_received_at DESC, stripe_event_id)
    WHERE outcome IN ('parked', 'conflict', 'rejected', 'expired');
