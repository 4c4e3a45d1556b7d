/* stations.c — GET /v1/stations, pause and resume, and the production queue. */
#include "stations.h"
#include "config.h"
#include "db.h"
#include "journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int stations_register(struct db *db, const struct config *cfg)
{
    for (int i = 0; i < cfg->station_count; i++) {
        const struct station_config *st = &cfg->stations[i];
        int rc = db_query(db, NULL,
                          "INSERT INTO stations (id, instance, printer_driver, printer_serial, reader)"
                          " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET"
                          " instance = EXCLUDED.instance, printer_driver = EXCLUDED.printer_driver,"
                          " printer_serial = EXCLUDED.printer_serial, reader = EXCLUDED.reader,"
                          " updated_at = now()",
                          st->id, cfg->instance, st->printer_driver, st->printer_serial, st->reader);
        if (rc)
            return rc;
    }
    return 0;
}

void stations_list(struct http_req *rq)
{
    struct db *db = http_db(rq);
    if (!db)
        return;
    struct db_res *res = NULL;
    int rc = db_exec(db, &res,
                     "SELECT s.id, s.instance, s.printer_driver, s.printer_serial, s.reader,"
                     " CASE WHEN s.paused AND s.state <> 'busy' THEN 'paused' ELSE s.state END,"
                     " s.error_reason, s.paused, s.cards_produced, s.cards_spoiled, rfc3339(s.updated_at),"
                     " (SELECT r.request_no FROM production_attempts p JOIN requests r ON r.id = p.request_id"
                     "  WHERE p.station_id = s.id AND p.outcome = 'in_progress' LIMIT 1),"
                     " (SELECT p.card_serial FROM production_attempts p"
                     "  WHERE p.station_id = s.id AND p.outcome = 'in_progress' LIMIT 1)"
                     " FROM stations s ORDER BY s.id",
                     0, NULL);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return;
    }
    json_t *list = json_array();
    for (size_t r = 0; r < db_rows(res); r++) {
        json_t *job = db_is_null(res, r, 11)
                          ? json_null()
                          : json_pack("{s:s, s:s?}", "request_no", db_get(res, r, 11), "card_serial",
                                      db_get(res, r, 12));
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s?, s:b, s:{s:I, s:I}, s:s, s:o}",
                            "id", db_get(res, r, 0), "instance", db_get(res, r, 1),
                            "printer", "driver", db_get(res, r, 2), "serial", db_get(res, r, 3),
                            "reader", db_get(res, r, 4), "state", db_get(res, r, 5),
                            "reason", db_get(res, r, 6),
                            "paused", strcmp(db_get(res, r, 7), "t") == 0,
                            "counters", "produced", (json_int_t)db_get_long(res, r, 8, 0),
                            "spoiled", (json_int_t)db_get_long(res, r, 9, 0),
                            "updated_at", db_get(res, r, 10), "job", job));
    }
    db_res_free(res);
    http_json(rq, 200, json_pack("{s:o}", "stations", list));
}

static void set_paused(struct http_req *rq, bool paused)
{
    struct db *db = http_db(rq);
    if (!db)
        return;
    struct db_res *res = NULL;
    /* Resuming also clears an error: an operator has seen to the printer. */
    int rc = db_query(db, &res,
                      paused ? "UPDATE stations SET paused = true, updated_at = now() WHERE id = $1"
                               " RETURNING state"
                             : "UPDATE stations SET paused = false, updated_at = now(),"
                               " state = CASE WHEN state = 'error' THEN 'idle' ELSE state END,"
                               " error_reason = CASE WHEN state = 'error' THEN NULL ELSE error_reason END"
                               " WHERE id = $1 RETURNING state",
                      rq->param[0]);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
    } else if (db_rows(res) == 0) {
        http_problem(rq, 404, "not_found", "Not found", "No such station.", NULL);
    } else {
        audit(db, rq->who.name, paused ? "station.paused" : "station.resumed", NULL, NULL,
              rq->param[0], NULL);
        const char *state = db_get(res, 0, 0);
        http_json(rq, 200, json_pack("{s:s, s:s, s:b}", "id", rq->param[0], "state",
                                     paused && strcmp(state, "busy") != 0 ? "paused" : state,
                                     "paused", paused));
    }
    db_res_free(res);
}

void station_pause(struct http_req *rq)
{
    set_paused(rq, true);
}

void station_resume(struct http_req *rq)
{
    set_paused(rq, false);
}

void production_queue(struct http_req *rq)
{
    const char *limit_s = http_query(rq, "limit"), *cursor_s = http_query(rq, "cursor");
    long limit = 50, cursor = 0;
    char *end = NULL;
    if (limit_s) {
        limit = strtol(limit_s, &end, 10);
        if (!*limit_s || *end || limit < 1 || limit > 500) {
            http_problem(rq, 422, "validation", "Invalid request", "limit is 1 to 500.",
                         json_pack("[{s:s, s:s}]", "field", "limit", "code", "range"));
            return;
        }
    }
    if (cursor_s) {
        cursor = strtol(cursor_s, &end, 10);
        if (!*cursor_s || *end || cursor < 0) {
            http_problem(rq, 422, "validation", "Invalid request", "cursor is not valid.",
                         json_pack("[{s:s, s:s}]", "field", "cursor", "code", "format"));
            return;
        }
    }
    struct db *db = http_db(rq);
    if (!db)
        return;
    char lim[24], cur[24];
    snprintf(lim, sizeof(lim), "%ld", limit + 1);
    snprintf(cur, sizeof(cur), "%ld", cursor);
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT r.id, r.request_no, r.kind, r.reason, rfc3339(r.approved_at),"
                      " rfc3339(r.created_at), r.spoiled_cards, r.hold_reason, r.production_station, r.status"
                      " FROM requests r WHERE r.status IN ('queued','in_production')"
                      " AND r.id > $1::bigint ORDER BY r.id LIMIT $2::int",
                      cur, lim);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return;
    }
    json_t *items = json_array();
    size_t n = db_rows(res);
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t r = 0; r < shown; r++)
        json_array_append_new(
            items, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s?, s:s?, s:s}",
                             "request_no", db_get(res, r, 1), "kind", db_get(res, r, 2),
                             "reason", db_get(res, r, 3), "approved_at", db_get(res, r, 4),
                             "queued_at", db_get(res, r, 5),
                             "spoiled_cards", (json_int_t)db_get_long(res, r, 6, 0),
                             "hold_reason", db_get(res, r, 7), "station", db_get(res, r, 8),
                             "status", db_get(res, r, 9)));
    json_t *next = n > (size_t)limit ? json_string(db_get(res, shown - 1, 0)) : json_null();
    db_res_free(res);
    http_json(rq, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}
