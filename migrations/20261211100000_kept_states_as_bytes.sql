-- A kept state is now ledger-core's `kept_form` (MessagePack of the state's serde form, fields in
-- their declared order) instead of its JSON text: about a third of the bytes (ledger-core's
-- `kept_form_bench`), so that the rows every `payment(id)` reads take less than half the pages
-- at ten million events (docs/scaling.md).
-- Every state's `Aggregate::STATE_FORMAT` went from 1 to 2 with it.
--
-- The JSON states are dropped, not converted: they are a cache of the log, each stream is read
-- from its events until its next append keeps its new form, and dropping a column rewrites
-- nothing (converting 2.2 GiB of rows here would have locked the table for as long as it took).
-- The rows keep their old `state_format` beside no state; a row is only read back when it has a
-- state, of the format the reader expects. The dropped column's bytes stay in each row until it
-- is next updated or the table is rewritten (VACUUM FULL).
--
-- The constraint is added `NOT VALID`: it holds every row written from now on, and every row
-- already there has no state in the new column, so checking them would only have scanned the
-- whole table under this statement's exclusive lock.
ALTER TABLE streams
    DROP CONSTRAINT streams_kept_state_is_whole,
    DROP COLUMN state,
    ADD COLUMN state bytea,
    ADD CONSTRAINT streams_kept_state_is_whole CHECK (
        state IS NULL
        OR (state_format IS NOT NULL AND first_occurred_at IS NOT NULL
            AND last_occurred_at IS NOT NULL AND last_position IS NOT NULL)
    ) NOT VALID;
