-- Webhook deliveries counted per environment and hour of first receipt, for the console's
-- webhook health page (ledger-stripe `webhooks::health`), so that the page reads at most a few
-- thousand small rows instead of every delivery of the last days.
--
-- Kept by triggers on `webhook_deliveries` in the statement that writes the deliveries, so it
-- cannot drift from them whichever statement (or person) writes: each statement subtracts the
-- old version of the rows it changed and adds their new version (a parked delivery that is
-- applied later moves from `parked` to `succeeded`), as additive upserts, so concurrent
-- writers of one hour simply add up under the row lock.
CREATE TABLE webhook_delivery_hours (
    environment text NOT NULL CHECK (environment IN ('test', 'live')),
    -- date_bin(1 hour, received_at, 2000-01-01 UTC): the start of a UTC hour.
    hour timestamptz NOT NULL,
    events bigint NOT NULL,
    -- Outcome applied, duplicate or ignored.
    succeeded bigint NOT NULL,
    duplicates bigint NOT NULL,
    -- sum(delivery_count - 1)
    redeliveries bigint NOT NULL,
    parked bigint NOT NULL,
    -- Outcome conflict, rejected or expired.
    failed bigint NOT NULL,
    -- extract(epoch FROM processed_at - received_at) summed and at most: numeric like the
    -- page's own avg and max of raw rows, so the mean and maximum come out exactly the same.
    -- Every delivery has a processed_at, so the mean's count is `events`.
    processing_seconds_sum numeric NOT NULL,
    -- NULL once the hour holds no deliveries.
    processing_seconds_max numeric,
    PRIMARY KEY (environment, hour)
);

-- The page reads the partial first and last hours of its window from the raw rows, and an
-- hour's maximum is recounted from them when the delivery that held it shrank.
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (environment, received_at);

-- Applies one statement's changes of `webhook_deliveries` (its transition tables, passed as
-- arrays since each trigger names its own) to the hours.
CREATE FUNCTION webhook_delivery_hours_apply(added webhook_deliveries[],
    removed webhook_deliveries[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    stale_environments text[];
    stale_hours timestamptz[];
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
    ), upserted AS (
        INSERT INTO webhook_delivery_hours AS h (environment, hour, events, succeeded,
            duplicates, redeliveries, parked, failed, processing_seconds_sum,
            processing_seconds_max)
        SELECT environment, hour, events, succeeded, duplicates, redeliveries, parked, failed,
               seconds, added_max
        FROM per_hour
        -- One order of row locks for every writer: no deadlock between multi-hour statements.
        ORDER BY environment, hour
        ON CONFLICT (environment, hour) DO UPDATE SET
            events = h.events + EXCLUDED.events,
            succeeded = h.succeeded + EXCLUDED.succeeded,
            duplicates = h.duplicates + EXCLUDED.duplicates,
            redeliveries = h.redeliveries + EXCLUDED.redeliveries,
            parked = h.parked + EXCLUDED.parked,
            failed = h.failed + EXCLUDED.failed,
            processing_seconds_sum = h.processing_seconds_sum + EXCLUDED.processing_seconds_sum,
            processing_seconds_max = GREATEST(h.processing_seconds_max,
                                              EXCLUDED.processing_seconds_max)
        RETURNING h.environment, h.hour, h.processing_seconds_max
    )
    -- A maximum cannot be taken back by a delta: where a removed version may have held the
    -- hour's maximum and no added one in the hour reaches it, the maximum is recounted.
    SELECT array_agg(upserted.environment), array_agg(upserted.hour)
    INTO stale_environments, stale_hours
    FROM upserted JOIN per_hour USING (environment, hour)
    WHERE per_hour.removed_max >= upserted.processing_seconds_max
      AND (per_hour.added_max IS NULL OR per_hour.removed_max > per_hour.added_max);

    -- A statement of its own, after the upsert locked the hours: under READ COMMITTED it sees
    -- every writer of these hours that committed before, and later writers add to its result.
    IF stale_environments IS NOT NULL THEN
        UPDATE webhook_delivery_hours AS h
        SET processing_seconds_max = (
            SELECT max(extract(epoch FROM d.processed_at - d.received_at))
            FROM webhook_deliveries AS d
            WHERE d.environment = h.environment
              AND d.received_at >= h.hour AND d.received_at < h.hour + interval '1 hour')
        FROM unnest(stale_environments, stale_hours) AS stale(environment, hour)
        WHERE h.environment = stale.environment AND h.hour = stale.hour;
    END IF;
END
$$;

CREATE FUNCTION webhook_delivery_hours_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_delivery_hours_apply(
        ARRAY(SELECT ROW(added.*)::webhook_deliveries FROM added_rows AS added), '{}');
    RETURN NULL;
END
$$;

CREATE FUNCTION webhook_delivery_hours_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_delivery_hours_apply(
        ARRAY(SELECT ROW(added.*)::webhook_deliveries FROM added_rows AS added),
        ARRAY(SELECT ROW(removed.*)::webhook_deliveries FROM removed_rows AS removed));
    RETURN NULL;
END
$$;

CREATE FUNCTION webhook_delivery_hours_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_delivery_hours_apply('{}',
        ARRAY(SELECT ROW(removed.*)::webhook_deliveries FROM removed_rows AS removed));
    RETURN NULL;
END
$$;

-- Creating the triggers locks out writers of `webhook_deliveries` until this migration
-- commits, so the backfill below and the triggers see every delivery exactly once.
CREATE TRIGGER webhook_delivery_hours_inserted
    AFTER INSERT ON webhook_deliveries REFERENCING NEW TABLE AS added_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_delivery_hours_inserted();
CREATE TRIGGER webhook_delivery_hours_updated
    AFTER UPDATE ON webhook_deliveries
    REFERENCING OLD TABLE AS removed_rows NEW TABLE AS added_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_delivery_hours_updated();
CREATE TRIGGER webhook_delivery_hours_deleted
    AFTER DELETE ON webhook_deliveries REFERENCING OLD TABLE AS removed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_delivery_hours_deleted();

INSERT INTO webhook_delivery_hours (environment, hour, events, succeeded, duplicates,
    redeliveries, parked, failed, processing_seconds_sum, processing_seconds_max)
SELECT environment,
       date_bin(interval '1 hour', received_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       count(*),
       count(*) FILTER (WHERE outcome IN ('applied', 'duplicate', 'ignored')),
       count(*) FILTER (WHERE outcome = 'duplicate'),
       sum(delivery_count - 1),
       count(*) FILTER (WHERE outcome = 'parked'),
       count(*) FILTER (WHERE outcome IN ('conflict', 'rejected', 'expired')),
       sum(extract(epoch FROM processed_at - received_at)),
       max(extract(epoch FROM processed_at - received_at))
FROM webhook_deliveries
GROUP BY 1, 2;

-- The webhook handler writes deliveries as ledger_server, and the triggers with it.
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_delivery_hours TO ledger_server;
