/* store_parcel.c — the parcel aggregate (see store_parcel.h).
 *
 * Each courier event is applied in its own transaction, with its parcel and
 * request locked: the event is stored (unique by courier and event_id, which
 * makes repeats harmless), joins the request's history, and the parcel's
 * state is recomputed from all of its events, so that arrival order does not
 * matter. A change of status goes through request_apply(). */
#include "store_parcel.h"
#include "calendar.h"
#include "db.h"
#include "ids.h"
#include "log.h"
#include "parcel.h"
#include "refdata.h"
#include "store_request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APPLY_TRIES 3

/* ---- dispatch ---- */

/* The requests named, locked in id order (so two dispatches never
 * deadlock); *res: request_no, id (NULL when unknown), status, position. */
static int lock_requests(struct db *db, const char *nos, struct db_res **res)
{
    int rc = db_query(db, NULL,
                      "SELECT id FROM requests WHERE request_no IN"
                      " (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY id FOR UPDATE",
                      nos);
    if (!rc)
        rc = db_query(db, res,
                      "SELECT q.no, r.id, r.status, q.ord FROM jsonb_array_elements_text($1::jsonb)"
                      " WITH ORDINALITY AS q(no, ord)"
                      " LEFT JOIN requests r ON r.request_no = q.no ORDER BY q.ord",
                      nos);
    return rc;
}

/* Every request must exist and be produced. Returns 0, -ENOENT or -EPERM. */
static int check_dispatchable(struct db_res *res, struct dispatch_result *out)
{
    out->unknown = json_array();
    out->not_produced = json_array();
    for (size_t i = 0; i < db_rows(res); i++) {
        if (db_is_null(res, i, 1)) {
            char field[40];
            snprintf(field, sizeof(field), "request_nos[%ld]", db_get_long(res, i, 3, 1) - 1);
            json_array_append_new(out->unknown,
                                  json_pack("{s:s, s:s}", "field", field, "code", "unknown"));
        } else if (strcmp(db_get(res, i, 2), "produced") != 0) {
            json_array_append_new(out->not_produced,
                                  json_pack("{s:s, s:s}", "request_no", db_get(res, i, 0), "status",
                                            db_get(res, i, 2)));
        }
    }
    if (json_array_size(out->unknown) > 0)
        return -ENOENT;
    return json_array_size(out->not_produced) > 0 ? -EPERM : 0;
}

/* One request handed over under a new tracking number. */
static int dispatch_one(struct db *db, const char *dispatch_id, const char *courier_id,
                        const char *courier_name, const char *request_id, const char *request_no,
                        const char *actor, json_t *items)
{
    struct db_res *sres = NULL;
    char tracking_no[14];
    int rc = db_query(db, &sres, "SELECT nextval($1::regclass)", "tracking_serial");
    long serial = rc ? 0 : db_get_long(sres, 0, 0, 0);
    db_res_free(sres);
    if (!rc && s10_format(DISPATCH_TRACKING_PREFIX, serial, tracking_no) != 0)
        rc = -ERANGE;
    if (rc)
        return rc;
    rc = db_query(db, NULL,
                  "INSERT INTO parcels (tracking_no, dispatch_id, courier_id, request_id)"
                  " VALUES ($1, $2::bigint, $3::bigint, $4::bigint)",
                  tracking_no, dispatch_id, courier_id, request_id);
    json_t *dj = json_pack("{s:s, s:s}", "tracking_no", tracking_no, "courier", courier_name);
    char *detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);
    if (!rc && !detail)
        rc = -ENOMEM;
    const struct change ch = { .actor = actor, .detail_json = detail };
    if (!rc)
        rc = request_apply(db, request_id, "dispatch", &ch);
    free(detail);
    json_array_append_new(
        items, json_pack("{s:s, s:s}", "request_no", request_no, "tracking_no", tracking_no));
    return rc;
}

