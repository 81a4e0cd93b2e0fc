-- Each stream's latest fold, kept in its `streams` row and written by the same statement that
-- appends its events (ledger-store's `batch_write`), so that reading one payment is one row
-- instead of its every event: at ten million events those events sit in pages all over a
-- table that no longer fits in memory (docs/scaling.md).
--
-- The row is a cache of the log, never a source of truth: `state` is the JSON text of
-- ledger-core's serde form of the stream's state at `version`, in the form `state_format` names
-- (`Aggregate::STATE_FORMAT`); a row without one, or of another format, is read by folding
-- the stream's events, and its next append writes it. `ledger verify` compares every kept
-- state with the fold of the log at its version, so a changed row is found as a changed read
-- model is. `last_position` and `last_occurred_at` are the stream's last event's, and
-- `first_occurred_at` its first event's: what a read answers besides the state.
--
-- `text`, not `jsonb`: only the ledger reads it back, whole, and parsing it into `jsonb` on
-- every append cost 11 µs a row here against 1.5 µs for the text (`state::jsonb` still reads
-- it in SQL).
--
-- Adding nullable columns without a default rewrites nothing: existing streams get their
-- state with their next append, and are read from their events until then.
ALTER TABLE streams
    ADD COLUMN state_format integer,
    ADD COLUMN state text,
    ADD COLUMN first_occurred_at timestamptz,
    ADD COLUMN last_occurred_at timestamptz,
    ADD COLUMN last_position bigint,
    ADD CONSTRAINT streams_kept_state_is_whole CHECK (
        state IS NULL
        OR (state_format IS NOT NULL AND first_occurred_at IS NOT NULL
            AND last_occurred_at IS NOT NULL AND last_position IS NOT NULL)
    );

-- A row grows and is rewritten with each append: room on its page keeps the update on it
-- (a heap-only update, no index entry), as the notifications' deliveries do.
ALTER TABLE streams SET (fillfactor = 70);
