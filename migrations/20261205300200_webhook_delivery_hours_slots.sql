-- The hourly rollup of webhook deliveries had one row per environment and hour, and every
-- statement that records a delivery adds to it under its row lock, held to the commit: all
-- deliveries of an hour took turns on that one row. Under a burst (a sandbox benchmark: three
-- events per checkout) the trigger's statement waited on that lock for most of each delivery's
-- time, and deliveries could not go faster than one commit after another.
--
-- Now each hour has up to 16 rows, one per `slot`: a statement adds to the slot of its
-- connection (the server process id modulo 16), so concurrent writers of one hour mostly touch
-- different rows, and readers sum the slots. The sums are additive as before. A maximum cannot
-- be taken back by a delta, and recounting it would lock other writers' slots: where a
-- removed version of a delivery may have held the hour's maximum and no added one reaches it,
-- the slot is marked `max_recount`, and readers take that hour's maximum from the raw rows
-- (the hour's rows, through `webhook_deliveries_received`). Only a delivery whose processing
-- time shrank or that was deleted marks an hour, so reads stay on the rollup.
ALTER TABLE webhook_delivery_hours
    ADD COLUMN slot smallint NOT NULL DEFAULT 0 CHECK (slot BETWEEN 0 AND 15),
    ADD COLUMN max_recount boolean NOT NULL DEFAULT false;
ALTER TABLE webhook_delivery_hours DROP CONSTRAINT webhook_delivery_hours_pkey;
ALTER TABLE webhook_delivery_hours ADD PRIMARY KEY (environment, hour, slot);

CREATE OR REPLACE FUNCTION webhook_delivery_hours_apply(added webhook_deliveries[],
    removed webhook_deliveries[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    writer_slot smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
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
           coalesce(p.removed_max >= (SELECT max(x.processing_seconds_max)
                                      FROM webhook_delivery_hours x
                                      WHERE x.environment = p.environment AND x.hour = p.hour)
                    AND (p.added_max IS NULL OR p.removed_max > p.added_max), false)
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
