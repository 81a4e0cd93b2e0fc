-- Retention of notification deliveries (ledger-notify's `retention`): delivered and failed
-- deliveries older than the retention period are deleted, oldest first. This index is the
-- walk: it holds only finished deliveries, so the prune reads just what it deletes and stops
-- at the cutoff, whatever the pending backlog or the table's size.
CREATE INDEX notification_deliveries_finished
    ON notification_deliveries (created_at)
    WHERE status <> 'pending';

-- The server prunes them: the one table whose rows it deletes (never the log).
GRANT DELETE ON notification_deliveries TO ledger_server;
