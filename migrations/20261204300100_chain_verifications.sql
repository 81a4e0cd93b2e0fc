-- Every `ledger verify` run, as the operator ran it (the owner writes it): the console's audit
-- page shows the last one. A record of a check, not part of the log: the log itself is never
-- written by a verification. The server only reads it.
CREATE TABLE chain_verifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    verified_at timestamptz NOT NULL DEFAULT now(),
    -- The last position the hash chain was checked to and found intact.
    through_position bigint NOT NULL CHECK (through_position >= 0),
    events_checked bigint NOT NULL CHECK (events_checked >= 0),
    discrepancies bigint NOT NULL CHECK (discrepancies >= 0),
    -- The first discrepancy in words, when there was one.
    first_discrepancy text CHECK (length(first_discrepancy) <= 2000),
    -- `--expect-head`, when the auditor gave one.
    expected_head text CHECK (length(expected_head) <= 200)
);

GRANT SELECT ON chain_verifications TO ledger_server;
