-- base_data.sql — the benches' base data in cardd's own schema, made
-- set-wise: BENCH_REQUESTS requests (the bench puts the number in), each
-- produced, with its address and 3 request events (queued, in_production,
-- produced). bench_track (track_data.sql) and bench_courier
-- (courier_data.sql) dispatch them on top of it. Request i (1..BENCH_REQUESTS)
-- has id i and is
--   request_no   RQ-B-<i, 7 digits>            (RQ-B-0000001)
--   national_id  1<i, 8 digits><Luhn digit>    (1000000016 for i = 1)
-- so that a bench can compute any valid pair without reading it back.
-- Plain SQL in one transaction (PQexec takes it whole; psql too), as a
-- superuser, on an empty migrated database. The pg_temp functions stay for
-- the rest of the session (track_data.sql uses them).

-- The rows are consistent by construction: the foreign keys' per-row
-- triggers are skipped while loading (a superuser's setting).
SET session_replication_role = replica;
SET synchronous_commit = off;

-- d(i, k): the k-th of i's 8 digits from the left. The planner inlines
-- these, as long as every call in them is immutable (hence ::text, never
-- int || text) and folds the constants (k): a million numbers take seconds.
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
-- When request i was approved: (i mod 30) days and (i mod 1440) minutes
-- before two days ago.
CREATE FUNCTION pg_temp.approved(i bigint) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT now() - (i % 30) * interval '1 day' - (i % 1440) * interval '1 minute' - interval '2 days'
$$;

INSERT INTO requests (id, request_no, kind, reason, national_id, name_ar, name_en, birth_date, sex,
                      nationality, phone, status, body_sha256, body, terms_accepted_at,
                      approved_at, estimated_earliest, estimated_latest, created_at, updated_at)
SELECT i, request_no, 'national_id', 'lost', pg_temp.national_id(i), 'محمد عبدالله',
       'Mohammed Abdullah', date '1980-01-01' + (i % 10000), CASE WHEN i % 2 = 0 THEN 'M' ELSE 'F' END,
       'SAU', '+9665' || lpad((i % 100000000)::text, 8, '0'), 'produced',
       sha256(convert_to(request_no, 'UTF8')), jsonb_build_object('request_no', request_no),
       t0 - interval '1 hour', t0, (t0 + interval '3 days')::date, (t0 + interval '7 days')::date,
       t0, t0 + interval '3 hours'
FROM (SELECT i, 'RQ-B-' || lpad(i::text, 7, '0') AS request_no, pg_temp.approved(i) AS t0
      FROM generate_series(1, BENCH_REQUESTS) i) s;

INSERT INTO request_addresses (request_id, building_no, street, district, city, postal_code,
                               additional_no)
SELECT i, lpad((i % 10000)::text, 4, '0'), 'King Fahd Road', 'Al Olaya', 'Riyadh', '12211', '1234'
FROM generate_series(1, BENCH_REQUESTS) i;

-- Request by request (the LATERAL join keeps requests outside), so that
-- every index grows at its right edge: a pass per kind of event would
-- touch the whole index again each time, far beyond shared_buffers.
INSERT INTO request_events (request_id, at, status, actor)
SELECT r.id, e.at, e.status, e.actor
FROM requests r
CROSS JOIN LATERAL (VALUES ('queued', r.approved_at, 'absher'),
                           ('in_production', r.approved_at + interval '2 hours', 'st-1'),
                           ('produced', r.approved_at + interval '3 hours', 'st-1'))
    AS e(status, at, actor);

SELECT setval(pg_get_serial_sequence('requests', 'id'), BENCH_REQUESTS);
ANALYZE requests;
ANALYZE request_addresses;
ANALYZE request_events;
