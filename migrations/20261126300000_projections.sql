-- Read models (ledger-projections): views of the event log for support, finance and auditors.
--
-- Every table here is derived from `events` and can be rebuilt from it at any time. The live
-- tables live in `public` with the prefix `projection_`. A rebuild or a point-in-time build
-- creates the same tables in a schema of its own (`projection_clone_tables`), fills them with
-- its `search_path` set to that schema first, and a rebuild then swaps them in with
-- `projection_swap_tables` in one transaction. Application queries therefore name these tables
-- without a schema. Nothing here keeps a foreign key or a view: both would follow a table
-- when it moves to another schema.
--
-- Money is NUMERIC beside its ISO 4217 currency code, never a float.

-- How far each projection has applied the log, written in the same transaction as its rows.
CREATE TABLE projection_checkpoints (
    projection text PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= 0),
    -- The recorded_at of the event at `position`, for lag in seconds.
    last_recorded_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- payments: one row per payment, its amounts as ledger-core derives them.
CREATE TABLE projection_payments (
    payment_id uuid PRIMARY KEY,
    environment text NOT NULL,
    merchant_id text NOT NULL,
    order_id text NOT NULL,
    status text NOT NULL,
    currency text NOT NULL,
    requested_amount numeric NOT NULL,
    authorized_amount numeric NOT NULL,
    captured_amount numeric NOT NULL,
    refunded_amount numeric NOT NULL,
    refund_pending_amount numeric NOT NULL,
    disputed_amount numeric NOT NULL,
    refundable_amount numeric NOT NULL,
    capturable_amount numeric NOT NULL,
    capture_mode text NOT NULL,
    payment_method text,
    authorization_code text,
    gateway_reference text,
    authorization_expires_at timestamptz,
    decline_code text,
    decline_category text,
    -- occurred_at of the first and the last event of the payment.
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL,
    last_position bigint NOT NULL
);
CREATE INDEX projection_payments_created
    ON projection_payments (environment, created_at, payment_id);
CREATE INDEX projection_payments_merchant_created
    ON projection_payments (environment, merchant_id, created_at, payment_id);
CREATE INDEX projection_payments_order ON projection_payments (environment, order_id);

CREATE TABLE projection_captures (
    payment_id uuid NOT NULL,
    capture_id text NOT NULL,
    environment text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    amount numeric NOT NULL,
    final_capture boolean NOT NULL,
    captured_at timestamptz NOT NULL,
    settled_batch_id uuid,
    settled_at timestamptz,
    PRIMARY KEY (payment_id, capture_id)
);
-- Captures still waiting for settlement, oldest first (settlement exceptions).
CREATE INDEX projection_captures_unsettled
    ON projection_captures (captured_at) WHERE settled_batch_id IS NULL;

CREATE TABLE projection_refunds (
    payment_id uuid NOT NULL,
    refund_id text NOT NULL,
    currency text NOT NULL,
    amount numeric NOT NULL,
    status text NOT NULL,
    reason text,
    failure_reason text,
    requested_at timestamptz NOT NULL,
    resolved_at timestamptz,
    settled_batch_id uuid,
    settled_at timestamptz,
    PRIMARY KEY (payment_id, refund_id)
);

-- orders: the payment status of an order, derived from all of its payments.
CREATE TABLE projection_order_payments (
    payment_id uuid PRIMARY KEY,
    environment text NOT NULL,
    merchant_id text NOT NULL,
    order_id text NOT NULL,
    payment_status text NOT NULL,
    -- Open or lost disputes withhold money from the merchant.
    has_disputed_funds boolean NOT NULL
);
CREATE INDEX projection_order_payments_order
    ON projection_order_payments (environment, merchant_id, order_id);

CREATE TABLE projection_orders (
    environment text NOT NULL,
    merchant_id text NOT NULL,
    order_id text NOT NULL,
    payment_status text NOT NULL,
    payment_count integer NOT NULL,
    updated_at timestamptz NOT NULL,
    last_position bigint NOT NULL,
    PRIMARY KEY (environment, merchant_id, order_id)
);
CREATE INDEX projection_orders_order ON projection_orders (environment, order_id);

