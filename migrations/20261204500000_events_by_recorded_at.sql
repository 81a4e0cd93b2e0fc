-- "As of a time" (balances, payments, the console's balances as of a day) starts from the last
-- position recorded by then. Without an index that was a scan of the whole log (0.4 s at a
-- million events). The store takes `recorded_at` after it holds the log head's lock, so it
-- never decreases along positions; the newest entry at or before a time is the last position
-- recorded by then, one descent of this index.
CREATE INDEX events_recorded_at_position ON events (recorded_at, position);
