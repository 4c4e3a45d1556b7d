/* courier.c — courier events and parcels (see courier.h and parcel.h).
 *
 * Each event is applied in its own transaction, with its parcel and request
 * locked: the event is stored (unique by courier and event_id, which makes
 * repeats harmless), joins the request's history, and the parcel's state is
 * recomputed from all of its events, so that arrival order does not matter.
 * A change of status goes through journal_status (history + notification). */
#include "courier.h"
#include "app.h"
#include "branch.h"
#include "calendar.h"
#include "db.h"
#include "ids.h"
#include "journal.h"
#include "log.h"
#include "parcel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_FUTURE_SKEW_S 300
#define MAX_LOCATION        200
#define APPLY_TRIES         3

/* BEFORE_DISPATCH is answered as INVALID: a scan from before the card was
 * handed over (beyond the clock skew allowed) cannot be true. */
enum outcome {
    APPLIED,
    RECORDED,
    DUPLICATE,
    NOT_FOUND,
    INVALID,
    FAILED,
    BEFORE_DISPATCH
};

static const char *const outcome_names[] = {
    [APPLIED] = "applied",         [RECORDED] = "recorded", [DUPLICATE] = "duplicate",
    [NOT_FOUND] = "not_found",     [INVALID] = "invalid",   [FAILED] = "error",
    [BEFORE_DISPATCH] = "invalid",
};

struct event_in {
    const char *event_id;
    const char *tracking_no;
    const char *reason;
    const char *location;
    int code;
    time_t at;
    char at_text[21];
};

static void field_error(json_t *errors, const char *prefix, const char *field, const char *code)
{
    char name[96];
    snprintf(name, sizeof(name), "%s%s", prefix, field);
    json_array_append_new(errors, json_pack("{s:s, s:s}", "field", name, "code", code));
}

/* A string member: NULL when absent or null (required says whether that is
 * an error), else its text if it is a string of 1..maxlen bytes. */
static const char *string_member(json_t *obj, const char *key, size_t maxlen, bool required,
                                 const char *prefix, json_t *errors)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            field_error(errors, prefix, key, "required");
        return NULL;
    }
    if (!json_is_string(v)) {
        field_error(errors, prefix, key, "type");
        return NULL;
    }
    size_t n = json_string_length(v);
    if (n == 0) {
        field_error(errors, prefix, key, "required");
        return NULL;
    }
    if (n > maxlen || strlen(json_string_value(v)) != n) {
        field_error(errors, prefix, key, "length");
        return NULL;
    }
    return json_string_value(v);
}

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

/* Checks one event; fills ev. Returns the number of failing fields. */
static int event_validate(json_t *obj, const char *prefix, time_t now, struct event_in *ev,
                          json_t *errors)
{
    static const char *const reasons[] = { "no_one_home", "address_not_found", "refused", "other" };
    size_t before = json_array_size(errors);
    memset(ev, 0, sizeof(*ev));
    ev->code = -1;
    if (!json_is_object(obj)) {
        json_array_append_new(
            errors, json_pack("{s:s, s:s}", "field", prefix[0] ? prefix : "event", "code", "type"));
        return 1;
    }
    ev->event_id = string_member(obj, "event_id", 64, true, prefix, errors);
    if (ev->event_id && !printable_ascii(ev->event_id)) {
        field_error(errors, prefix, "event_id", "format");
        ev->event_id = NULL;
    }
    ev->tracking_no = string_member(obj, "tracking_no", 13, true, prefix, errors);
    if (ev->tracking_no && !s10_valid(ev->tracking_no))
        field_error(errors, prefix, "tracking_no", "format");
    const char *code = string_member(obj, "code", 32, true, prefix, errors);
    if (code && (ev->code = parcel_code_parse(code)) < 0)
        field_error(errors, prefix, "code", "enum");
    const char *at = string_member(obj, "at", 40, true, prefix, errors);
    if (at && timestamp_parse(at, &ev->at) != 0)
        field_error(errors, prefix, "at", "format");
    else if (at && ev->at > now + EVENT_FUTURE_SKEW_S)
        field_error(errors, prefix, "at", "future");
    else if (at)
        timestamp_format(ev->at, ev->at_text);
    ev->reason = string_member(obj, "reason", 32, false, prefix, errors);
    if (ev->reason) {
        bool known = false;
        for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
            known |= strcmp(ev->reason, reasons[i]) == 0;
        if (!known)
            field_error(errors, prefix, "reason", "enum");
    }
    ev->location = string_member(obj, "location", MAX_LOCATION, false, prefix, errors);
    return (int)(json_array_size(errors) - before);
}