-- disputes: one row per dispute (also the payment's dispute list).
CREATE TABLE projection_disputes (
    payment_id uuid NOT NULL,
    dispute_id text NOT NULL,
    environment text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    amount numeric NOT NULL,
    fee numeric NOT NULL,
    reason text NOT NULL,
    status text NOT NULL,
    -- WON or LOST once resolved.
    outcome text,
    evidence_due_by timestamptz,
    evidence_count integer NOT NULL,
    opened_at timestamptz NOT NULL,
    resolved_at timestamptz,
    settled_batch_id uuid,
    settled_at timestamptz,
    PRIMARY KEY (payment_id, dispute_id)
);
CREATE INDEX projection_disputes_status_due
    ON projection_disputes (environment, status, evidence_due_by);
CREATE INDEX projection_disputes_merchant
    ON projection_disputes (environment, merchant_id, opened_at);

-- settlement: batches, their items and payouts.
CREATE TABLE projection_settlement_batches (
    batch_id uuid PRIMARY KEY,
    environment text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    gross numeric NOT NULL,
    fees numeric NOT NULL,
    reserve numeric NOT NULL,
    net numeric NOT NULL,
    item_count integer NOT NULL,
    -- The status of the latest payout attempt, if any.
    payout_status text,
    recorded_at timestamptz NOT NULL,
    version bigint NOT NULL,
    last_position bigint NOT NULL
);
CREATE INDEX projection_settlement_batches_merchant
    ON projection_settlement_batches (environment, merchant_id, recorded_at);

CREATE TABLE projection_settlement_items (
    batch_id uuid NOT NULL,
    line_number integer NOT NULL,
    payment_id uuid NOT NULL,
    kind text NOT NULL,
    item_id text NOT NULL,
    currency text NOT NULL,
    gross numeric NOT NULL,
    fee numeric NOT NULL,
    PRIMARY KEY (batch_id, line_number)
);

CREATE TABLE projection_payouts (
    batch_id uuid NOT NULL,
    payout_id text NOT NULL,
    environment text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    amount numeric NOT NULL,
    status text NOT NULL,
    expected_arrival_date date,
    failure_reason text,
    initiated_at timestamptz NOT NULL,
    paid_at timestamptz,
    failed_at timestamptz,
    PRIMARY KEY (batch_id, payout_id)
);

-- journal: one entry per money-moving event, its postings, and running balances.
CREATE TABLE projection_journal_entries (
    position bigint PRIMARY KEY,
    event_id uuid NOT NULL,
    stream_id uuid NOT NULL,
    event_type text NOT NULL,
    environment text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL
);

CREATE TABLE projection_postings (
    position bigint NOT NULL,
    line_number integer NOT NULL,
    environment text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    account text NOT NULL,
    side text NOT NULL CHECK (side IN ('debit', 'credit')),
    amount numeric NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (position, line_number)
);
-- Balances as of a past position, per merchant.
CREATE INDEX projection_postings_merchant
    ON projection_postings (environment, merchant_id, position);

CREATE TABLE projection_balances (
    environment text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    account text NOT NULL,
    -- Debit balances are positive.
    balance numeric NOT NULL,
    last_position bigint NOT NULL,
    PRIMARY KEY (environment, merchant_id, currency, account)
);

-- metrics: per merchant, currency and day (UTC, of the event's occurred_at).
CREATE TABLE projection_merchant_daily_metrics (
    environment text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    day date NOT NULL,
    payments_initiated bigint NOT NULL,
    authorizations_approved bigint NOT NULL,
    authorizations_declined bigint NOT NULL,
    captures bigint NOT NULL,
    captured_amount numeric NOT NULL,
    refunds_succeeded bigint NOT NULL,
    refunded_amount numeric NOT NULL,
    disputes_opened bigint NOT NULL,
    disputed_amount numeric NOT NULL,
    settled_captures bigint NOT NULL,
    -- Sum over settled captures of (settled occurred_at − captured occurred_at).
    settlement_seconds_total bigint NOT NULL,
    PRIMARY KEY (environment, merchant_id, currency, day)
);

CREATE TABLE projection_merchant_daily_declines (
    environment text NOT NULL,
    merchant_id text NOT NULL,
    day date NOT NULL,
    decline_code text NOT NULL,
    decline_category text NOT NULL,
    declines bigint NOT NULL,
    PRIMARY KEY (environment, merchant_id, day, decline_code)
);

-- When each not yet settled capture happened, for the settlement time metric.
CREATE TABLE projection_metric_capture_times (
    payment_id uuid NOT NULL,
    capture_id text NOT NULL,
    captured_at timestamptz NOT NULL,
    PRIMARY KEY (payment_id, capture_id)
);

-- Creates empty copies of the named projection tables (columns, defaults, checks, indexes)
-- in `target_schema`, which must exist. The live table is the template, so a later
-- migration that changes a live table changes every future rebuild as well.
CREATE FUNCTION projection_clone_tables(target_schema text, table_names text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    table_name text;
BEGIN
    FOREACH table_name IN ARRAY table_names LOOP
        IF table_name NOT LIKE 'projection\_%' THEN
            RAISE EXCEPTION 'not a projection table: %', table_name;
        END IF;
        EXECUTE format('CREATE TABLE %I.%I (LIKE public.%I INCLUDING ALL)',
            target_schema, table_name, table_name);
    END LOOP;
END;
$$;

-- Swaps the named tables of `source_schema` into `public`, moving the live ones to
-- `retired_schema` (which must exist). Run it in one transaction with the checkpoint update:
-- readers see the old tables or the new ones, never a mix.
CREATE FUNCTION projection_swap_tables(source_schema text, retired_schema text,
    table_names text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    table_name text;
BEGIN
    FOREACH table_name IN ARRAY table_names LOOP
        IF table_name NOT LIKE 'projection\_%' THEN
            RAISE EXCEPTION 'not a projection table: %', table_name;
        END IF;
        EXECUTE format('ALTER TABLE public.%I SET SCHEMA %I', table_name, retired_schema);
        EXECUTE format('ALTER TABLE %I.%I SET SCHEMA public', source_schema, table_name);
    END LOOP;
END;
$$;

-- Rows that differ between the same tables of two schemas: each row of one that the other
-- lacks, as JSON, at most `row_limit` per table and side.
CREATE FUNCTION projection_compare_tables(left_schema text, right_schema text,
    table_names text[], row_limit integer)
RETURNS TABLE (table_name text, only_in text, row_data jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY table_names LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, %L::text, to_jsonb(d) FROM '
            || '(SELECT * FROM %I.%I EXCEPT SELECT * FROM %I.%I) d LIMIT %s',
            name, left_schema, left_schema, name, right_schema, name, row_limit);
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, %L::text, to_jsonb(d) FROM '
            || '(SELECT * FROM %I.%I EXCEPT SELECT * FROM %I.%I) d LIMIT %s',
            name, right_schema, right_schema, name, left_schema, name, row_limit);
    END LOOP;
END;
$$;
