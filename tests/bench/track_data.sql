-- track_data.sql — bench_track's data on top of base_data.sql (in the same
-- session: it uses its pg_temp functions): every request dispatched to the
-- courier 'bench-courier' (cardctl courier add made it) in dispatches of
-- 1,000, its parcel RB<i, 8 digits><S10 digit>SA given in_transit and
-- out_for_delivery by the courier, as cardd records them (the courier's
-- events, and the request's status changes they made, which the timeline
-- leaves out), the request out for delivery: a timeline of 6 entries.

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
CREATE FUNCTION pg_temp.event_id(i bigint, code text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'ev-' || lpad(i::text, 8, '0') || '-' || code $$;

CREATE TEMP TABLE bench_courier AS SELECT id FROM couriers WHERE name = 'bench-courier';

INSERT INTO dispatches (id, courier_id, created_at, created_by)
SELECT d, (SELECT id FROM bench_courier), now() - interval '40 days', 'operator'
FROM generate_series(1, (BENCH_REQUESTS + 999) / 1000) d;

INSERT INTO parcels (id, tracking_no, dispatch_id, courier_id, request_id, last_event_at, created_at)
SELECT r.id, pg_temp.tracking_no(r.id), (r.id - 1) / 1000 + 1, (SELECT id FROM bench_courier),
       r.id, r.approved_at + interval '20 hours', r.approved_at + interval '6 hours'
FROM requests r;

INSERT INTO request_events (request_id, at, status, actor, detail)
SELECT r.id, e.at, e.status, e.actor,
       CASE WHEN e.code IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('tracking_no', pg_temp.tracking_no(r.id), 'event_id',
                                    pg_temp.event_id(r.id, e.code), 'code', e.code) END
FROM requests r
CROSS JOIN LATERAL (VALUES ('dispatched', r.approved_at + interval '6 hours', 'operator', NULL),
                           ('in_transit', r.approved_at + interval '10 hours', 'courier',
                            'in_transit'),
                           ('out_for_delivery', r.approved_at + interval '20 hours', 'courier',
                            'out_for_delivery')) AS e(status, at, actor, code);

INSERT INTO courier_events (courier_id, event_id, parcel_id, code, at, moved_status, received_at)
SELECT (SELECT id FROM bench_courier), pg_temp.event_id(r.id, e.code), r.id, e.code, e.at, true,
       e.at
FROM requests r
CROSS JOIN LATERAL (VALUES ('in_transit', r.approved_at + interval '10 hours'),
                           ('out_for_delivery', r.approved_at + interval '20 hours')) AS e(code, at);

UPDATE requests SET status = 'out_for_delivery', updated_at = approved_at + interval '20 hours';

SELECT setval(pg_get_serial_sequence('dispatches', 'id'), (BENCH_REQUESTS + 999) / 1000);
SELECT setval(pg_get_serial_sequence('parcels', 'id'), BENCH_REQUESTS);
SELECT setval('tracking_serial', least(BENCH_REQUESTS + 1, 99999999));