/* ---- the parcel as the courier sees it ---- */

static const char *action_for(const char *status)
{
    if (strcmp(status, "redirected_to_branch") == 0)
        return "return_to_branch";
    if (strcmp(status, "dispatched") == 0 || strcmp(status, "in_transit") == 0 ||
        strcmp(status, "out_for_delivery") == 0 || strcmp(status, "delivery_failed") == 0)
        return "deliver";
    return "none";
}

/* Adds tracking_no, status, failed_attempts, action, branch and collect_by
 * of a parcel to obj. Returns 0 or a negative code. */
static int parcel_view(struct db *db, const char *parcel_id, json_t *obj)
{
    struct db_res *res = NULL;
    int rc =
        db_query(db, &res,
                 "SELECT p.tracking_no, r.status, p.failed_attempts, p.branch_id,"
                 " to_char(p.collect_by, 'YYYY-MM-DD')"
                 " FROM parcels p JOIN requests r ON r.id = p.request_id WHERE p.id = $1::bigint",
                 parcel_id);
    if (rc)
        return rc;
    if (db_rows(res) != 1) {
        db_res_free(res);
        return -ENOENT;
    }
    const char *status = db_get(res, 0, 1);
    json_t *branch = json_null();
    if (!db_is_null(res, 0, 3)) {
        json_decref(branch);
        branch = branch_describe(db, db_get(res, 0, 3), &rc);
    }
    if (!rc) {
        json_object_set_new(obj, "tracking_no", json_string(db_get(res, 0, 0)));
        json_object_set_new(obj, "status", json_string(status));
        json_object_set_new(obj, "failed_attempts", json_integer(db_get_long(res, 0, 2, 0)));
        json_object_set_new(obj, "action", json_string(action_for(status)));
        json_object_set_new(obj, "branch", branch);
        json_object_set_new(obj, "collect_by",
                            db_is_null(res, 0, 4) ? json_null() : json_string(db_get(res, 0, 4)));
    }
    db_res_free(res);
    return rc;
}

/* ---- applying one event ---- */

static int collect_deadline(struct db *db, time_t ready_at, int days, char out[11])
{
    long from = riyadh_day(ready_at), holidays[400];
    char from_text[11];
    date_format(from, from_text);
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT day - date '1970-01-01' FROM holidays WHERE day > $1::date"
                      " ORDER BY day LIMIT 400",
                      from_text);
    if (rc)
        return rc;
    size_t n = db_rows(res);
    for (size_t i = 0; i < n; i++)
        holidays[i] = db_get_long(res, i, 0, 0);
    db_res_free(res);
    date_format(add_working_days(from, days, holidays, n), out);
    return 0;
}

/* Loads every event of the parcel and works out its state. */
static int recompute(struct db *db, const char *parcel_id, int max_failed, bool branch_available,
                     struct parcel_state *st)
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT code, extract(epoch FROM at)::bigint, event_id FROM courier_events"
                      " WHERE parcel_id = $1::bigint",
                      parcel_id);
    if (rc)
        return rc;
    size_t n = db_rows(res);
    struct parcel_event *events = calloc(n ? n : 1, sizeof(*events));
    if (!events) {
        db_res_free(res);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        events[i].code = (enum parcel_code)parcel_code_parse(db_get(res, i, 0));
        events[i].at = (time_t)db_get_long(res, i, 1, 0);
        events[i].event_id = db_get(res, i, 2);
    }
    parcel_sort(events, n);
    parcel_fold(events, n, max_failed, branch_available, st);
    free(events);
    db_res_free(res);
    return 0;
}

/* States that courier events no longer touch at all. `delivered` is not
 * among them: the fold keeps it (nothing follows it) while late events still
 * settle the count of failed attempts, as they would have in order. */
static bool is_final(const char *status)
{
    return strcmp(status, "collected") == 0 || strcmp(status, "cancelled") == 0;
}

static char *event_detail(const struct event_in *ev, const struct parcel_state *st,
                          const char *branch_id)
{
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:i}", "tracking_no", ev->tracking_no, "event_id",
                  ev->event_id, "code", parcel_code_name(ev->code), "reason", ev->reason,
                  "location", ev->location, "failed_attempts", st ? st->failed_attempts : 0);
    if (d && branch_id)
        json_object_set_new(d, "branch_id", json_string(branch_id));
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    return text;
}

