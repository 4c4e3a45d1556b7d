-- load.sql — the benches' data set in cardd's own schema, made set-wise:
-- :requests requests (1,000,000 for the figures of the README), each out for
-- delivery with 6 request events (queued, in_production, produced and
-- dispatched, then in_transit and out_for_delivery moved by its courier's
-- events), its address, a parcel in a dispatch of 1,000 and the parcel's 2
-- courier events: a timeline of 6 entries per request.
--
--   psql -v ON_ERROR_STOP=1 -v requests=1000000 -v courier=NAME -f load.sql
--
-- The courier (couriers.name = :'courier') must exist: make it with
-- `cardctl courier add NAME`, so that its secret signs events. Request i (1..:requests) is
--   request_no   RQ-B-<i, 7 digits>            (RQ-B-0000001)
--   national_id  1<i, 8 digits><Luhn digit>    (1000000016 for i = 1)
--   tracking_no  RB<i, 8 digits><S10 digit>SA
-- and its rows have id i in every table but the events, so a bench can
-- compute any valid pair without reading it back. Run on an empty,
-- migrated database; the sequences are moved past the rows loaded.

\set ON_ERROR_STOP 1
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
-- The rows are consistent by construction: the foreign keys' per-row
-- triggers are skipped while loading (a superuser's setting), which saves
-- most of the time.
SET session_replication_role = replica;

BEGIN;

CREATE TEMP TABLE bench_courier AS
    SELECT id FROM couriers WHERE name = :'courier';
DO $$ BEGIN
    IF (SELECT count(*) FROM bench_courier) <> 1 THEN
        RAISE EXCEPTION 'load.sql: no courier of that name; make it with cardctl courier add';
    END IF;
END $$;

-- The numbers of request i, check digits worked out digit by digit (d(i, k):
-- the k-th of i's 8 digits from the left). The planner inlines them, as
-- long as every call in them is immutable (hence ::text, never int || text),
-- and fold the constants (k).
CREATE FUNCTION pg_temp.d(i bigint, k int) RETURNS int LANGUAGE sql IMMUTABLE
    AS $$ SELECT ((i / ('{10000000,1000000,100000,10000,1000,100,10,1}'::bigint[])[k]) % 10)::int $$;
-- Luhn: the 1st, 3rd, ... digit of 1<8 digits> doubled (less 9 when over 9).
CREATE FUNCTION pg_temp.dbl(d int) RETURNS int LANGUAGE sql IMMUTABLE
    AS $$ SELECT 2 * d - 9 * (d / 5) $$;
CREATE FUNCTION pg_temp.national_id(i bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT '1' || lpad(i::text, 8, '0') || ((10 - (2 + pg_temp.d(i, 1) + pg_temp.dbl(pg_temp.d(i, 2))
        + pg_temp.d(i, 3) + pg_temp.dbl(pg_temp.d(i, 4)) + pg_temp.d(i, 5)
        + pg_temp.dbl(pg_temp.d(i, 6)) + pg_temp.d(i, 7) + pg_temp.dbl(pg_temp.d(i, 8))) % 10) % 10)::text
$$;
-- UPU S10: weights 8 6 4 2 3 5 9 7, c = 11 less the sum mod 11, and the
-- digit is c but 0 for 10 and 5 for 11: c % 10 + 4 * (c / 11).
CREATE FUNCTION pg_temp.s10_sum(i bigint) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT 8 * pg_temp.d(i, 1) + 6 * pg_temp.d(i, 2) + 4 * pg_temp.d(i, 3) + 2 * pg_temp.d(i, 4)
           + 3 * pg_temp.d(i, 5) + 5 * pg_temp.d(i, 6) + 9 * pg_temp.d(i, 7) + 7 * pg_temp.d(i, 8)
$$;
CREATE FUNCTION pg_temp.tracking_no(i bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'RB' || lpad(i::text, 8, '0') || ((11 - pg_temp.s10_sum(i) % 11) % 10
                                             + 4 * ((11 - pg_temp.s10_sum(i) % 11) / 11))::text
           || 'SA'
$$;

-- Request i was approved (i mod 30) days and some minutes before now, and
-- moves a step every few hours.
INSERT INTO requests (id, request_no, kind, reason, national_id, name_ar, name_en, birth_date, sex,
                      nationality, phone, status, body_sha256, body, terms_accepted_at,
                      approved_at, estimated_earliest, estimated_latest, created_at, updated_at)
SELECT i, request_no, 'national_id', 'lost', pg_temp.national_id(i), 'محمد عبدالله',
       'Mohammed Abdullah',
       date '1980-01-01' + (i % 10000), CASE WHEN i % 2 = 0 THEN 'M' ELSE 'F' END, 'SAU',
       '+9665' || lpad((i % 100000000)::text, 8, '0'), 'out_for_delivery',
       sha256(convert_to(request_no, 'UTF8')), jsonb_build_object('request_no', request_no),
       t0 - interval '1 hour', t0, (t0 + interval '3 days')::date, (t0 + interval '7 days')::date,
       t0, t0 + interval '20 hours'
FROM (SELECT i, 'RQ-B-' || lpad(i::text, 7, '0') AS request_no,
             now() - (i % 30) * interval '1 day' - (i % 1440) * interval '1 minute'
             - interval '2 days' AS t0
      FROM generate_series(1, :requests) i) s;

INSERT INTO request_addresses (request_id, building_no, street, district, city, postal_code,
                               additional_no)
SELECT i, lpad((i % 10000)::text, 4, '0'), 'King Fahd Road', 'Al Olaya', 'Riyadh', '12211', '1234'
FROM generate_series(1, :requests) i;

-- Rows go in request by request (the LATERAL join keeps requests outside),
-- so that every index grows at its right edge: a pass per kind of event
-- would touch the whole index six times, far beyond shared_buffers.
CREATE FUNCTION pg_temp.event_id(i bigint, code text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'ev-' || lpad(i::text, 8, '0') || '-' || code $$;

INSERT INTO request_events (request_id, at, status, actor, detail)
SELECT r.id, e.at, e.status, e.actor,
       CASE WHEN e.code IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('tracking_no', pg_temp.tracking_no(r.id), 'event_id',
                                    pg_temp.event_id(r.id, e.code), 'code', e.code) END
FROM requests r
CROSS JOIN LATERAL (VALUES ('queued', r.approved_at, 'absher', NULL),
                           ('in_production', r.approved_at + interval '2 hours', 'st-1', NULL),
                           ('produced', r.approved_at + interval '3 hours', 'st-1', NULL),
                           ('dispatched', r.approved_at + interval '6 hours', 'operator', NULL),
                           ('in_transit', r.approved_at + interval '10 hours', 'courier',
                            'in_transit'),
                           ('out_for_delivery', r.approved_at + interval '20 hours', 'courier',
                            'out_for_delivery')) AS e(status, at, actor, code);

INSERT INTO dispatches (id, courier_id, created_at, created_by)
SELECT d, (SELECT id FROM bench_courier), now() - interval '40 days', 'operator'
FROM generate_series(1, (:requests + 999) / 1000) d;

INSERT INTO parcels (id, tracking_no, dispatch_id, courier_id, request_id, last_event_at, created_at)
SELECT r.id, pg_temp.tracking_no(r.id), (r.id - 1) / 1000 + 1, (SELECT id FROM bench_courier),
       r.id, r.approved_at + interval '20 hours', r.approved_at + interval '6 hours'
FROM requests r;

INSERT INTO courier_events (courier_id, event_id, parcel_id, code, at, moved_status, received_at)
SELECT (SELECT id FROM bench_courier), pg_temp.event_id(r.id, e.code), r.id, e.code, e.at, true,
       e.at
FROM requests r
CROSS JOIN LATERAL (VALUES ('in_transit', r.approved_at + interval '10 hours'),
                           ('out_for_delivery', r.approved_at + interval '20 hours')) AS e(code, at);

SELECT setval(pg_get_serial_sequence('requests', 'id'), (SELECT max(id) FROM requests));
SELECT setval(pg_get_serial_sequence('dispatches', 'id'), (SELECT max(id) FROM dispatches));
SELECT setval(pg_get_serial_sequence('parcels', 'id'), (SELECT max(id) FROM parcels));
SELECT setval('tracking_serial', least(:requests + 1, 99999999));

COMMIT;

VACUUM ANALYZE requests, request_addresses, request_events, dispatches, parcels, courier_events;
