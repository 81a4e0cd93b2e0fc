-- reconciliation (ledger-projections): the runs of imported payout reports, each payout's
-- verdict, and every exception with its resolution, for finance and auditors.
--
-- Like every projection table these are derived from `events` alone (no column defaults to
-- the clock), so a rebuild or `ledger verify`'s fresh fold yields identical rows, and
-- `projection_clone_tables` copies them with their indexes. Money is NUMERIC beside its
-- currency. Enum values are stored as the events' JSON spells them (`missing_from_ledger`,
-- `proven`), the run status as `RUNNING` / `COMPLETED`.

CREATE TABLE projection_reconciliation_runs (
    run_id uuid PRIMARY KEY,
    environment text NOT NULL,
    source text NOT NULL,
    file_name text,
    file_sha256 text NOT NULL,
    started_by text NOT NULL,
    started_at timestamptz NOT NULL,
    availability_days integer NOT NULL,
    status text NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED')),
    completed_at timestamptz,
    -- Report lines read and matched: known once the run completes.
    lines bigint,
    matched_lines bigint,
    -- The rest is kept current while the run records findings and finance resolves them.
    exceptions bigint NOT NULL,
    unresolved_exceptions bigint NOT NULL,
    payouts_proven bigint NOT NULL,
    payouts_unproven bigint NOT NULL,
    batches_recorded bigint NOT NULL,
    version bigint NOT NULL,
    last_position bigint NOT NULL
);
-- Newest first, per environment, optionally by status (keyset on started_at, run_id).
CREATE INDEX projection_reconciliation_runs_started
    ON projection_reconciliation_runs (environment, started_at, run_id);
CREATE INDEX projection_reconciliation_runs_status_started
    ON projection_reconciliation_runs (environment, status, started_at, run_id);

-- One verdict per payout of a run.
CREATE TABLE projection_reconciliation_payouts (
    run_id uuid NOT NULL,
    payout_id text NOT NULL,
    environment text NOT NULL,
    batch_id uuid NOT NULL,
    currency text NOT NULL,
    line_count bigint NOT NULL,
    exception_count bigint NOT NULL,
    gross numeric NOT NULL,
    fees numeric NOT NULL,
    net numeric NOT NULL,
    -- The payout amount the ledger knew before the run, if any.
    ledger_amount numeric,
    outcome text NOT NULL,
    batch_recorded boolean NOT NULL,
    -- recorded_at and position of the PayoutReconciled event: the latest verdict on a payout
    -- or batch is the one of highest position.
    reconciled_at timestamptz NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (run_id, payout_id)
);
CREATE INDEX projection_reconciliation_payouts_payout
    ON projection_reconciliation_payouts (environment, payout_id, position);
CREATE INDEX projection_reconciliation_payouts_batch
    ON projection_reconciliation_payouts (environment, batch_id, position);

-- Every exception a run found: the report's side as the file wrote it (text, since it may not
-- even parse), the ledger's side, and who resolved it, when and why.
CREATE TABLE projection_reconciliation_exceptions (
    exception_id uuid PRIMARY KEY,
    run_id uuid NOT NULL,
    environment text NOT NULL,
    class text NOT NULL,
    detail text NOT NULL,
    line_number bigint,
    payout_id text,
    payment_id uuid,
    -- CAPTURE, REFUND or DISPUTE, and the capture, refund or dispute id.
    item_kind text,
    item_id text,
    report_balance_transaction_id text,
    report_reporting_category text,
    report_currency text,
    report_gross text,
    report_fee text,
    report_net text,
    report_available_on text,
    ledger_currency text,
    ledger_amount numeric,
    ledger_fee numeric,
    ledger_batch_id uuid,
    ledger_recorded_at timestamptz,
    -- The recorded_at and position of the event that found it, and its place in that event:
    -- (found_position, ordinal) orders the exceptions as the run found them.
    found_at timestamptz NOT NULL,
    found_position bigint NOT NULL,
    ordinal integer NOT NULL,
    resolved_at timestamptz,
    resolved_by text,
    resolution_reason text
);
CREATE INDEX projection_reconciliation_exceptions_found
    ON projection_reconciliation_exceptions (environment, found_position, ordinal);
CREATE INDEX projection_reconciliation_exceptions_run
    ON projection_reconciliation_exceptions (run_id, found_position, ordinal);
CREATE INDEX projection_reconciliation_exceptions_class
    ON projection_reconciliation_exceptions (environment, class, found_position, ordinal);
CREATE INDEX projection_reconciliation_exceptions_unresolved
    ON projection_reconciliation_exceptions (environment, found_position, ordinal)
    WHERE resolved_at IS NULL;
CREATE INDEX projection_reconciliation_exceptions_payout
    ON projection_reconciliation_exceptions (environment, payout_id, found_position, ordinal);
CREATE INDEX projection_reconciliation_exceptions_payment
    ON projection_reconciliation_exceptions (environment, payment_id, found_position, ordinal);
