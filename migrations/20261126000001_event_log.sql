-- The event log: the ledger's single source of truth.
--
-- Positions are gap-free and assigned by the application while it holds the lock on the one
-- `log_head` row, so a reader that has seen position N can never later find a committed N-1.
-- Hashes are computed by the application (see ledger-store's `hash_chain` module) and stored
-- as 32 raw bytes.

CREATE TABLE log_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    last_position bigint NOT NULL CHECK (last_position >= 0),
    last_hash bytea NOT NULL CHECK (octet_length(last_hash) = 32)
);

INSERT INTO log_head (id, last_position, last_hash)
VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- One row per stream: its type and the version reached, for optimistic concurrency.
CREATE TABLE streams (
    stream_id uuid PRIMARY KEY,
    stream_type text NOT NULL CHECK (stream_type IN ('payment', 'settlement_batch')),
    version bigint NOT NULL CHECK (version >= 1)
);

CREATE TABLE events (
    position bigint PRIMARY KEY CHECK (position >= 1),
    event_id uuid NOT NULL,
    stream_id uuid NOT NULL,
    stream_type text NOT NULL CHECK (stream_type IN ('payment', 'settlement_batch')),
    stream_version bigint NOT NULL CHECK (stream_version >= 1),
    event_type text NOT NULL CHECK (event_type <> ''),
    schema_version integer NOT NULL CHECK (schema_version >= 1),
    recorded_at timestamptz NOT NULL,
    occurred_at timestamptz NOT NULL,
    payload jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    metadata jsonb NOT NULL CHECK (jsonb_typeof(metadata) = 'object'),
    prev_hash bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT events_event_id_unique UNIQUE (event_id),
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
);

-- Idempotency claims, written in the same transaction as the events they produced.
CREATE TABLE idempotency_keys (
    environment text NOT NULL CHECK (environment IN ('test', 'live')),
    key text NOT NULL CHECK (key <> '' AND length(key) <= 255),
    request_hash bytea NOT NULL,
    result jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment, key)
);

-- The log is append-only, in the database itself: no role, not even the owner or a superuser,
-- may UPDATE, DELETE or TRUNCATE it while this trigger is enabled. A statement-level trigger
-- fires even when the statement would touch no row, and it is the only kind TRUNCATE fires.
CREATE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- For roles other than the owner, take the privilege away as well.
REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC;

-- Wakes subscribers when the head moves. Delivered at commit, so a woken reader finds the
-- events; readers still catch up by position, so a lost notification only delays them.
CREATE FUNCTION log_head_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ledger_events', NEW.last_position::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER log_head_notify
    AFTER UPDATE ON log_head
    FOR EACH ROW EXECUTE FUNCTION log_head_notify();
