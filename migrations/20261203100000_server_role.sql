-- The role `ledger serve` works as: it reads and appends events, keeps the read models and the
-- webhook tables, and reads API keys; it owns nothing, so it can change no table, trigger,
-- function or role, and it cannot rewrite or truncate the log. Migrations (and `ledger keys`,
-- `replay`, `reconcile` on the command line) run as the owner of these tables.
--
-- The role is NOLOGIN: a migration cannot know a password. The embedded cluster lets it log in
-- on its private socket; with a server of your own, give it a login (or a member role) and
-- pass that as LEDGER_SERVER_DATABASE_URL, or let the ledger `SET ROLE ledger_server` on its
-- owner's connections (README, "Database roles").

-- Roles belong to the cluster, not to a database: the role may exist already (another database
-- of the cluster, or a DBA who made it beforehand), and two databases migrating at once race to
-- create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger_server') THEN
        BEGIN
            CREATE ROLE ledger_server NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
                NOREPLICATION NOBYPASSRLS;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'the role ledger_server does not exist and % may not create it',
                    current_user
                    USING HINT = 'as a superuser: CREATE ROLE ledger_server NOLOGIN; then migrate again';
        END;
    END IF;
    -- The owner may act as the role (SET ROLE) when the server has no login of its own.
    IF NOT pg_has_role(current_user, 'ledger_server', 'MEMBER') THEN
        EXECUTE format('GRANT ledger_server TO %I', current_user);
    END IF;
END;
$$;

-- Nobody but the owner creates objects in the ledger's schema (PostgreSQL 15's default; older
-- databases granted it to everyone). Refused silently (a warning) when we do not own it.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ledger_server;

-- The log: read and append, nothing else (the append-only trigger refuses the rest even to the
-- owner; without UPDATE, DELETE and TRUNCATE the server cannot even try).
GRANT SELECT, INSERT ON events TO ledger_server;
GRANT SELECT, INSERT, UPDATE ON streams TO ledger_server;
GRANT SELECT, UPDATE ON log_head TO ledger_server;
GRANT SELECT, INSERT ON idempotency_keys TO ledger_server;

-- Keys are made and revoked by `ledger keys`, as the owner; the server only checks them.
GRANT SELECT ON api_keys TO ledger_server;

-- Read by the start-up check that the database is migrated as far as the binary expects.
GRANT SELECT ON _sqlx_migrations TO ledger_server;

-- Read models and webhook bookkeeping: the server's projector and webhook handler keep them.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    projection_balances, projection_captures, projection_checkpoints, projection_disputes,
    projection_journal_entries, projection_merchant_daily_declines,
    projection_merchant_daily_metrics, projection_metric_capture_times,
    projection_order_payments, projection_orders, projection_payments, projection_payouts,
    projection_postings, projection_reconciliation_exceptions,
    projection_reconciliation_payouts, projection_reconciliation_runs, projection_refunds,
    projection_settlement_batches, projection_settlement_items,
    reconciliation_report_lines,
    webhook_deliveries, webhook_parked, webhook_payment_links
TO ledger_server;

-- A rebuild (`ledger replay`) swaps freshly built tables in for the live ones; grants do not
-- travel with `CREATE TABLE … LIKE`, so the swap gives each new live table the grants of the
-- one it replaces, and a running server keeps its access.
CREATE OR REPLACE FUNCTION projection_swap_tables(source_schema text, retired_schema text,
    table_names text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    table_name text;
    privilege text;
BEGIN
    FOREACH table_name IN ARRAY table_names LOOP
        IF table_name NOT LIKE 'projection\_%' THEN
            RAISE EXCEPTION 'not a projection table: %', table_name;
        END IF;
        EXECUTE format('ALTER TABLE public.%I SET SCHEMA %I', table_name, retired_schema);
        EXECUTE format('ALTER TABLE %I.%I SET SCHEMA public', source_schema, table_name);
        FOR privilege IN
            SELECT acl.privilege_type
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL aclexplode(c.relacl) acl
            WHERE n.nspname = retired_schema AND c.relname = table_name
              AND acl.grantee = 'ledger_server'::regrole
        LOOP
            EXECUTE format('GRANT %s ON public.%I TO ledger_server', privilege, table_name);
        END LOOP;
    END LOOP;
END;
$$;
