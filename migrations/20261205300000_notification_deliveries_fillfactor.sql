-- A delivery's row is written three times: inserted, leased when a sender takes it, and
-- updated with its outcome. The lease changes no indexed column, so PostgreSQL can keep it a
-- heap-only tuple (no new entry in any of the table's indexes) when the row's page has room
-- for the new version. At the default fill factor the inserts pack every page full, so each
-- lease wrote a new entry into all five indexes. Pages written from now on keep 30% free.
ALTER TABLE notification_deliveries SET (fillfactor = 70);