/* One transaction for one event. Returns the outcome; parcel_id receives
 * the parcel for the answer (empty when none). */
static enum outcome apply_once(struct http_req *rq, struct db *db, const char *courier_id,
                               const struct event_in *ev, char parcel_id[24], int *rc_out)
{
    struct db_res *res = NULL, *ins = NULL;
    char *detail = NULL;
    enum outcome result = FAILED;
    char request_id[24], stored_status[32], branch_id[33] = "", collect_by[11] = "";
    int rc;

    char skew[16];
    snprintf(skew, sizeof(skew), "%d", EVENT_FUTURE_SKEW_S);
    parcel_id[0] = '\0';
    rc = db_query(db, &res,
                  "SELECT parcel_id FROM courier_events WHERE courier_id = $1::bigint"
                  " AND event_id = $2",
                  courier_id, ev->event_id);
    if (rc)
        goto out;
    if (db_rows(res) == 1) {
        snprintf(parcel_id, 24, "%s", db_get(res, 0, 0));
        result = DUPLICATE;
        goto out;
    }
    db_res_free(res);
    res = NULL;

    rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &res,
                      "SELECT p.id, p.request_id, r.status, p.failed_attempts, p.branch_id,"
                      " to_char(p.collect_by, 'YYYY-MM-DD'),"
                      " $3::timestamptz < p.created_at - make_interval(secs => $4::integer)"
                      " FROM parcels p JOIN requests r ON r.id = p.request_id"
                      " WHERE p.tracking_no = $1 AND p.courier_id = $2::bigint FOR UPDATE OF p, r",
                      ev->tracking_no, courier_id, ev->at_text, skew);
    if (rc)
        goto out;
    if (db_rows(res) != 1) {
        result = NOT_FOUND;
        goto out;
    }
    snprintf(parcel_id, 24, "%s", db_get(res, 0, 0));
    if (strcmp(db_get(res, 0, 6), "t") == 0) {
        result = BEFORE_DISPATCH;
        goto out;
    }
    snprintf(request_id, sizeof(request_id), "%s", db_get(res, 0, 1));
    snprintf(stored_status, sizeof(stored_status), "%s", db_get(res, 0, 2));
    int stored_failed = (int)db_get_long(res, 0, 3, 0);
    const char *stored_branch = db_get(res, 0, 4);
    const char *stored_collect = db_get(res, 0, 5);

    rc =
        db_query(db, &ins,
                 "INSERT INTO courier_events (courier_id, event_id, parcel_id, code, at, reason,"
                 " location, moved_status) VALUES ($1::bigint, $2, $3::bigint, $4, $5::timestamptz,"
                 " $6, $7, false) ON CONFLICT (courier_id, event_id) DO NOTHING RETURNING id",
                 courier_id, ev->event_id, parcel_id, parcel_code_name(ev->code), ev->at_text,
                 ev->reason, ev->location);
    if (rc)
        goto out;
    if (db_rows(ins) != 1) { /* the same event, sent twice at once */
        result = DUPLICATE;
        goto out;
    }

    struct parcel_state st;
    int max_failed = rq->app->cfg->delivery_attempts;
    rc = recompute(db, parcel_id, max_failed, true, &st);
    if (!rc && st.needs_branch) {
        if (stored_branch) {
            snprintf(branch_id, sizeof(branch_id), "%s", stored_branch);
        } else {
            rc = branch_nearest(db, request_id, branch_id);
            if (rc == -ENOENT) {
                log_error("parcel %s must go to a branch but no active branch hands over cards",
                          ev->tracking_no);
                rc = recompute(db, parcel_id, max_failed, false, &st);
            }
        }
    }
    if (!rc && strcmp(st.status, "ready_for_collection") == 0)
        rc = collect_deadline(db, st.ready_at, rq->app->cfg->collection_days, collect_by);
    if (rc)
        goto out;

    bool moved = false;
    detail = event_detail(ev, &st, branch_id[0] ? branch_id : NULL);
    if (!detail) {
        rc = -ENOMEM;
        goto out;
    }
    rc = journal_event(db, request_id, rq->who.name, ev->at_text, detail);
    if (rc)
        goto out;
    if (!is_final(stored_status)) {
        bool status_changed = strcmp(st.status, stored_status) != 0;
        moved = status_changed || st.failed_attempts != stored_failed ||
                strcmp(branch_id, stored_branch ? stored_branch : "") != 0 ||
                strcmp(collect_by, stored_collect ? stored_collect : "") != 0;
        /* The parcel first: the status change's notification names the
         * branch and the last day to collect, and its callback tells its delivery. */
        if (!rc && moved) {
            char failed[16];
            snprintf(failed, sizeof(failed), "%d", st.failed_attempts);
            rc = db_query(db, NULL,
                          "UPDATE parcels SET failed_attempts = $2::integer, branch_id = $3,"
                          " collect_by = $4::date WHERE id = $1::bigint",
                          parcel_id, failed, branch_id[0] ? branch_id : NULL,
                          collect_by[0] ? collect_by : NULL);
        }
        if (!rc && status_changed) {
            char at[21];
            if (st.status_at)
                timestamp_format(st.status_at, at);
            rc = journal_status(db, request_id, st.status, rq->who.name, st.status_at ? at : NULL,
                                detail);
            if (!rc && strcmp(st.status, "redirected_to_branch") == 0)
                log_info("parcel %s goes back to branch %s after %d failed attempts",
                         ev->tracking_no, branch_id, st.failed_attempts);
        }
        if (!rc && moved)
            rc = db_query(db, NULL,
                          "UPDATE courier_events SET moved_status = true WHERE id = $1::bigint",
                          db_get(ins, 0, 0));
    }
    if (!rc)
        rc = db_query(db, NULL,
                      "UPDATE parcels SET last_event_at = greatest(last_event_at, $2::timestamptz)"
                      " WHERE id = $1::bigint",
                      parcel_id, ev->at_text);
    if (!rc)
        rc = db_commit(db);
    if (!rc)
        result = moved ? APPLIED : RECORDED;
