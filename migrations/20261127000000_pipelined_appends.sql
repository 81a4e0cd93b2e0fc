-- A batch of appends is planned on the state the batches before it leave, often before they
-- commit, and the statement that writes it checks that state in the database (see
-- ledger-store's `batch_write` module). The statement inserts first and takes the head's lock
-- last, so a batch's inserts run while the batch before it is still committing; the lock,
-- held until the commit, still orders the commits, and so what readers see, by position.
--
-- This function is that last step. It raises, rolling the batch back, unless the batch's
-- streams were all at the versions it was planned on and the head is the one it chains onto,
-- and then moves the head. The SQLSTATEs tell the writer what happened:
--   LP001  the head is short of the batch's: the batch before it has not taken the lock yet
--          (its statement runs on another connection) or failed. Sent again once that batch
--          is written;
--   LP002  the head is elsewhere: another writer moved it;
--   LP003  a stream was not at the version the batch was planned on.
CREATE FUNCTION log_advance_head(
    expected_position bigint,
    expected_hash bytea,
    new_position bigint,
    new_hash bytea,
    streams_written bigint,
    streams_planned integer,
    -- The batch's other inserted rows: taking them as an argument makes the statement run
    -- its inserts before it calls this function, so before the lock is taken.
    other_rows_inserted bigint
) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    locked_position bigint;
    locked_hash bytea;
BEGIN
    IF streams_written <> streams_planned THEN
        RAISE EXCEPTION '% of % streams were at the versions this batch was planned on',
            streams_written, streams_planned
            USING ERRCODE = 'LP003';
    END IF;
    -- Unless the head is already where this batch follows, the batch before it is still
    -- running, and holds this advisory lock from the start of its statement to its commit (see
    -- `log_announce_batch`): waiting for it here, rather than at the head's lock, keeps a batch
    -- whose inserts finished first from taking the head before it. (A batch holding the head's
    -- lock since before it read the head, `fresh_batch` in ledger-store, never waits here.)
    SELECT last_position INTO locked_position FROM log_head WHERE id = 1;
    IF locked_position <> expected_position THEN
        PERFORM pg_advisory_xact_lock_shared(-1 - expected_position);
    END IF;
    -- A statement of its own: in READ COMMITTED it waits for a batch still committing and
    -- then sees that batch's head, not the one of the calling statement's older snapshot.
    SELECT last_position, last_hash INTO locked_position, locked_hash
    FROM log_head WHERE id = 1 FOR UPDATE;
    IF locked_position < expected_position THEN
        RAISE EXCEPTION 'the log head is at %, short of %', locked_position, expected_position
            USING ERRCODE = 'LP001';
    END IF;
    IF locked_position <> expected_position OR locked_hash <> expected_hash THEN
        RAISE EXCEPTION 'the log head is at %, not at % with the hash planned on',
            locked_position, expected_position
            USING ERRCODE = 'LP002';
    END IF;
    UPDATE log_head SET last_position = new_position, last_hash = new_hash WHERE id = 1;
    RETURN true;
END;
$$;

-- Taken by a batch's statement before its first insert, for the position the batch ends at:
-- the batch that follows waits for it in `log_advance_head`. Advisory keys below zero are the
-- log's (-1 - position), apart from any other use of advisory locks.
CREATE FUNCTION log_announce_batch(end_position bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(-1 - end_position);
    RETURN true;
END;
$$;
