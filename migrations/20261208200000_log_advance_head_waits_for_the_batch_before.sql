-- A pipelined batch reaches `log_advance_head` with the head short of it when the batch before
-- it has not yet taken its announcement lock: its statement, sent on another connection, has
-- not started. On saturated cores that was a third of the pipelined batches of the sandbox's
-- confirmations benchmark: each rolled back the rows it had inserted (dead rows in `events`)
-- and was sent again. Now such a batch looks for the batch before it for a few milliseconds,
-- without holding its lock (which would keep that batch from announcing itself): once that
-- batch has announced itself, it waits for its commit as before; if it never comes, the batch
-- is refused with LP001 as before. The rest of the function is unchanged from
-- `20261127000000_pipelined_appends.sql`; `CREATE OR REPLACE` needs all of it.
CREATE OR REPLACE FUNCTION log_advance_head(
    expected_position bigint,
    expected_hash bytea,
    new_position bigint,
    new_hash bytea,
    streams_written bigint,
    streams_planned integer,
    other_rows_inserted bigint
) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    locked_position bigint;
    locked_hash bytea;
    announced_key bigint := -1 - expected_position;
    announced_database oid := (SELECT oid FROM pg_database WHERE datname = current_database());
BEGIN
    IF streams_written <> streams_planned THEN
        RAISE EXCEPTION '% of % streams were at the versions this batch was planned on',
            streams_written, streams_planned
            USING ERRCODE = 'LP003';
    END IF;
    -- Up to 80 looks, 0.25 ms apart (20 ms or more, with the timer's slack). Each reads the head
    -- afresh (a statement of its own in READ COMMITTED) and looks in `pg_locks` for the batch
    -- before holding its announcement lock, taking no lock itself: a lock taken here, even
    -- for a moment, could keep that batch from announcing itself.
    FOR attempt IN 1..80 LOOP
        SELECT last_position INTO locked_position FROM log_head WHERE id = 1;
        EXIT WHEN locked_position >= expected_position;
        IF EXISTS (
            SELECT 1 FROM pg_locks
            WHERE locktype = 'advisory' AND database = announced_database AND objsubid = 1
              AND classid = ((announced_key >> 32) & 4294967295)::oid
              AND objid = (announced_key & 4294967295)::oid
        ) THEN
            -- The batch before is running: wait for it to commit or roll back.
            PERFORM pg_advisory_xact_lock_shared(announced_key);
            EXIT;
        END IF;
        PERFORM pg_sleep(0.00025);
    END LOOP;
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