out:
    if (result != APPLIED && result != RECORDED)
        db_rollback(db);
    if (result == FAILED)
        *rc_out = rc;
    free(detail);
    db_res_free(res);
    db_res_free(ins);
    return result;
}

/* Applies one valid event and builds its result object. */
static json_t *apply_event(struct http_req *rq, struct db *db, const char *courier_id,
                           const struct event_in *ev, const char *prefix, enum outcome *outcome)
{
    char parcel_id[24];
    int rc = 0;
    enum outcome o = FAILED;
    for (int tries = 0; tries < APPLY_TRIES; tries++) {
        rc = 0;
        o = apply_once(rq, db, courier_id, ev, parcel_id, &rc);
        if (o != FAILED || rc != DB_ERETRY)
            break;
    }
    json_t *r = json_pack("{s:s, s:s}", "event_id", ev->event_id, "result", outcome_names[o]);
    if (r && (o == APPLIED || o == RECORDED || o == DUPLICATE) && parcel_id[0]) {
        int vrc = parcel_view(db, parcel_id, r);
        if (vrc) {
            log_error("courier event %s: parcel view failed (%d)", ev->event_id, vrc);
            o = FAILED;
            json_object_set_new(r, "result", json_string(outcome_names[o]));
        }
    }
    if (r && o == BEFORE_DISPATCH) {
        char field[48];
        snprintf(field, sizeof(field), "%sat", prefix);
        json_object_set_new(r, "errors",
                            json_pack("[{s:s, s:s}]", "field", field, "code", "before_dispatch"));
    }
    if (o == FAILED)
        log_error("courier event %s failed: %s", ev->event_id, db_error_message(db));
    *outcome = o;
    return r;
}

/* The courier behind the token; answers and returns false when none. */
static bool courier_self(struct http_req *rq, struct db *db, char id[24])
{
    struct db_res *res = NULL;
    char tid[24];
    snprintf(tid, sizeof(tid), "%ld", rq->who.token_id);
    int rc = db_query(db, &res, "SELECT id FROM couriers WHERE token_id = $1::bigint", tid);
    bool ok = false;
    if (rc)
        http_internal_error(rq, db_error_message(db));
    else if (db_rows(res) != 1)
        http_problem(rq, 403, "forbidden", "Forbidden", "This token belongs to no courier.", NULL);
    else {
        snprintf(id, 24, "%s", db_get(res, 0, 0));
        ok = true;
    }
    db_res_free(res);
    return ok;
}

