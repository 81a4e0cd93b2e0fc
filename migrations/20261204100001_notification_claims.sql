-- The sender's claim walks pending deliveries by due time and stops after a batch, instead of
-- ordering every pending delivery per (endpoint, subject) at each claim: this index gives the
-- due order; `notification_deliveries_pending` answers "is there an earlier pending one of the
-- same endpoint and subject?" per candidate. Delivered and failed rows are not in it.
CREATE INDEX notification_deliveries_due
    ON notification_deliveries (next_attempt_at)
    WHERE status = 'pending';