int parcel_dispatch(struct db *db, const char *courier_id, const char *courier_name,
                    const char *request_nos_json, const char *actor, struct dispatch_result *out)
{
    struct db_res *res = NULL, *dres = NULL;
    memset(out, 0, sizeof(*out));
    int rc = db_begin(db);
    if (!rc)
        rc = lock_requests(db, request_nos_json, &res);
    if (!rc)
        rc = check_dispatchable(res, out);
    if (!rc)
        rc = db_query(db, &dres,
                      "INSERT INTO dispatches (courier_id, created_by) VALUES ($1::bigint, $2)"
                      " RETURNING id",
                      courier_id, actor);
    if (!rc)
        snprintf(out->dispatch_id, sizeof(out->dispatch_id), "%s", db_get(dres, 0, 0));
    out->items = json_array();
    /* In the order the caller listed. */
    for (size_t i = 0; !rc && i < db_rows(res); i++)
        rc = dispatch_one(db, out->dispatch_id, courier_id, courier_name, db_get(res, i, 1),
                          db_get(res, i, 0), actor, out->items);
    if (!rc)
        rc = db_commit(db);
    db_rollback(db);
    db_res_free(res);
    db_res_free(dres);
    return rc;
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

int parcel_view(struct db *db, const char *parcel_id, json_t *obj)
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

/* One id from a one-column look-up: 0, -ENOENT or a DB_* code. */
static int one_id(struct db_res *res, int rc, char id[24])
{
    if (!rc && db_rows(res) != 1)
        rc = -ENOENT;
    if (!rc)
        snprintf(id, 24, "%s", db_get(res, 0, 0));
    db_res_free(res);
    return rc;
}

int parcel_courier_of_token(struct db *db, long token_id, char id[24])
{
    struct db_res *res = NULL;
    char tid[24];
    snprintf(tid, sizeof(tid), "%ld", token_id);
    int rc = db_query(db, &res, "SELECT id FROM couriers WHERE token_id = $1::bigint", tid);
    return one_id(res, rc, id);
}

int parcel_courier_by_name(struct db *db, const char *name, char id[24])
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res, "SELECT id FROM couriers WHERE name = $1", name);
    return one_id(res, rc, id);
}

int parcel_find(struct db *db, const char *tracking_no, const char *courier_id, char parcel_id[24])
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT id FROM parcels WHERE tracking_no = $1 AND courier_id = $2::bigint",
                      tracking_no, courier_id);
    return one_id(res, rc, parcel_id);
}

/* ---- applying one event ---- */

