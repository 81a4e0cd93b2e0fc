-- Reconciliation runs are streams of their own in the log.
ALTER TABLE streams DROP CONSTRAINT streams_stream_type_check;
ALTER TABLE streams ADD CONSTRAINT streams_stream_type_check
    CHECK (stream_type IN ('payment', 'settlement_batch', 'reconciliation_run'));
ALTER TABLE events DROP CONSTRAINT events_stream_type_check;
ALTER TABLE events ADD CONSTRAINT events_stream_type_check
    CHECK (stream_type IN ('payment', 'settlement_batch', 'reconciliation_run'));

-- The readable lines of a report while its run is being worked out: the importer streams the
-- file into this table so that memory stays flat however long the file is, then walks it
-- payout by payout. Not a record of anything (the run's events are): rows are deleted when
-- the run completes, and a resumed import of the same file writes them again.
CREATE TABLE reconciliation_report_lines (
    run_id uuid NOT NULL,
    line_number bigint NOT NULL CHECK (line_number >= 2),
    payout_id text NOT NULL CHECK (payout_id <> ''),
    balance_transaction_id text,
    reporting_category text NOT NULL,
    currency text NOT NULL,
    gross numeric NOT NULL,
    fee numeric NOT NULL,
    net numeric NOT NULL,
    payment_intent_id text,
    charge_id text,
    refund_id text,
    dispute_id text,
    -- `payment_metadata[ledger_payment_id]` when the report carries that column.
    ledger_payment_id uuid,
    available_on timestamptz,
    PRIMARY KEY (run_id, line_number)
);
CREATE INDEX reconciliation_report_lines_payout
    ON reconciliation_report_lines (run_id, payout_id, line_number);
