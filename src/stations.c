/* stations.c — the HTTP handlers of the production floor: GET /v1/stations,
 * pause and resume, the queue, the release of a held request, the summary
 * and the requests at risk; the SQL is the store modules'. */
#include "stations.h"
#include "config.h"
#include "db.h"
#include "metrics.h"
#include "store_request.h"
#include "store_station.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    int rc = request_release_hold(db, rq->param[0], rq->who.name, reason, sizeof(reason));
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
