-- Status callbacks to the approval platform (API.md, "Status callbacks to
-- the approval platform"): an outbox written in the same transaction as each
-- citizen-visible status change, delivered by the callback worker.

-- The platform's signing secret is never stored: like a courier's, it is
-- derived from the service's master key and this salt. One row at most.
CREATE TABLE platform_secret (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    secret_salt  bytea NOT NULL CHECK (length(secret_salt) = 16),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per callback. sequence counts a request's callbacks from 1; a
-- callback is sent only once every earlier one of its request is 'sent'.
-- A claim (claimed_by, claim_until) is taken before a send and outlives the
-- slowest send, so two instances never send one callback at once.
CREATE TABLE callbacks (
    id           bigserial PRIMARY KEY,
    callback_id  uuid NOT NULL UNIQUE,
    request_id   bigint NOT NULL REFERENCES requests(id),
    sequence     integer NOT NULL CHECK (sequence >= 1),
    status       text NOT NULL,
    payload      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting','sent','failed')),
    attempts     integer NOT NULL DEFAULT 0,
    next_try     timestamptz NOT NULL DEFAULT now(),
    claimed_by   text,
    claim_until  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    last_status  integer,
    last_error   text,
    UNIQUE (request_id, sequence),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX callbacks_due ON callbacks (next_try, id) WHERE state = 'waiting';
-- Per request, a callback waits for every earlier one not yet sent.
CREATE INDEX callbacks_unsent_by_request ON callbacks (request_id, sequence) WHERE state <> 'sent';
