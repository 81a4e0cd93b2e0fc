-- Stripe webhooks (ledger-api `webhooks` module): what arrived, how it was handled, the link
-- from PaymentIntents to ledger payments, and the events that wait for an earlier one.
--
-- The exactly-once guarantee itself is the event log's idempotency claim `stripe:<evt_…>`,
-- written in the same transaction as the events an event caused. These tables are the
-- operational record beside it; see the module docs for why that split is safe.

-- One row per Stripe event and environment: its latest outcome and how often it came.
CREATE TABLE webhook_deliveries (
    environment text NOT NULL CHECK (environment IN ('test', 'live')),
    stripe_event_id text NOT NULL CHECK (stripe_event_id <> '' AND length(stripe_event_id) <= 255),
    event_type text NOT NULL CHECK (event_type <> '' AND length(event_type) <= 255),
    payment_intent_id text CHECK (length(payment_intent_id) <= 255),
    payment_id uuid,
    outcome text NOT NULL
        CHECK (outcome IN ('applied', 'duplicate', 'ignored', 'parked', 'conflict', 'rejected')),
    -- Why it was ignored, parked, refused: words for support, never a secret.
    detail text CHECK (length(detail) <= 2000),
    first_position bigint CHECK (first_position >= 1),
    last_position bigint CHECK (last_position >= first_position),
    delivery_count integer NOT NULL DEFAULT 1 CHECK (delivery_count >= 1),
    received_at timestamptz NOT NULL,
    last_received_at timestamptz NOT NULL,
    processed_at timestamptz NOT NULL,
    PRIMARY KEY (environment, stripe_event_id)
);

CREATE INDEX webhook_deliveries_recent
    ON webhook_deliveries (environment, last_received_at DESC);
CREATE INDEX webhook_deliveries_payment
    ON webhook_deliveries (environment, payment_id, last_received_at DESC)
    WHERE payment_id IS NOT NULL;

-- Refunds and disputes carry no metadata: their payment is found through the PaymentIntent
-- that a PaymentIntent or Charge event linked to it. The first link wins.
CREATE TABLE webhook_payment_links (
    environment text NOT NULL CHECK (environment IN ('test', 'live')),
    payment_intent_id text NOT NULL
        CHECK (payment_intent_id <> '' AND length(payment_intent_id) <= 255),
    payment_id uuid NOT NULL,
    linked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment, payment_intent_id)
);

-- Verified events that arrived before what they depend on: the payment (`subject` = `pi_…`) or
-- the settlement batch of a payout (`subject` = `po_…`). Retried in `event_created_at` order.
CREATE TABLE webhook_parked (
    environment text NOT NULL CHECK (environment IN ('test', 'live')),
    stripe_event_id text NOT NULL CHECK (stripe_event_id <> '' AND length(stripe_event_id) <= 255),
    subject text NOT NULL CHECK (subject <> '' AND length(subject) <= 255),
    event_type text NOT NULL,
    event_created_at timestamptz NOT NULL,
    -- The verified event envelope, re-mapped on every retry (a link may have appeared since).
    event jsonb NOT NULL CHECK (jsonb_typeof(event) = 'object'),
    reason text NOT NULL CHECK (length(reason) <= 2000),
    attempts integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    parked_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment, stripe_event_id)
);

CREATE INDEX webhook_parked_subject
    ON webhook_parked (environment, subject, event_created_at, stripe_event_id);

-- `payout.*` events find the settlement batch that initiated their payout.
CREATE INDEX events_payout_initiated_payout_id
    ON events ((payload ->> 'payout_id'))
    WHERE event_type = 'PayoutInitiated';
