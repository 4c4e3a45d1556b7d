/* stations.c — GET /v1/stations, pause and resume, and the production queue. */
#include "stations.h"
#include "config.h"
#include "db.h"
#include "journal.h"
#include "production.h"
#include "requests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int stations_register(struct db *db, const struct config *cfg)
{
    for (int i = 0; i < cfg->station_count; i++) {
        const struct station_config *st = &cfg->stations[i];
        int rc =
            db_query(db, NULL,
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

int stations_fetch(struct db *db, struct db_res **res)
{
    return db_exec(
        db, res,
        "SELECT s.id, s.instance, s.printer_driver, s.printer_serial, s.reader,"
        " CASE WHEN s.paused AND s.state <> 'busy' THEN 'paused' ELSE s.state END,"
        " s.error_reason, s.paused, s.cards_produced, s.cards_spoiled, rfc3339(s.updated_at),"
        " (SELECT r.request_no FROM production_attempts p JOIN requests r ON r.id = p.request_id"
        "  WHERE p.station_id = s.id AND p.outcome = 'in_progress' LIMIT 1),"
        " (SELECT p.card_serial FROM production_attempts p"
        "  WHERE p.station_id = s.id AND p.outcome = 'in_progress' LIMIT 1),"
        " (SELECT count(*) FROM production_attempts p WHERE p.station_id = s.id"
        "  AND p.outcome = 'produced' AND p.finished_at >= today.start),"
        " (SELECT count(*) FROM production_attempts p WHERE p.station_id = s.id"
        "  AND p.outcome IN ('spoiled','unknown') AND p.finished_at >= today.start)"
        " FROM stations s, (SELECT date_trunc('day', now() AT TIME ZONE 'Asia/Riyadh')"
        "  AT TIME ZONE 'Asia/Riyadh' AS start) today ORDER BY s.id",
        0, NULL);
}

void stations_list(struct http_req *rq)
{
    struct db *db = http_db(rq);
    if (!db)
        return;
    struct db_res *res = NULL;
    int rc = stations_fetch(db, &res);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return;
    }
    json_t *list = json_array();
    for (size_t r = 0; r < db_rows(res); r++) {
        json_t *job =
            db_is_null(res, r, STATION_COL_JOB_REQUEST)
                ? json_null()
                : json_pack("{s:s, s:s?}", "request_no", db_get(res, r, STATION_COL_JOB_REQUEST),
                            "card_serial", db_get(res, r, STATION_COL_JOB_CARD));
        json_array_append_new(
            list,
            json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s?, s:b, s:{s:I, s:I}, s:{s:I, s:I},"
                      " s:s, s:o}",
                      "id", db_get(res, r, STATION_COL_ID), "instance",
                      db_get(res, r, STATION_COL_INSTANCE), "printer", "driver",
                      db_get(res, r, STATION_COL_PRINTER_DRIVER), "serial",
                      db_get(res, r, STATION_COL_PRINTER_SERIAL), "reader",
                      db_get(res, r, STATION_COL_READER), "state",
                      db_get(res, r, STATION_COL_STATE), "reason",
                      db_get(res, r, STATION_COL_REASON), "paused",
                      strcmp(db_get(res, r, STATION_COL_PAUSED), "t") == 0, "counters", "produced",
                      (json_int_t)db_get_long(res, r, STATION_COL_PRODUCED, 0), "spoiled",
                      (json_int_t)db_get_long(res, r, STATION_COL_SPOILED, 0), "today", "produced",
                      (json_int_t)db_get_long(res, r, STATION_COL_PRODUCED_TODAY, 0), "spoiled",
                      (json_int_t)db_get_long(res, r, STATION_COL_SPOILED_TODAY, 0), "updated_at",
                      db_get(res, r, STATION_COL_UPDATED_AT), "job", job));
    }
    db_res_free(res);
    http_json(rq, 200, json_pack("{s:o}", "stations", list));
}

int station_set_paused(struct db *db, const char *station_id, bool paused, const char *actor,
                       char state[16])
{
    struct db_res *res = NULL;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(
            db, &res,
            paused ? "UPDATE stations SET paused = true, updated_at = now() WHERE id = $1"
                     " RETURNING state"
                   : "UPDATE stations SET paused = false, updated_at = now(),"
                     " state = CASE WHEN state = 'error' THEN 'idle' ELSE state END,"
                     " error_reason = CASE WHEN state = 'error' THEN NULL ELSE error_reason END"
                     " WHERE id = $1 RETURNING state",
            station_id);
    if (rc)
        goto out;
    if (db_rows(res) == 0) {
        rc = -ENOENT;
        goto out;
    }
    const char *now = db_get(res, 0, 0);
    snprintf(state, 16, "%s", paused && strcmp(now, "busy") != 0 ? "paused" : now);
    rc = audit(db, actor, paused ? "station.paused" : "station.resumed", NULL, NULL, station_id,
               NULL);
    if (!rc)
        rc = db_commit(db);
out:
    db_rollback(db);
    db_res_free(res);
    return rc;
}

static void set_paused(struct http_req *rq, bool paused)
{
    struct db *db = http_db(rq);
    if (!db)
        return;
    char state[16];
    int rc = station_set_paused(db, rq->param[0], paused, rq->who.name, state);
    if (rc == -ENOENT)
        http_problem(rq, 404, "not_found", "Not found", "No such station.", NULL);
    else if (rc)
        http_internal_error(rq, db_error_message(db));
    else
        http_json(
            rq, 200,
            json_pack("{s:s, s:s, s:b}", "id", rq->param[0], "state", state, "paused", paused));
}

void station_pause(struct http_req *rq)
{
    set_paused(rq, true);
}

void station_resume(struct http_req *rq)
{
    set_paused(rq, false);
}

int production_queue_fetch(struct db *db, long after, long limit, bool held_only,
                           struct db_res **res)
{
    char lim[24], cur[24];
    snprintf(lim, sizeof(lim), "%ld", limit);
    snprintf(cur, sizeof(cur), "%ld", after);
    return db_query(
        db, res,
        "SELECT r.id, r.request_no, r.kind, r.reason, rfc3339(r.approved_at),"
        " rfc3339(r.created_at), r.spoiled_cards, r.hold_reason, r.production_station, r.status"
        " FROM requests r WHERE r.status IN ('queued','in_production')"
        " AND r.id > $1::bigint AND (NOT $3::boolean OR r.hold_reason IS NOT NULL)"
        " ORDER BY r.id LIMIT $2::int",
        cur, lim, held_only ? "true" : "false");
}

void production_queue(struct http_req *rq)
{
    const char *limit_s = http_query(rq, "limit"), *cursor_s = http_query(rq, "cursor");
    const char *held_s = http_query(rq, "held");
    long limit = 50, cursor = 0;
    bool held = false;
    if (held_s) {
        if (strcmp(held_s, "true") != 0 && strcmp(held_s, "false") != 0) {
            http_problem(rq, 422, "validation", "Invalid request", "held is true or false.",
                         json_pack("[{s:s, s:s}]", "field", "held", "code", "format"));
            return;
        }
        held = strcmp(held_s, "true") == 0;
    }
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
    struct db_res *res = NULL;
    /* One row more than shown says whether there is a next page. */
    int rc = production_queue_fetch(db, cursor, limit + 1, held, &res);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return;
    }
    json_t *items = json_array();
    size_t n = db_rows(res);
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t r = 0; r < shown; r++)
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s?, s:s?, s:s}",
                                        "request_no", db_get(res, r, QUEUE_COL_REQUEST_NO), "kind",
                                        db_get(res, r, QUEUE_COL_KIND), "reason",
                                        db_get(res, r, QUEUE_COL_REASON), "approved_at",
                                        db_get(res, r, QUEUE_COL_APPROVED_AT), "queued_at",
                                        db_get(res, r, QUEUE_COL_QUEUED_AT), "spoiled_cards",
                                        (json_int_t)db_get_long(res, r, QUEUE_COL_SPOILED_CARDS, 0),
                                        "hold_reason", db_get(res, r, QUEUE_COL_HOLD_REASON),
                                        "station", db_get(res, r, QUEUE_COL_STATION), "status",
                                        db_get(res, r, QUEUE_COL_STATUS)));
    json_t *next =
        n > (size_t)limit ? json_string(db_get(res, shown - 1, QUEUE_COL_ID)) : json_null();
    db_res_free(res);
    http_json(rq, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

void request_release(struct http_req *rq)
{
    struct db *db = http_db(rq);
    if (!db)
        return;
    char reason[400] = "";
    int rc = production_release(db, rq->param[0], rq->who.name, reason, sizeof(reason));
    if (rc == -ENOENT)
        http_problem(rq, 404, "not_found", "Not found", "No such request.", NULL);
    else if (rc == -EALREADY)
        http_problem(rq, 409, "not_held", "Conflict",
                     "The request is not held for an operator; nothing to release.", NULL);
    else if (rc)
        http_internal_error(rq, db_error_message(db));
    else
        http_json(rq, 200,
                  json_pack("{s:s, s:s, s:s}", "request_no", rq->param[0], "status", "released",
                            "hold_reason", reason));
}

void production_summary(struct http_req *rq)
{
    struct db *db = http_db(rq);
    if (!db)
        return;
    struct production_progress p;
    struct production_hour hours[PRODUCTION_HOURS];
    long at_risk = 0;
    int rc = production_progress(db, 60, &p);
    if (!rc)
        rc = production_hourly(db, hours);
    if (!rc)
        rc = requests_at_risk_count(db, time(NULL), &at_risk);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return;
    }
    json_t *hourly = json_array();
    for (int i = 0; i < PRODUCTION_HOURS; i++)
        json_array_append_new(hourly, json_pack("{s:s, s:I, s:I}", "hour", hours[i].start,
                                                "produced", (json_int_t)hours[i].produced,
                                                "spoiled", (json_int_t)hours[i].spoiled));
    http_json(rq, 200,
              json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "waiting", (json_int_t)p.waiting,
                        "held", (json_int_t)p.held, "in_production", (json_int_t)p.in_production,
                        "produced_today", (json_int_t)p.produced_today, "spoiled_today",
                        (json_int_t)p.spoiled_today, "at_risk", (json_int_t)at_risk, "hourly",
                        hourly));
}

void production_at_risk(struct http_req *rq)
{
    struct db *db = http_db(rq);
    if (!db)
        return;
    struct db_res *res = NULL;
    char cutoff[11];
    int rc = requests_at_risk(db, time(NULL), cutoff, &res);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return;
    }
    json_t *items = json_array();
    for (size_t r = 0; r < db_rows(res); r++)
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:b}", "request_no",
                                        db_get(res, r, AT_RISK_COL_REQUEST_NO), "kind",
                                        db_get(res, r, AT_RISK_COL_KIND), "status",
                                        db_get(res, r, AT_RISK_COL_STATUS), "estimated_delivery",
                                        "earliest", db_get(res, r, AT_RISK_COL_EARLIEST), "latest",
                                        db_get(res, r, AT_RISK_COL_LATEST), "overdue",
                                        strcmp(db_get(res, r, AT_RISK_COL_OVERDUE), "t") == 0));
    db_res_free(res);
    http_json(rq, 200, json_pack("{s:s, s:o}", "cutoff", cutoff, "items", items));
}
