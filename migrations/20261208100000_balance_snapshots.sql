-- Balances as of a past position summed every posting of the merchant up to it, so their cost
-- grew with the log (the scale benchmark: p99 30 ms at a million events, 213 ms at ten
-- million). The journal now keeps each account's balance after every 256th of its posting
-- lines; a balance as of a position starts from the account's latest snapshot at or before
-- it and adds the at most 255 lines since. 256 is `SNAPSHOT_EVERY` in
-- ledger-projections/src/read_models/journal.rs, which the backfill below must match.

-- How many posting lines each account has had: the projector takes a snapshot when this
-- count reaches a multiple of 256.
ALTER TABLE projection_balances ADD COLUMN postings bigint NOT NULL DEFAULT 0
    CHECK (postings >= 0);

CREATE TABLE projection_balance_snapshots (
    environment text NOT NULL,
    merchant_id text NOT NULL,
    currency text NOT NULL,
    account text NOT NULL,
    -- The position of the account's (256·k)-th posting line.
    position bigint NOT NULL,
    -- The balance after every line of the account up to and including `position`; debit
    -- balances are positive.
    balance numeric NOT NULL,
    PRIMARY KEY (environment, merchant_id, currency, account, position)
);

-- The lines after a snapshot are read per account. The index by merchant and position served
-- only the sum over all of a merchant's postings, which this replaces.
DROP INDEX projection_postings_merchant;
CREATE INDEX projection_postings_account
    ON projection_postings (environment, merchant_id, currency, account, position);

-- Journals projected before this migration get their counts and snapshots as the projector
-- would have written them, so that a fresh build (`ledger verify`'s) agrees with them. Kept
-- as a function so that a test holds it to the projector's rule. A snapshot's balance
-- includes every line at its position (the `RANGE` frame takes the lines of the same
-- position), whichever of them was the (256·k)-th; an account has at most two lines at a
-- position (a debit and a credit), so at most one of them is.
CREATE FUNCTION projection_balance_snapshots_backfill() RETURNS void
LANGUAGE sql AS $$
    UPDATE projection_balances AS balances
    SET postings = counted.lines
    FROM (
        SELECT environment, merchant_id, currency, account, count(*) AS lines
        FROM projection_postings
        GROUP BY environment, merchant_id, currency, account
    ) AS counted
    WHERE (balances.environment, balances.merchant_id, balances.currency, balances.account)
        = (counted.environment, counted.merchant_id, counted.currency, counted.account);

    INSERT INTO projection_balance_snapshots
        (environment, merchant_id, currency, account, position, balance)
    SELECT environment, merchant_id, currency, account, position, balance
    FROM (
        SELECT environment, merchant_id, currency, account, position,
               row_number() OVER (PARTITION BY environment, merchant_id, currency, account
                                  ORDER BY position, line_number) AS line,
               sum(CASE side WHEN 'debit' THEN amount ELSE -amount END)
                   OVER (PARTITION BY environment, merchant_id, currency, account
                         ORDER BY position) AS balance
        FROM projection_postings
    ) AS lines
    WHERE line % 256 = 0;
$$;

SELECT projection_balance_snapshots_backfill();

ALTER TABLE projection_balances ALTER COLUMN postings DROP DEFAULT;

GRANT SELECT, INSERT, UPDATE, DELETE ON projection_balance_snapshots TO ledger_server;