/* The branch's deadline for collecting a card ready at ready_at. */
static int collect_deadline(struct db *db, time_t ready_at, int days, char out[11])
{
    long from = riyadh_day(ready_at), holidays[400];
    int n = refdata_holidays_after(db, from, holidays, 400);
    if (n < 0)
        return n;
    date_format(add_working_days(from, days, holidays, (size_t)n), out);
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

static char *event_detail(const struct courier_event *ev, const struct parcel_state *st,
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

/* The parcel and its request, locked, as stored before the event. */
struct stored {
    char parcel_id[24], request_id[24], status[32], branch[33], collect_by[11];
    int failed;
    bool before_dispatch;
};

static int lock_parcel(struct db *db, const char *courier_id, const struct courier_event *ev,
                       struct stored *p)
{
    struct db_res *res = NULL;
    char skew[16];
    snprintf(skew, sizeof(skew), "%d", PARCEL_FUTURE_SKEW_S);
    int rc = db_query(db, &res,
                      "SELECT p.id, p.request_id, r.status, p.failed_attempts, p.branch_id,"
                      " to_char(p.collect_by, 'YYYY-MM-DD'),"
                      " $3::timestamptz < p.created_at - make_interval(secs => $4::integer)"
                      " FROM parcels p JOIN requests r ON r.id = p.request_id"
                      " WHERE p.tracking_no = $1 AND p.courier_id = $2::bigint FOR UPDATE OF p, r",
                      ev->tracking_no, courier_id, ev->at_text, skew);
    if (!rc && db_rows(res) != 1)
        rc = -ENOENT;
    if (!rc) {
        snprintf(p->parcel_id, sizeof(p->parcel_id), "%s", db_get(res, 0, 0));
        snprintf(p->request_id, sizeof(p->request_id), "%s", db_get(res, 0, 1));
        snprintf(p->status, sizeof(p->status), "%s", db_get(res, 0, 2));
        p->failed = (int)db_get_long(res, 0, 3, 0);
        snprintf(p->branch, sizeof(p->branch), "%s", db_get(res, 0, 4) ? db_get(res, 0, 4) : "");
        snprintf(p->collect_by, sizeof(p->collect_by), "%s",
                 db_get(res, 0, 5) ? db_get(res, 0, 5) : "");
        p->before_dispatch = strcmp(db_get(res, 0, 6), "t") == 0;
    }
    db_res_free(res);
    return rc;
}

/* Stores the event; event_row (24 bytes) receives its id. -EEXIST when the
 * same event was sent twice at once. */
static int insert_event(struct db *db, const char *courier_id, const struct courier_event *ev,
                        const char *parcel_id, char event_row[24])
{
    struct db_res *ins = NULL;
    int rc =
        db_query(db, &ins,
                 "INSERT INTO courier_events (courier_id, event_id, parcel_id, code, at, reason,"
                 " location, moved_status) VALUES ($1::bigint, $2, $3::bigint, $4, $5::timestamptz,"
                 " $6, $7, false) ON CONFLICT (courier_id, event_id) DO NOTHING RETURNING id",
                 courier_id, ev->event_id, parcel_id, parcel_code_name(ev->code), ev->at_text,
                 ev->reason, ev->location);
    if (!rc && db_rows(ins) != 1)
        rc = -EEXIST;
    if (!rc)
        snprintf(event_row, 24, "%s", db_get(ins, 0, 0));
    db_res_free(ins);
    return rc;
}

/* What all of the parcel's events say now: its state, the branch it goes
 * to (33 bytes) and the collection deadline (11 bytes), "" when none. */
static int work_out(struct db *db, const struct stored *p, const struct parcel_rules *rules,
                    const struct courier_event *ev, struct parcel_state *st, char branch_id[33],
                    char collect_by[11])
{
    int rc = recompute(db, p->parcel_id, rules->max_failed, true, st);
    if (!rc && st->needs_branch) {
        if (p->branch[0]) {
            snprintf(branch_id, 33, "%s", p->branch);
        } else {
            rc = branch_nearest(db, p->request_id, branch_id);
            if (rc == -ENOENT) {
                log_error("parcel %s must go to a branch but no active branch hands over cards",
                          ev->tracking_no);
                rc = recompute(db, p->parcel_id, rules->max_failed, false, st);
            }
        }
    }
    if (!rc && strcmp(st->status, "ready_for_collection") == 0)
        rc = collect_deadline(db, st->ready_at, rules->collection_days, collect_by);
    return rc;
}

/* Moves the parcel and its request to st. *moved says whether anything
 * of them changed. */
static int move(struct db *db, const struct stored *p, const struct courier_event *ev,
                const struct parcel_state *st, const char *branch_id, const char *collect_by,
                const char *detail, const struct parcel_rules *rules, const char *event_row,
                bool *moved)
{
    int rc = 0;
    bool status_changed = strcmp(st->status, p->status) != 0;
    *moved = status_changed || st->failed_attempts != p->failed ||
             strcmp(branch_id, p->branch) != 0 || strcmp(collect_by, p->collect_by) != 0;
    /* The parcel first: the status change's callback tells its delivery. */
    if (!rc && *moved) {
        char failed[16];
        snprintf(failed, sizeof(failed), "%d", st->failed_attempts);
        rc = db_query(db, NULL,
                      "UPDATE parcels SET failed_attempts = $2::integer, branch_id = $3,"
                      " collect_by = $4::date WHERE id = $1::bigint",
                      p->parcel_id, failed, branch_id[0] ? branch_id : NULL,
                      collect_by[0] ? collect_by : NULL);
    }
    if (!rc && status_changed) {
        char at[21];
        if (st->status_at)
            timestamp_format(st->status_at, at);
        const char *event = request_courier_event(st->status);
        const struct change ch = { .actor = rules->actor,
                                   .at = st->status_at ? at : NULL,
                                   .detail_json = detail };
        rc = event ? request_apply(db, p->request_id, event, &ch) : -EPERM;
        if (!rc && strcmp(st->status, "redirected_to_branch") == 0)
            log_info("parcel %s goes back to branch %s after %d failed attempts", ev->tracking_no,
                     branch_id, st->failed_attempts);
    }
    if (!rc && *moved)
        rc = db_query(db, NULL,
                      "UPDATE courier_events SET moved_status = true WHERE id = $1::bigint",
                      event_row);
    return rc;
}

/* The event, once stored: its history entry, the move, the parcel's time. */
static int apply_stored(struct db *db, const struct stored *p, const struct courier_event *ev,
                        const struct parcel_rules *rules, const char *event_row, bool *moved)
{
    struct parcel_state st;
    char branch_id[33] = "", collect_by[11] = "";
    *moved = false;
    int rc = work_out(db, p, rules, ev, &st, branch_id, collect_by);
    if (rc)
        return rc;
    char *detail = event_detail(ev, &st, branch_id[0] ? branch_id : NULL);
    if (!detail)
        return -ENOMEM;
    const struct change ch = { .actor = rules->actor, .at = ev->at_text, .detail_json = detail };
    rc = request_note(db, p->request_id, &ch);
    if (!rc && !is_final(p->status))
        rc = move(db, p, ev, &st, branch_id, collect_by, detail, rules, event_row, moved);
    if (!rc)
        rc = db_query(db, NULL,
                      "UPDATE parcels SET last_event_at = greatest(last_event_at, $2::timestamptz)"
                      " WHERE id = $1::bigint",
                      p->parcel_id, ev->at_text);
    free(detail);
    return rc;
}

/* Whether the courier sent this event before; parcel_id is its parcel. */
static int seen_before(struct db *db, const char *courier_id, const char *event_id,
                       char parcel_id[24])
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT parcel_id FROM courier_events WHERE courier_id = $1::bigint"
                      " AND event_id = $2",
                      courier_id, event_id);
    return one_id(res, rc, parcel_id);
}

