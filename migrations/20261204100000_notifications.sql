-- Outbound notifications (ledger-notify): endpoints that client services register, and the
-- deliveries the dispatcher derives from the log.
--
-- The log is the outbox: the dispatcher reads committed events after its checkpoint and, in
-- the transaction that moves the checkpoint, inserts one delivery per (event, matching
-- endpoint). Nothing is sent before its event is committed, and a crash rolls the deliveries
-- and the checkpoint back together, so nothing committed is skipped.

CREATE TABLE notification_endpoints (
    endpoint_id uuid PRIMARY KEY,
    environment text NOT NULL CHECK (environment IN ('test', 'live')),
    url text NOT NULL CHECK (length(url) <= 2048),
    -- `*` or the notification types (payment.captured, …) the endpoint wants.
    event_types text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 32),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 512),
    status text NOT NULL CHECK (status IN ('enabled', 'disabled')),
    -- Why it was disabled: `admin`, or `failing` (every attempt failed for the retry window).
    disabled_reason text CHECK (disabled_reason IN ('admin', 'failing')),
    disabled_at timestamptz,
    -- The signing secret (`lwhsec_…`): kept in clear because the ledger signs with it.
    secret text NOT NULL,
    -- After a rotation the old secret signs too (a second `v1=`) until it expires.
    previous_secret text,
    previous_secret_expires_at timestamptz,
    -- Events at or before this position predate the endpoint and are not sent to it.
    created_position bigint NOT NULL CHECK (created_position >= 0),
    idempotency_key text NOT NULL,
    request_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (environment, idempotency_key)
);

CREATE INDEX notification_endpoints_by_environment
    ON notification_endpoints (environment, created_at, endpoint_id);

-- One row per notification per endpoint, and one more per replay of it (`round`).
CREATE TABLE notification_deliveries (
    delivery_id bigserial PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES notification_endpoints (endpoint_id),
    -- The notification's `id`: the same for every attempt and replay of it.
    notification_id uuid NOT NULL,
    round integer NOT NULL DEFAULT 0 CHECK (round >= 0),
    position bigint NOT NULL CHECK (position > 0),
    -- The payment, settlement batch or reconciliation run: deliveries about one subject go to
    -- an endpoint one at a time, in log order.
    subject_id uuid NOT NULL,
    notification_type text NOT NULL,
    -- The exact body, fixed when the delivery is created, so every attempt sends the same bytes.
    body text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A sender holds a delivery while it sends it; another process skips it until then.
    leased_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status_code integer,
    last_latency_ms integer,
    -- What went wrong (connect error, timeout) when there was no status code.
    last_error text CHECK (length(last_error) <= 1024),
    -- At most 1 KiB of the endpoint's answer.
    last_response text CHECK (octet_length(last_response) <= 1024),
    delivered_at timestamptz,
    UNIQUE (endpoint_id, notification_id, round)
);

-- The sender's question: the oldest pending delivery of each (endpoint, subject).
CREATE INDEX notification_deliveries_pending
    ON notification_deliveries (endpoint_id, subject_id, position, delivery_id)
    WHERE status = 'pending';
-- An endpoint's deliveries, newest first.
CREATE INDEX notification_deliveries_by_endpoint
    ON notification_deliveries (endpoint_id, delivery_id);

-- How far the dispatcher has turned the log into deliveries, moved with them.
CREATE TABLE notification_checkpoint (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    position bigint NOT NULL CHECK (position >= 0),
    last_recorded_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Starts at the log's head: a database that had events before notifications existed has no
-- endpoint that could want them.
INSERT INTO notification_checkpoint (position) SELECT last_position FROM log_head;
INSERT INTO notification_checkpoint (position) SELECT 0 WHERE NOT EXISTS (SELECT FROM notification_checkpoint);

-- The server keeps all three (the API manages endpoints; dispatcher and sender, deliveries).
GRANT SELECT, INSERT, UPDATE ON notification_endpoints TO ledger_server;
GRANT SELECT, INSERT, UPDATE ON notification_deliveries TO ledger_server;
GRANT USAGE ON SEQUENCE notification_deliveries_delivery_id_seq TO ledger_server;
GRANT SELECT, UPDATE ON notification_checkpoint TO ledger_server;
