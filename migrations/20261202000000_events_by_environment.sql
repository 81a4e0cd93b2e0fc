-- The global log of one environment, page by page (`events` without a stream id): without this
-- index a page of a rare environment scans every event of the other one in between.
CREATE INDEX events_environment_position ON events ((metadata->>'environment'), position);