/* One transaction for one event. */
static enum parcel_result apply_once(struct db *db, const char *courier_id,
                                     const struct courier_event *ev,
                                     const struct parcel_rules *rules, char parcel_id[24],
                                     int *rc_out)
{
    struct stored p;
    char event_row[24];
    bool moved = false;
    parcel_id[0] = '\0';
    int rc = seen_before(db, courier_id, ev->event_id, parcel_id);
    if (rc == 0)
        return PARCEL_DUPLICATE;
    if (rc == -ENOENT)
        rc = db_begin(db);
    if (!rc)
        rc = lock_parcel(db, courier_id, ev, &p);
    if (!rc)
        snprintf(parcel_id, 24, "%s", p.parcel_id);
    if (!rc && p.before_dispatch)
        rc = -EDOM;
    if (!rc)
        rc = insert_event(db, courier_id, ev, p.parcel_id, event_row);
    if (!rc)
        rc = apply_stored(db, &p, ev, rules, event_row, &moved);
    if (!rc)
        rc = db_commit(db);
    db_rollback(db);
    switch (rc) {
    case 0:
        return moved ? PARCEL_APPLIED : PARCEL_RECORDED;
    case -ENOENT:
        return PARCEL_NOT_FOUND;
    case -EDOM:
        return PARCEL_BEFORE_DISPATCH;
    case -EEXIST: /* the same event, sent twice at once */
        return PARCEL_DUPLICATE;
    default:
        *rc_out = rc;
        return PARCEL_FAILED;
    }
}

enum parcel_result parcel_apply_event(struct db *db, const char *courier_id,
                                      const struct courier_event *ev,
                                      const struct parcel_rules *rules, char parcel_id[24], int *rc)
{
    enum parcel_result o = PARCEL_FAILED;
    for (int tries = 0; tries < APPLY_TRIES; tries++) {
        *rc = 0;
        o = apply_once(db, courier_id, ev, rules, parcel_id, rc);
        if (o != PARCEL_FAILED || *rc != DB_ERETRY)
            break;
    }
    return o;
}

/* ---- handover ---- */

int parcel_hand_over(struct db *db, const char *branch_id, const char *request_no,
                     const char *national_id, const char *actor, char status[32])
{
    struct db_res *res = NULL;
    char *detail = NULL;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &res,
                      "SELECT r.id, r.status, p.id, p.branch_id, r.national_id = $2"
                      " FROM requests r LEFT JOIN parcels p ON p.request_id = r.id"
                      " WHERE r.request_no = $1 FOR UPDATE OF r",
                      request_no, national_id);
    if (rc)
        goto out;
    /* An unknown request and a national ID that does not match are the
     * same answer, so a branch cannot probe whose request a number is. */
    if (db_rows(res) != 1 || strcmp(db_get(res, 0, 4), "t") != 0) {
        rc = -ENOENT;
        goto out;
    }
    snprintf(status, 32, "%s", db_get(res, 0, 1));
    const char *at = db_get(res, 0, 3);
    if (!at || strcmp(at, branch_id) != 0)
        rc = -EXDEV;
    else if (strcmp(status, "collected") == 0)
        rc = -EALREADY;
    else if (strcmp(status, "ready_for_collection") != 0)
        rc = -EPERM;
    if (rc)
        goto out;
    json_t *dj = json_pack("{s:s}", "branch_id", branch_id);
    detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);
    rc = detail ? 0 : -ENOMEM;
    if (!rc)
        rc = db_query(
            db, NULL,
            "UPDATE parcels SET collected_at = now(), collected_by = $2 WHERE id = $1::bigint",
            db_get(res, 0, 2), actor);
    const struct change ch = { .actor = actor, .detail_json = detail };
    if (!rc)
        rc = request_apply(db, db_get(res, 0, 0), "hand_over", &ch);
    if (!rc)
        rc = db_commit(db);
out:
    db_rollback(db);
    db_res_free(res);
    free(detail);
    return rc;
}
