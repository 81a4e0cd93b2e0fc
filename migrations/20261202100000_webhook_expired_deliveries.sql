-- A parked Stripe event that waited longer than its age limit (72 hours, `ledger-stripe`'s
-- `gateway::parked`) is given up on: its parked row goes and its delivery row says `expired`,
-- so support sees it and no later retry applies it.
ALTER TABLE webhook_deliveries
    DROP CONSTRAINT webhook_deliveries_outcome_check,
    ADD CONSTRAINT webhook_deliveries_outcome_check
        CHECK (outcome IN ('applied', 'duplicate', 'ignored', 'parked', 'conflict', 'rejected',
                           'expired'));
