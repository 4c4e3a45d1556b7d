-- cardd schema, version 1: the whole chain from intake to collection.
-- Released migrations never change; a later change is a new numbered file.

CREATE TABLE api_tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    role        text NOT NULL CHECK (role IN ('intake','operator','courier','branch','admin')),
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),  -- SHA-256 of the token
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- A courier's HMAC secret is never stored: it is derived from the service's
-- master key and this salt, so a database copy alone cannot sign events.
CREATE TABLE couriers (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    token_id     bigint NOT NULL UNIQUE REFERENCES api_tokens(id),
    secret_salt  bytea NOT NULL CHECK (length(secret_salt) = 16),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cities (
    name    text PRIMARY KEY,
    region  text NOT NULL,
    lat     double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon     double precision NOT NULL CHECK (lon BETWEEN -180 AND 180)
);

CREATE TABLE branches (
    branch_id       text PRIMARY KEY CHECK (branch_id ~ '^[A-Z0-9-]{1,32}$'),
    name_en         text NOT NULL,
    name_ar         text NOT NULL,
    city            text NOT NULL,
    lat             double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon             double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    collects_cards  boolean NOT NULL,
    active          boolean NOT NULL DEFAULT true
);

CREATE TABLE holidays (
    day   date PRIMARY KEY,
    name  text NOT NULL DEFAULT ''
);

CREATE TABLE requests (
    id                 bigserial PRIMARY KEY,
    request_no         text NOT NULL UNIQUE CHECK (request_no ~ '^[A-Z0-9-]{1,32}$'),
    kind               text NOT NULL CHECK (kind IN ('national_id','family_record')),
    reason             text NOT NULL CHECK (reason IN ('lost','damaged')),
    national_id        text NOT NULL CHECK (national_id ~ '^[12][0-9]{9}$'),
    name_ar            text NOT NULL,
    name_en            text NOT NULL,
    birth_date         date NOT NULL,
    sex                text NOT NULL CHECK (sex IN ('M','F','X')),
    nationality        text NOT NULL CHECK (nationality ~ '^[A-Z]{3}$'),
    phone              text NOT NULL CHECK (phone ~ '^\+9665[0-9]{8}$'),
    status             text NOT NULL DEFAULT 'queued' CHECK (status IN (
                           'queued','in_production','produced','dispatched','in_transit',
                           'out_for_delivery','delivery_failed','delivered',
                           'redirected_to_branch','ready_for_collection','collected',
                           'cancelled')),
    -- A request whose cards keep failing is held for an operator; it stays
    -- queued for the citizen but production skips it.
    hold_reason        text,
    -- The station producing it now; NULL while it waits in the queue.
    production_station text,
    spoiled_cards      integer NOT NULL DEFAULT 0 CHECK (spoiled_cards >= 0),
    body_sha256        bytea NOT NULL CHECK (length(body_sha256) = 32),  -- idempotent re-submission
    body               jsonb NOT NULL,
    terms_accepted_at  timestamptz NOT NULL,
    approved_at        timestamptz NOT NULL CHECK (terms_accepted_at <= approved_at),
    estimated_earliest date NOT NULL,
    estimated_latest   date NOT NULL CHECK (estimated_earliest <= estimated_latest),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- One active request per holder and kind.
CREATE UNIQUE INDEX requests_one_active ON requests (national_id, kind)
    WHERE status NOT IN ('delivered','collected','cancelled');
-- The production queue: oldest queued first.
-- The production queue, oldest first: requests waiting for a (new) card.
CREATE INDEX requests_queue ON requests (id)
    WHERE status IN ('queued','in_production') AND hold_reason IS NULL AND production_station IS NULL;

CREATE TABLE request_addresses (
    request_id     bigint PRIMARY KEY REFERENCES requests(id),
    short_address  text CHECK (short_address ~ '^[A-Z]{4}[0-9]{4}$'),
    building_no    text NOT NULL CHECK (building_no ~ '^[0-9]{4}$'),
    street         text NOT NULL,
    district       text NOT NULL,
    city           text NOT NULL,
    postal_code    text NOT NULL CHECK (postal_code ~ '^[0-9]{5}$'),
    additional_no  text NOT NULL CHECK (additional_no ~ '^[0-9]{4}$'),
    lat            double precision CHECK (lat BETWEEN -90 AND 90),
    lon            double precision CHECK (lon BETWEEN -180 AND 180),
    CHECK ((lat IS NULL) = (lon IS NULL))
);

CREATE TABLE request_documents (
    id          bigserial PRIMARY KEY,
    request_id  bigint NOT NULL REFERENCES requests(id),
    doc_type    text NOT NULL CHECK (doc_type IN ('id_copy','loss_report','damage_report')),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    uri         text NOT NULL,
    UNIQUE (request_id, doc_type)
);

-- Every step a request goes through; rows with a status form the citizen's timeline.
CREATE TABLE request_events (
    id          bigserial PRIMARY KEY,
    request_id  bigint NOT NULL REFERENCES requests(id),
    at          timestamptz NOT NULL DEFAULT now(),
    status      text,
    actor       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX request_events_by_request ON request_events (request_id, at, id);

CREATE TABLE stock_batches (
    id            bigserial PRIMARY KEY,
    batch_no      text NOT NULL UNIQUE CHECK (batch_no ~ '^[A-Z0-9-]{1,32}$'),
    first_serial  text NOT NULL CHECK (first_serial ~ '^[A-Z0-9]{1,9}$'),
    count         integer NOT NULL CHECK (count BETWEEN 1 AND 100000),
    received_at   timestamptz NOT NULL DEFAULT now(),
    received_by   text NOT NULL
);

CREATE TABLE stations (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,32}$'),
    instance        text NOT NULL,
    printer_driver  text NOT NULL,
    printer_serial  text NOT NULL,
    reader          text NOT NULL,
    state           text NOT NULL DEFAULT 'idle'
                    CHECK (state IN ('idle','busy','paused','error','offline')),
    error_reason    text,
    paused          boolean NOT NULL DEFAULT false,
    cards_produced  bigint NOT NULL DEFAULT 0,
    cards_spoiled   bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A card exists from the moment its batch is received; its state says where it is.
CREATE TABLE cards (
    serial        text PRIMARY KEY CHECK (serial ~ '^[A-Z0-9]{1,9}$'),
    batch_id      bigint NOT NULL REFERENCES stock_batches(id),
    state         text NOT NULL DEFAULT 'available'
                  CHECK (state IN ('available','in_production','used','spoiled','destroyed')),
    request_id    bigint REFERENCES requests(id),
    station_id    text REFERENCES stations(id),
    spoil_reason  text,
    spoiled_at    timestamptz,
    destroyed_at  timestamptz,
    destroyed_by  text,
    witness       text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (state = 'available' OR state = 'destroyed' OR state = 'spoiled' OR request_id IS NOT NULL),
    CHECK (state NOT IN ('spoiled','destroyed') OR spoil_reason IS NOT NULL),
    CHECK (state <> 'destroyed' OR (witness IS NOT NULL AND destroyed_by IS NOT NULL AND witness <> destroyed_by))
);
CREATE INDEX cards_available ON cards (batch_id, serial) WHERE state = 'available';

CREATE TABLE production_attempts (
    id           bigserial PRIMARY KEY,
    request_id   bigint NOT NULL REFERENCES requests(id),
    card_serial  text REFERENCES cards(serial),
    station_id   text NOT NULL REFERENCES stations(id),
    instance     text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    outcome      text NOT NULL DEFAULT 'in_progress'
                 CHECK (outcome IN ('in_progress','produced','spoiled','unknown','cancelled')),
    step         text,
    reason       text,
    CHECK ((outcome = 'in_progress') = (finished_at IS NULL))
);
-- A request is in production at most once at a time.
CREATE UNIQUE INDEX attempts_one_in_progress ON production_attempts (request_id)
    WHERE outcome = 'in_progress';
CREATE UNIQUE INDEX attempts_one_produced ON production_attempts (request_id)
    WHERE outcome = 'produced';

CREATE TABLE dispatches (
    id          bigserial PRIMARY KEY,
    courier_id  bigint NOT NULL REFERENCES couriers(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL
);

CREATE SEQUENCE tracking_serial MINVALUE 1 MAXVALUE 99999999 NO CYCLE;

CREATE TABLE parcels (
    id                bigserial PRIMARY KEY,
    tracking_no       text NOT NULL UNIQUE CHECK (tracking_no ~ '^[A-Z]{2}[0-9]{9}SA$'),
    dispatch_id       bigint NOT NULL REFERENCES dispatches(id),
    courier_id        bigint NOT NULL REFERENCES couriers(id),
    request_id        bigint NOT NULL UNIQUE REFERENCES requests(id),
    failed_attempts   integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    branch_id         text REFERENCES branches(branch_id),
    collect_by        date,
    last_event_at     timestamptz,
    collected_at      timestamptz,
    collected_by      text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (collect_by IS NULL OR branch_id IS NOT NULL)
);
CREATE INDEX parcels_by_courier ON parcels (courier_id);

CREATE TABLE courier_events (
    id           bigserial PRIMARY KEY,
    courier_id   bigint NOT NULL REFERENCES couriers(id),
    event_id     text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 64),
    parcel_id    bigint NOT NULL REFERENCES parcels(id),
    code         text NOT NULL CHECK (code IN ('picked_up','in_transit','out_for_delivery',
                     'delivered','delivery_failed','arrived_at_branch')),
    at           timestamptz NOT NULL,
    reason       text CHECK (reason IN ('no_one_home','address_not_found','refused','other')),
    location     text,
    moved_status boolean NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (courier_id, event_id)
);
CREATE INDEX courier_events_by_parcel ON courier_events (parcel_id, at);

-- Written in the same transaction as the status change; the worker delivers.
CREATE TABLE notifications (
    id               bigserial PRIMARY KEY,
    notification_id  uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    request_id       bigint NOT NULL REFERENCES requests(id),
    status           text NOT NULL,
    phone            text NOT NULL,
    text_ar          text NOT NULL,
    text_en          text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    last_error       text
);
CREATE INDEX notifications_pending ON notifications (next_attempt_at, id) WHERE delivered_at IS NULL;
-- Per request, a notification waits for every earlier one (delivery in order).
CREATE INDEX notifications_pending_by_request ON notifications (request_id, id)
    WHERE delivered_at IS NULL;

-- Append-only: who did what, when, to which request, card or station.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor        text NOT NULL,
    action       text NOT NULL,
    request_no   text,
    card_serial  text,
    station_id   text,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Timestamps as API.md writes them: RFC 3339 in UTC, whole seconds.
CREATE FUNCTION rfc3339(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- The whole record of a request, as GET /v1/requests/{request_no} answers it.
CREATE FUNCTION request_record(rid bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
SELECT jsonb_build_object(
    'request_no', r.request_no,
    'kind', r.kind,
    'reason', r.reason,
    'national_id', r.national_id,
    'status', r.status,
    'hold_reason', r.hold_reason,
    'holder', jsonb_build_object('name_ar', r.name_ar, 'name_en', r.name_en,
                                 'birth_date', to_char(r.birth_date, 'YYYY-MM-DD'),
                                 'sex', r.sex, 'nationality', r.nationality),
    'phone', r.phone,
    'address', (SELECT jsonb_strip_nulls(jsonb_build_object(
                    'short_address', a.short_address, 'building_no', a.building_no,
                    'street', a.street, 'district', a.district, 'city', a.city,
                    'postal_code', a.postal_code, 'additional_no', a.additional_no,
                    'lat', a.lat::numeric, 'lon', a.lon::numeric))
                FROM request_addresses a WHERE a.request_id = r.id),
    'documents', coalesce((SELECT jsonb_agg(jsonb_build_object('type', d.doc_type,
                    'sha256', d.sha256, 'uri', d.uri) ORDER BY d.id)
                FROM request_documents d WHERE d.request_id = r.id), '[]'::jsonb),
    'terms_accepted_at', rfc3339(r.terms_accepted_at),
    'approved_at', rfc3339(r.approved_at),
    'estimated_delivery', jsonb_build_object(
        'earliest', to_char(r.estimated_earliest, 'YYYY-MM-DD'),
        'latest', to_char(r.estimated_latest, 'YYYY-MM-DD')),
    'spoiled_cards', r.spoiled_cards,
    'cards', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'card_serial', p.card_serial, 'station', p.station_id,
                    'outcome', p.outcome, 'step', p.step, 'reason', p.reason,
                    'started_at', rfc3339(p.started_at), 'finished_at', rfc3339(p.finished_at))
                    ORDER BY p.id)
                FROM production_attempts p WHERE p.request_id = r.id), '[]'::jsonb),
    'dispatch', (SELECT jsonb_build_object(
                    'courier', c.name, 'tracking_no', pa.tracking_no,
                    'dispatched_at', rfc3339(pa.created_at),
                    'failed_attempts', pa.failed_attempts,
                    'branch', pa.branch_id,
                    'collect_by', to_char(pa.collect_by, 'YYYY-MM-DD'))
                FROM parcels pa JOIN couriers c ON c.id = pa.courier_id
                WHERE pa.request_id = r.id),
    'events', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'at', rfc3339(e.at), 'status', e.status, 'actor', e.actor,
                    'detail', e.detail) ORDER BY e.at, e.id)
                FROM request_events e WHERE e.request_id = r.id), '[]'::jsonb),
    'created_at', rfc3339(r.created_at),
    'updated_at', rfc3339(r.updated_at))
FROM requests r WHERE r.id = rid
$$;