static void post_single(struct http_req *rq, struct db *db, const char *courier_id, time_t now)
{
    struct event_in ev;
    json_t *errors = json_array();
    if (event_validate(rq->json, "", now, &ev, errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid event", "One or more fields are invalid.",
                     errors);
        return;
    }
    json_decref(errors);
    enum outcome o;
    json_t *r = apply_event(rq, db, courier_id, &ev, "", &o);
    if (o == BEFORE_DISPATCH) {
        http_problem(rq, 422, "validation", "Invalid event",
                     "The event is dated before the card was dispatched.",
                     json_incref(json_object_get(r, "errors")));
        json_decref(r);
    } else if (o == NOT_FOUND) {
        http_problem(rq, 404, "not_found", "Not found",
                     "No parcel of this courier has this tracking number.", NULL);
        json_object_set_new(rq->reply, "event_id", json_string(ev.event_id));
        json_decref(r);
    } else if (o == FAILED || !r) {
        json_decref(r);
        http_internal_error(rq, "courier event not applied");
    } else {
        http_json(rq, 200, r);
    }
}

static void post_batch(struct http_req *rq, struct db *db, const char *courier_id, time_t now)
{
    json_t *events = json_object_get(rq->json, "events");
    const char *why = !json_is_array(events)                         ? "type"
                      : json_array_size(events) == 0                 ? "required"
                      : json_array_size(events) > COURIER_MAX_EVENTS ? "too_many"
                                                                     : NULL;
    if (why) {
        http_problem(rq, 422, "validation", "Invalid events", "The events list is invalid.",
                     json_pack("[{s:s, s:s}]", "field", "events", "code", why));
        return;
    }
    json_t *results = json_array();
    bool any_failed = false;
    size_t i;
    json_t *obj;
    json_array_foreach(events, i, obj)
    {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "events[%zu].", i);
        struct event_in ev;
        json_t *errors = json_array();
        json_t *r;
        if (event_validate(obj, prefix, now, &ev, errors) > 0) {
            const char *id =
                json_is_object(obj) ? json_string_value(json_object_get(obj, "event_id")) : NULL;
            r = json_pack("{s:s?, s:s, s:o}", "event_id", id && strlen(id) <= 64 ? id : NULL,
                          "result", outcome_names[INVALID], "errors", errors);
        } else {
            json_decref(errors);
            enum outcome o;
            r = apply_event(rq, db, courier_id, &ev, prefix, &o);
            any_failed |= o == FAILED;
        }
        if (!r)
            any_failed = true;
        else
            json_array_append_new(results, r);
    }
    if (any_failed) {
        http_problem(rq, 503, "unavailable", "Service unavailable",
                     "Some events could not be applied; send them again.", NULL);
        snprintf(rq->retry_after, sizeof(rq->retry_after), "5");
        json_object_set_new(rq->reply, "results", results);
        return;
    }
    http_json(rq, 200, json_pack("{s:o}", "results", results));
}

void courier_events_post(struct http_req *rq)
{
    struct db *db = http_db(rq);
    char courier_id[24];
    if (!db || !courier_self(rq, db, courier_id))
        return;
    time_t now = time(NULL);
    if (json_object_get(rq->json, "events"))
        post_batch(rq, db, courier_id, now);
    else
        post_single(rq, db, courier_id, now);
}

void courier_parcel_get(struct http_req *rq)
{
    const char *tracking_no = rq->param[0];
    struct db_res *res = NULL;
    char courier_id[24];
    struct db *db = http_db(rq);
    if (!db || !courier_self(rq, db, courier_id))
        return;
    int rc = 0;
    if (s10_valid(tracking_no))
        rc = db_query(db, &res,
                      "SELECT id FROM parcels WHERE tracking_no = $1 AND courier_id = $2::bigint",
                      tracking_no, courier_id);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
    } else if (db_rows(res) != 1) {
        http_problem(rq, 404, "not_found", "Not found",
                     "No parcel of this courier has this tracking number.", NULL);
    } else {
        json_t *obj = json_object();
        rc = obj ? parcel_view(db, db_get(res, 0, 0), obj) : -ENOMEM;
        if (rc) {
            json_decref(obj);
            http_internal_error(rq, "parcel view failed");
        } else {
            http_json(rq, 200, obj);
        }
    }
    db_res_free(res);
}

int courier_any(struct db *db, bool *any)
{
    struct db_res *res = NULL;
    int rc = db_exec(db, &res, "SELECT EXISTS (SELECT 1 FROM couriers)", 0, NULL);
    if (!rc)
        *any = db_rows(res) == 1 && strcmp(db_get(res, 0, 0), "t") == 0;
    db_res_free(res);
    return rc;
}
