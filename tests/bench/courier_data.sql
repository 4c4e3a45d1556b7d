-- courier_data.sql — what bench_courier adds to the bench's base data (the
-- requests and their timelines): for every request without one, a dispatch
-- and a parcel, handed a day ago to one of the couriers (cardctl courier add
-- made them, with their tokens and salts), in turn; the request is then
-- dispatched. Set-based: a million parcels take seconds, not hours.

-- The rows are consistent by construction: the foreign keys' per-row
-- triggers are skipped while loading (a superuser's setting).
SET session_replication_role = replica;
SET synchronous_commit = off;
CREATE TEMP TABLE bench_courier_ids AS
    SELECT (row_number() OVER (ORDER BY id)) - 1 AS k, id FROM couriers;
CREATE TEMP TABLE bench_dispatch AS
    SELECT r.id AS request_id, nextval('dispatches_id_seq') AS dispatch_id,
           nextval('tracking_serial') AS serial,
           (SELECT c.id FROM bench_courier_ids c
             WHERE c.k = r.id % (SELECT count(*) FROM bench_courier_ids)) AS courier_id
      FROM requests r
     WHERE NOT EXISTS (SELECT 1 FROM parcels p WHERE p.request_id = r.id);
INSERT INTO dispatches (id, courier_id, created_at, created_by)
    SELECT dispatch_id, courier_id, now() - interval '1 day', 'bench-courier' FROM bench_dispatch;
-- UPU S10: 8 digits weighted 8 6 4 2 3 5 9 7, c = 11 - sum mod 11 (10 -> 0, 11 -> 5).
INSERT INTO parcels (tracking_no, dispatch_id, courier_id, request_id, created_at)
    SELECT 'RR' || d8 || (CASE c WHEN 10 THEN 0 WHEN 11 THEN 5 ELSE c END) || 'SA',
           dispatch_id, courier_id, request_id, now() - interval '1 day'
      FROM (SELECT b.*, lpad(b.serial::text, 8, '0') AS d8 FROM bench_dispatch b) s,
           LATERAL (SELECT 11 - (substr(d8, 1, 1)::int * 8 + substr(d8, 2, 1)::int * 6
                   + substr(d8, 3, 1)::int * 4 + substr(d8, 4, 1)::int * 2
                   + substr(d8, 5, 1)::int * 3 + substr(d8, 6, 1)::int * 5
                   + substr(d8, 7, 1)::int * 9 + substr(d8, 8, 1)::int * 7) % 11 AS c) x;
UPDATE requests r SET status = 'dispatched', updated_at = now() - interval '1 day'
  FROM bench_dispatch b WHERE r.id = b.request_id;
ANALYZE dispatches;
ANALYZE parcels;
ANALYZE requests;
