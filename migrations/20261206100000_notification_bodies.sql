-- A notification's body is stored once, however many endpoints it goes to: the deliveries
-- were one row per endpoint, each with its own copy of the body, so four endpoints wrote every
-- body four times, and every lease and every recorded outcome copied it again (a body is
-- about a kilobyte, a delivery without it about a hundred bytes).
CREATE TABLE notifications (
    -- The notification's `id`: UUID v5 of its event's id.
    notification_id uuid PRIMARY KEY,
    position bigint NOT NULL CHECK (position > 0),
    -- The exact body, fixed when the notification is made, so every attempt, every endpoint
    -- and every replay sends the same bytes.
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO notifications (notification_id, position, body, created_at)
SELECT DISTINCT ON (notification_id) notification_id, position, body, created_at
FROM notification_deliveries
ORDER BY notification_id, round, delivery_id;

ALTER TABLE notification_deliveries DROP COLUMN body;

-- A delivery's body must exist for as long as the delivery does: retention deletes a body only
-- once no delivery of it is left, and this key refuses it should a replay have queued one in
-- the meantime. Led by the notification id, the unique key answers "is any delivery of this
-- notification left?" as well as the dispatcher's conflict check.
ALTER TABLE notification_deliveries
    ADD FOREIGN KEY (notification_id) REFERENCES notifications (notification_id);
ALTER TABLE notification_deliveries
    DROP CONSTRAINT notification_deliveries_endpoint_id_notification_id_round_key;
ALTER TABLE notification_deliveries
    ADD CONSTRAINT notification_deliveries_notification_endpoint_round
    UNIQUE (notification_id, endpoint_id, round);

GRANT SELECT, INSERT, DELETE ON notifications TO ledger_server;
