-- The hourly rollup's function runs one statement per delivery statement (from the statement
-- triggers of `webhook_deliveries`), with the changed rows as array parameters. PL/pgSQL
-- planned it afresh on every call (a custom plan sized by the arrays in hand), and under a
-- burst of webhooks that planning was a tenth of the database's CPU: more than running the
-- statement. Its plan is the same whatever the arrays hold (an aggregate of the arrays and one
-- primary-key upsert per hour), so the generic plan is kept.
--
-- A custom plan of an insert (nothing removed) folded the maximum's re-check away; a generic
-- plan cannot, and read every slot of the hour, through every version of those often-updated
-- rows, on each call. The re-check is now behind a CASE, evaluated only when a removed
-- version may have held the maximum.
--
-- An upsert fires both the insert and the update trigger, one of them with no rows; the
-- function now returns at once when it has nothing to add or remove. The rest of the body is
-- unchanged (`CREATE OR REPLACE` needs all of it).
CREATE OR REPLACE FUNCTION webhook_delivery_hours_apply(added webhook_deliveries[],
    removed webhook_deliveries[])
RETURNS void
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    writer_slot smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
    -- An upsert fires both statement triggers, one of them with no rows.
    IF cardinality(added) = 0 AND cardinality(removed) = 0 THEN
        RETURN;
    END IF;
    WITH changes AS (
        SELECT environment, received_at, outcome, delivery_count,
               extract(epoch FROM processed_at - received_at) AS seconds, 1 AS sign
        FROM unnest(added)
        UNION ALL
        SELECT environment, received_at, outcome, delivery_count,
               extract(epoch FROM processed_at - received_at), -1
        FROM unnest(removed)
    ), per_hour AS (
        SELECT environment,
               date_bin(interval '1 hour', received_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
                   AS hour,
               sum(sign) AS events,
               coalesce(sum(sign) FILTER (WHERE outcome IN ('applied', 'duplicate', 'ignored')), 0)
                   AS succeeded,
               coalesce(sum(sign) FILTER (WHERE outcome = 'duplicate'), 0) AS duplicates,
               sum(sign * (delivery_count - 1)) AS redeliveries,
               coalesce(sum(sign) FILTER (WHERE outcome = 'parked'), 0) AS parked,
               coalesce(sum(sign) FILTER (WHERE outcome IN ('conflict', 'rejected', 'expired')), 0)
                   AS failed,
               sum(sign * seconds) AS seconds,
               max(seconds) FILTER (WHERE sign = 1) AS added_max,
               max(seconds) FILTER (WHERE sign = -1) AS removed_max
        FROM changes
        GROUP BY 1, 2
    )
    INSERT INTO webhook_delivery_hours AS h (environment, hour, slot, events, succeeded,
        duplicates, redeliveries, parked, failed, processing_seconds_sum,
        processing_seconds_max, max_recount)
    SELECT p.environment, p.hour, writer_slot, p.events, p.succeeded, p.duplicates,
           p.redeliveries, p.parked, p.failed, p.seconds, p.added_max,
           -- The removed version may have held the hour's maximum (in any slot, as this
           -- statement's snapshot has them) and nothing added replaces it.
           -- A CASE, so that the hour's slots are read only when something was removed: a
           -- generic plan cannot fold the comparison away for inserts as a custom plan did.
           CASE WHEN p.removed_max IS NOT NULL
                     AND (p.added_max IS NULL OR p.removed_max > p.added_max)
                THEN coalesce(p.removed_max >= (SELECT max(x.processing_seconds_max)
                                                FROM webhook_delivery_hours x
                                                WHERE x.environment = p.environment
                                                  AND x.hour = p.hour), false)
                ELSE false END
    FROM per_hour p
    -- One order of row locks for every writer: no deadlock between multi-hour statements.
    ORDER BY p.environment, p.hour
    ON CONFLICT (environment, hour, slot) DO UPDATE SET
        events = h.events + EXCLUDED.events,
        succeeded = h.succeeded + EXCLUDED.succeeded,
        duplicates = h.duplicates + EXCLUDED.duplicates,
        redeliveries = h.redeliveries + EXCLUDED.redeliveries,
        parked = h.parked + EXCLUDED.parked,
        failed = h.failed + EXCLUDED.failed,
        processing_seconds_sum = h.processing_seconds_sum + EXCLUDED.processing_seconds_sum,
        processing_seconds_max = GREATEST(h.processing_seconds_max,
                                          EXCLUDED.processing_seconds_max),
        max_recount = h.max_recount OR EXCLUDED.max_recount;
END
$$;
