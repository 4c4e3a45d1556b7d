/* store_parcel.c — the parcel aggregate (see store_parcel.h).
 *
 * Each courier event is applied in its own transaction, with its parcel and
 * request locked: the event is stored (unique by courier and event_id, which
 * makes repeats harmless), joins the request's history, and the parcel's
 * state becomes what all of its events say, so that arrival order does not
 * matter. An event later than all the parcel's others (the usual case) moves
 * the stored state by one step of the fold (parcel_step); only a late or
 * out-of-order one reads the parcel's events to fold them all again. A change
 * of status goes through request_apply(). */
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

/* The view's members; branch (taken) NULL when none, collect_by NULL or "". */
static void view_set(json_t *obj, const char *tracking_no, const char *status, long failed,
                     json_t *branch, const char *collect_by)
{
    json_object_set_new(obj, "tracking_no", json_string(tracking_no));
    json_object_set_new(obj, "status", json_string(status));
    json_object_set_new(obj, "failed_attempts", json_integer(failed));
    json_object_set_new(obj, "action", json_string(action_for(status)));
    json_object_set_new(obj, "branch", branch ? branch : json_null());
    json_object_set_new(obj, "collect_by",
                        collect_by && collect_by[0] ? json_string(collect_by) : json_null());
}

/* The view from what is known of the parcel; branch_id and collect_by
 * NULL or "" when none. */
static int view_fill(struct db *db, const char *tracking_no, const char *status, long failed,
                     const char *branch_id, const char *collect_by, json_t *obj)
{
    int rc = 0;
    json_t *branch = NULL;
    if (branch_id && branch_id[0]) {
        branch = branch_describe(db, branch_id, &rc);
        if (rc || !branch) {
            json_decref(branch);
            return rc ? rc : -ENOMEM;
        }
    }
    view_set(obj, tracking_no, status, failed, branch, collect_by);
    return 0;
}

static const struct db_stmt parcel_view_stmt = {
    "parcel_view_stmt",
    "SELECT p.tracking_no, r.status, p.failed_attempts, p.branch_id,"
    " to_char(p.collect_by, 'YYYY-MM-DD')"
    " FROM parcels p JOIN requests r ON r.id = p.request_id WHERE p.id = $1::bigint",
    1,
};

int parcel_view(struct db *db, const char *parcel_id, json_t *obj)
{
    struct db_res *res = NULL;
    int rc = db_query_stmt(db, &res, &parcel_view_stmt, parcel_id);
    if (rc)
        return rc;
    if (db_rows(res) != 1)
        rc = -ENOENT;
    else
        rc = view_fill(db, db_get(res, 0, 0), db_get(res, 0, 1), db_get_long(res, 0, 2, 0),
                       db_get(res, 0, 3), db_get(res, 0, 4), obj);
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

/* ---- applying events ---- */

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

/* A parcel and its request, locked: as stored before the event, or, in a
 * batch, as the batch's events so far left it. */
struct stored {
    char parcel_id[24], request_id[24], status[32], branch[33], collect_by[11];
    char request_no[40], kind[20], phone[20];
    char seen[24]; /* the parcel of an earlier event with this event_id; "" when new */
    int failed;
    bool before_dispatch;
    bool folded;    /* status and failed are the fold of its events up to last_at */
    time_t last_at; /* its latest event's time; 0 when it has none */
};

/* Events of a parcel that are not stored yet (a batch's, so far). */
struct unstored {
    const struct parcel_event *events;
    size_t n;
};

static const struct db_stmt parcel_events_stmt = {
    "parcel_events_stmt",
    "SELECT code, extract(epoch FROM at)::bigint, event_id FROM courier_events"
    " WHERE parcel_id = $1::bigint",
    1,
};

/* Folds every stored event of the parcel, the unstored ones and ev: for an
 * event that comes before one already there, or a parcel whose stored
 * state is not its events' fold. */
static int fold_all(struct db *db, const struct stored *p, const struct unstored *more,
                    const struct courier_event *ev, int max_failed, bool branch_available,
                    struct parcel_state *st)
{
    struct db_res *res = NULL;
    int rc = db_query_stmt(db, &res, &parcel_events_stmt, p->parcel_id);
    if (rc)
        return rc;
    size_t n = db_rows(res), m = more ? more->n : 0;
    struct parcel_event *events = calloc(n + m + 1, sizeof(*events));
    if (!events) {
        db_res_free(res);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        events[i].code = (enum parcel_code)parcel_code_parse(db_get(res, i, 0));
        events[i].at = (time_t)db_get_long(res, i, 1, 0);
        events[i].event_id = db_get(res, i, 2);
    }
    if (m)
        memcpy(events + n, more->events, m * sizeof(*events));
    events[n + m] = (struct parcel_event){ (enum parcel_code)ev->code, ev->at, ev->event_id };
    parcel_sort(events, n + m + 1);
    parcel_fold(events, n + m + 1, max_failed, branch_available, st);
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

/* What one event does to its parcel. */
struct outcome {
    struct parcel_state st;
    char branch_id[33], collect_by[11]; /* "" when none */
    bool folded;         /* st is the fold of all its events with a branch available */
    bool final;          /* the parcel is past courier events: nothing of it changes */
    bool status_changed; /* the request moves to st.status */
    bool moved;          /* anything of the parcel or its request changes */
    json_t *detail;      /* the history entry's and the change's detail */
};

static json_t *event_detail(const struct courier_event *ev, const struct parcel_state *st,
                            const char *branch_id)
{
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:i}", "tracking_no", ev->tracking_no, "event_id",
                  ev->event_id, "code", parcel_code_name(ev->code), "reason", ev->reason,
                  "location", ev->location, "failed_attempts", st->failed_attempts);
    if (d && branch_id[0])
        json_object_set_new(d, "branch_id", json_string(branch_id));
    return d;
}

/* What the parcel's events say once ev joins them (and the unstored ones,
 * more): an event later than every other moves the stored state by one
 * step (parcel_step); any other is folded with all of them. */
static int work_out(struct db *db, const struct stored *p, const struct unstored *more,
                    const struct parcel_rules *rules, const struct courier_event *ev,
                    struct outcome *o)
{
    const struct parcel_event e = { (enum parcel_code)ev->code, ev->at, ev->event_id };
    struct parcel_state *st = &o->st;
    bool stepped = p->folded && ev->at > p->last_at;
    int rc = 0;
    memset(o, 0, sizeof(*o));
    o->folded = true;
    if (stepped) {
        *st = (struct parcel_state){ .status = p->status, .failed_attempts = p->failed };
        stepped = parcel_step(st, &e, rules->max_failed, true) == 0;
    }
    if (!stepped)
        rc = fold_all(db, p, more, ev, rules->max_failed, true, st);
    if (!rc && st->needs_branch) {
        if (p->branch[0]) {
            snprintf(o->branch_id, sizeof(o->branch_id), "%s", p->branch);
        } else {
            rc = branch_nearest(db, p->request_id, o->branch_id);
            if (rc == -ENOENT) {
                log_error("parcel %s must go to a branch but no active branch hands over cards",
                          ev->tracking_no);
                o->folded = false;
                rc = fold_all(db, p, more, ev, rules->max_failed, false, st);
            }
        }
    }
    /* A parcel that stays ready keeps its deadline (ready_at is known only
     * to a fold of all its events). */
    if (!rc && strcmp(st->status, "ready_for_collection") == 0) {
        if (st->ready_at)
            rc = collect_deadline(db, st->ready_at, rules->collection_days, o->collect_by);
        else
            snprintf(o->collect_by, sizeof(o->collect_by), "%s", p->collect_by);
    }
    if (rc)
        return rc;
    o->final = is_final(p->status);
    o->status_changed = !o->final && strcmp(st->status, p->status) != 0;
    o->moved = !o->final &&
               (o->status_changed || st->failed_attempts != p->failed ||
                strcmp(o->branch_id, p->branch) != 0 || strcmp(o->collect_by, p->collect_by) != 0);
    if (o->final) {
        /* Courier events no longer touch a final parcel: it keeps what it has. */
        st->status = p->status;
        st->failed_attempts = p->failed;
        snprintf(o->branch_id, sizeof(o->branch_id), "%s", p->branch);
        snprintf(o->collect_by, sizeof(o->collect_by), "%s", p->collect_by);
        o->folded = p->folded;
    }
    o->detail = event_detail(ev, st, o->branch_id);
    return o->detail ? 0 : -ENOMEM;
}

/* The request moved to o's status, through its transition table, as the
 * event's own change (dated when the status began). */
static int change_request(struct db *db, const struct stored *p, const struct outcome *o,
                          const char *detail, const struct parcel_rules *rules,
                          const char *tracking_no)
{
    char at[21];
    if (o->st.status_at)
        timestamp_format(o->st.status_at, at);
    const char *event = request_courier_event(o->st.status);
    const struct change ch = { .actor = rules->actor,
                               .at = o->st.status_at ? at : NULL,
                               .detail_json = detail };
    const struct request_row row = { p->request_id, p->status, p->request_no, p->kind, p->phone };
    int rc = event ? request_apply_locked(db, &row, event, &ch) : -EPERM;
    if (!rc && strcmp(o->st.status, "redirected_to_branch") == 0)
        log_info("parcel %s goes back to branch %s after %d failed attempts", tracking_no,
                 o->branch_id, o->st.failed_attempts);
    return rc;
}

/* The parcel's state after o, as the next event of a batch finds it. */
static void advance(struct stored *p, const struct courier_event *ev, const struct outcome *o)
{
    snprintf(p->status, sizeof(p->status), "%s", o->st.status);
    p->failed = o->st.failed_attempts;
    snprintf(p->branch, sizeof(p->branch), "%s", o->branch_id);
    snprintf(p->collect_by, sizeof(p->collect_by), "%s", o->collect_by);
    p->folded = o->folded;
    if (ev->at > p->last_at)
        p->last_at = ev->at;
}

/* Reads a locked parcel's row; cols from col. */
static void stored_read(struct db_res *res, size_t row, int col, struct stored *p)
{
    snprintf(p->parcel_id, sizeof(p->parcel_id), "%s", db_get(res, row, col));
    snprintf(p->request_id, sizeof(p->request_id), "%s", db_get(res, row, col + 1));
    snprintf(p->status, sizeof(p->status), "%s", db_get(res, row, col + 2));
    p->failed = (int)db_get_long(res, row, col + 3, 0);
    snprintf(p->branch, sizeof(p->branch), "%s",
             db_get(res, row, col + 4) ? db_get(res, row, col + 4) : "");
    snprintf(p->collect_by, sizeof(p->collect_by), "%s",
             db_get(res, row, col + 5) ? db_get(res, row, col + 5) : "");
    p->last_at = (time_t)db_get_long(res, row, col + 6, 0);
    p->folded = strcmp(db_get(res, row, col + 7), "t") == 0;
    snprintf(p->request_no, sizeof(p->request_no), "%s", db_get(res, row, col + 8));
    snprintf(p->kind, sizeof(p->kind), "%s", db_get(res, row, col + 9));
    snprintf(p->phone, sizeof(p->phone), "%s", db_get(res, row, col + 10));
}

/* The columns stored_read() reads, of parcels p joined with requests r. */
#define STORED_COLS                                                                             \
    " p.id, p.request_id, r.status, p.failed_attempts, p.branch_id,"                            \
    " to_char(p.collect_by, 'YYYY-MM-DD'), floor(extract(epoch FROM p.last_event_at))::bigint," \
    " p.state_folded, r.request_no, r.kind, r.phone"

/* ---- one event ---- */

static const struct db_stmt parcel_lock_stmt = {
    "parcel_lock_stmt",
    "WITH p AS (SELECT" STORED_COLS ","
    "  $3::timestamptz < p.created_at - make_interval(secs => $4::integer)"
    "  AS early FROM parcels p JOIN requests r ON r.id = p.request_id"
    "  WHERE p.tracking_no = $1 AND p.courier_id = $2::bigint"
    "  FOR UPDATE OF p, r)"
    " SELECT (SELECT parcel_id FROM courier_events"
    "  WHERE courier_id = $2::bigint AND event_id = $5), p.*"
    " FROM (SELECT 1) one LEFT JOIN p ON true",
    5,
};

/* Locks the parcel and its request, and says in the same statement whether
 * the courier sent this event before. -ENOENT when the courier has no such
 * parcel and the event is new. A concurrent copy of the same event that
 * commits while this waits for the lock is caught by the insert. */
static int lock_parcel(struct db *db, const char *courier_id, const struct courier_event *ev,
                       struct stored *p)
{
    struct db_res *res = NULL;
    char skew[16];
    snprintf(skew, sizeof(skew), "%d", PARCEL_FUTURE_SKEW_S);
    memset(p, 0, sizeof(*p));
    int rc = db_query_stmt(db, &res, &parcel_lock_stmt, ev->tracking_no, courier_id, ev->at_text,
                           skew, ev->event_id);
    if (rc)
        return rc;
    if (!db_is_null(res, 0, 0))
        snprintf(p->seen, sizeof(p->seen), "%s", db_get(res, 0, 0));
    if (db_is_null(res, 0, 1)) {
        db_res_free(res);
        return p->seen[0] ? 0 : -ENOENT;
    }
    stored_read(res, 0, 1, p);
    p->before_dispatch = strcmp(db_get(res, 0, 12), "t") == 0;
    db_res_free(res);
    return 0;
}

static const struct db_stmt parcel_store_event_stmt = {
    "parcel_store_event_stmt",
    "WITH e AS (INSERT INTO courier_events (courier_id, event_id, parcel_id, code, at, reason,"
    "  location, moved_status) VALUES ($1::bigint, $2, $3::bigint, $4, $5::timestamptz, $6,"
    "  $7, $8::boolean) ON CONFLICT (courier_id, event_id) DO NOTHING RETURNING id)"
    " UPDATE parcels SET failed_attempts = $9::integer, branch_id = $10,"
    "  collect_by = $11::date, last_event_at = greatest(last_event_at, $5::timestamptz),"
    "  state_folded = $12::boolean"
    " FROM e WHERE parcels.id = $3::bigint RETURNING e.id",
    12,
};

/* Stores the event and the parcel's new state in one statement. -EEXIST
 * when the same event was stored since the look-up (sent twice at once). */
static int store_event(struct db *db, const char *courier_id, const struct courier_event *ev,
                       const struct stored *p, const struct outcome *o)
{
    struct db_res *res = NULL;
    char nfailed[16];
    snprintf(nfailed, sizeof(nfailed), "%d", o->st.failed_attempts);
    int rc =
        db_query_stmt(db, &res, &parcel_store_event_stmt, courier_id, ev->event_id, p->parcel_id,
                      parcel_code_name(ev->code), ev->at_text, ev->reason, ev->location,
                      o->moved ? "true" : "false", nfailed, o->branch_id[0] ? o->branch_id : NULL,
                      o->collect_by[0] ? o->collect_by : NULL, o->folded ? "true" : "false");
    if (!rc && db_rows(res) != 1)
        rc = -EEXIST;
    db_res_free(res);
    return rc;
}

/* The event, on its locked parcel: stored with the parcel's new state, in
 * the request's history, and the request moved through request_apply_locked()
 * when its status changes (after the parcel: the change's callback tells
 * the delivery). view receives the parcel as the courier sees it after. */
static int apply_locked(struct db *db, const char *courier_id, const struct stored *p,
                        const struct courier_event *ev, const struct parcel_rules *rules,
                        json_t *view, bool *moved)
{
    struct outcome o;
    int rc = work_out(db, p, NULL, rules, ev, &o);
    char *detail = rc ? NULL : json_dumps(o.detail, JSON_COMPACT);
    json_decref(o.detail);
    if (rc || !detail)
        return rc ? rc : -ENOMEM;
    *moved = o.moved;
    rc = store_event(db, courier_id, ev, p, &o);
    const struct change note = { .actor = rules->actor, .at = ev->at_text, .detail_json = detail };
    if (!rc)
        rc = request_note(db, p->request_id, &note);
    if (!rc && o.status_changed)
        rc = change_request(db, p, &o, detail, rules, ev->tracking_no);
    free(detail);
    if (!rc && view)
        rc = view_fill(db, ev->tracking_no, o.st.status, o.st.failed_attempts, o.branch_id,
                       o.collect_by, view);
    return rc;
}

/* One transaction for one event. */
static enum parcel_result apply_once(struct db *db, const char *courier_id,
                                     const struct courier_event *ev,
                                     const struct parcel_rules *rules, json_t *view, int *rc_out)
{
    struct stored p;
    bool moved = false;
    char seen[24] = "";
    int rc = db_begin(db);
    if (!rc)
        rc = lock_parcel(db, courier_id, ev, &p);
    if (!rc && p.seen[0])
        rc = -EEXIST;
    if (!rc && p.before_dispatch)
        rc = -EDOM;
    if (!rc)
        rc = apply_locked(db, courier_id, &p, ev, rules, view, &moved);
    if (!rc)
        rc = db_commit(db);
    db_rollback(db);
    if (rc == -EEXIST)
        snprintf(seen, sizeof(seen), "%s", p.seen[0] ? p.seen : p.parcel_id);
    switch (rc) {
    case 0:
        return moved ? PARCEL_APPLIED : PARCEL_RECORDED;
    case -ENOENT:
        return PARCEL_NOT_FOUND;
    case -EDOM:
        return PARCEL_BEFORE_DISPATCH;
    case -EEXIST: /* sent before, or twice at once: the parcel as it is now */
        rc = 0;
        if (view) {
            json_object_clear(view);
            rc = parcel_view(db, seen, view);
        }
        if (!rc)
            return PARCEL_DUPLICATE;
        /* fall through */
    default:
        *rc_out = rc;
        return PARCEL_FAILED;
    }
}

enum parcel_result parcel_apply_event(struct db *db, const char *courier_id,
                                      const struct courier_event *ev,
                                      const struct parcel_rules *rules, json_t *view, int *rc)
{
    enum parcel_result o = PARCEL_FAILED;
    for (int tries = 0; tries < APPLY_TRIES; tries++) {
        *rc = 0;
        if (view)
            json_object_clear(view);
        o = apply_once(db, courier_id, ev, rules, view, rc);
        if (o != PARCEL_FAILED || *rc != DB_ERETRY)
            break;
    }
    return o;
}

/* ---- a batch ---- */

/* A parcel of the batch: locked, as the batch's events so far left it. */
struct held {
    struct stored now;
    char tracking[14];
    double created_at; /* Unix seconds */
    int w_failed;      /* what its row holds now */
    char w_branch[33], w_collect_by[11];
    struct parcel_event *mine; /* the batch's events for it so far */
    size_t nmine;
    bool touched;
};

/* A status change, in the order the events made them. */
struct pending_change {
    struct held *h;
    struct stored before; /* the request as the change finds it */
    struct outcome o;     /* detail is the change's own reference */
    const char *tracking_no;
};

struct batch {
    struct held *held;
    size_t nheld;
    struct pending_change *changes;
    size_t nchanges;
    json_t *rows;     /* courier_events to insert */
    json_t *notes;    /* request_events without a status */
    json_t *inserted; /* event_ids the batch stores, so far */
    json_t *seen;     /* event_id -> parcel id of events stored before */
    json_t *branches; /* branch_id -> its description, read once */
};

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->nheld; i++)
        free(b->held[i].mine);
    free(b->held);
    for (size_t i = 0; i < b->nchanges; i++)
        json_decref(b->changes[i].o.detail);
    free(b->changes);
    json_decref(b->rows);
    json_decref(b->notes);
    json_decref(b->inserted);
    json_decref(b->seen);
    json_decref(b->branches);
    memset(b, 0, sizeof(*b));
}

static const struct db_stmt parcel_batch_lock_stmt = {
    "parcel_batch_lock_stmt",
    "SELECT" STORED_COLS ", extract(epoch FROM p.created_at), p.tracking_no"
    " FROM parcels p JOIN requests r ON r.id = p.request_id"
    " WHERE p.tracking_no IN (SELECT jsonb_array_elements_text($1::jsonb))"
    " AND p.courier_id = $2::bigint ORDER BY p.id FOR UPDATE OF p, r",
    2,
};

static const struct db_stmt parcel_batch_seen_stmt = {
    "parcel_batch_seen_stmt",
    "SELECT event_id, parcel_id FROM courier_events WHERE courier_id = $1::bigint"
    " AND event_id IN (SELECT jsonb_array_elements_text($2::jsonb))",
    2,
};

/* Locks the courier's parcels that the batch names, in id order (so that
 * two batches never deadlock), then reads which of its events were stored
 * before: after the locks, so that an event another call stored for one of
 * these parcels is seen. */
static int batch_lock(struct db *db, const char *courier_id, struct parcel_batch_item *items,
                      size_t n, struct batch *b)
{
    json_t *nos = json_array(), *ids = json_array();
    for (size_t i = 0; i < n; i++)
        if (items[i].ev) {
            json_array_append_new(nos, json_string(items[i].ev->tracking_no));
            json_array_append_new(ids, json_string(items[i].ev->event_id));
        }
    char *nos_text = json_dumps(nos, JSON_COMPACT), *ids_text = json_dumps(ids, JSON_COMPACT);
    struct db_res *res = NULL, *sres = NULL;
    int rc = nos_text && ids_text ? 0 : -ENOMEM;
    if (!rc)
        rc = db_query_stmt(db, &res, &parcel_batch_lock_stmt, nos_text, courier_id);
    if (!rc)
        rc = db_query_stmt(db, &sres, &parcel_batch_seen_stmt, courier_id, ids_text);
    if (!rc) {
        b->nheld = db_rows(res);
        b->held = calloc(b->nheld + 1, sizeof(*b->held));
        rc = b->held ? 0 : -ENOMEM;
    }
    for (size_t i = 0; !rc && i < b->nheld; i++) {
        struct held *h = &b->held[i];
        stored_read(res, i, 0, &h->now);
        h->created_at = strtod(db_get(res, i, 11), NULL);
        snprintf(h->tracking, sizeof(h->tracking), "%s", db_get(res, i, 12));
        h->w_failed = h->now.failed;
        snprintf(h->w_branch, sizeof(h->w_branch), "%s", h->now.branch);
        snprintf(h->w_collect_by, sizeof(h->w_collect_by), "%s", h->now.collect_by);
    }
    for (size_t i = 0; !rc && i < db_rows(sres); i++)
        json_object_set_new(b->seen, db_get(sres, i, 0), json_string(db_get(sres, i, 1)));
    db_res_free(res);
    db_res_free(sres);
    json_decref(nos);
    json_decref(ids);
    free(nos_text);
    free(ids_text);
    return rc;
}

/* The held parcel with this tracking number, or with this id; NULL when
 * the batch holds none (it holds only this courier's). */
static struct held *batch_parcel(struct batch *b, const char *tracking_no, const char *id)
{
    for (size_t i = 0; i < b->nheld; i++)
        if ((tracking_no && strcmp(b->held[i].tracking, tracking_no) == 0) ||
            (id && strcmp(b->held[i].now.parcel_id, id) == 0))
            return &b->held[i];
    return NULL;
}

/* The view of a held parcel as it is now; each branch is described once. */
static int batch_view(struct db *db, struct batch *b, const struct held *h, json_t *view)
{
    json_t *branch = NULL;
    if (h->now.branch[0]) {
        json_t *known = json_object_get(b->branches, h->now.branch);
        if (!known) {
            int rc = 0;
            known = branch_describe(db, h->now.branch, &rc);
            if (rc || !known) {
                json_decref(known);
                return rc ? rc : -ENOMEM;
            }
            json_object_set_new(b->branches, h->now.branch, known);
        }
        branch = json_deep_copy(known);
    }
    view_set(view, h->tracking, h->now.status, h->now.failed, branch, h->now.collect_by);
    return 0;
}

/* One event of the batch, worked out on its held parcel; what it writes is
 * queued for batch_write(). */
static int batch_event(struct db *db, struct batch *b, struct parcel_batch_item *it,
                       const struct parcel_rules *rules)
{
    const struct courier_event *ev = it->ev;
    json_t *seen = json_object_get(b->seen, ev->event_id);
    if (!seen)
        seen = json_object_get(b->inserted, ev->event_id);
    if (seen) {
        it->result = PARCEL_DUPLICATE;
        struct held *h = batch_parcel(b, NULL, json_string_value(seen));
        return h ? batch_view(db, b, h, it->view)
                 : parcel_view(db, json_string_value(seen), it->view);
    }
    struct held *h = batch_parcel(b, ev->tracking_no, NULL);
    if (!h) {
        it->result = PARCEL_NOT_FOUND;
        return 0;
    }
    if ((double)ev->at < h->created_at - PARCEL_FUTURE_SKEW_S) {
        it->result = PARCEL_BEFORE_DISPATCH;
        return 0;
    }
    struct outcome o;
    const struct unstored more = { h->mine, h->nmine };
    int rc = work_out(db, &h->now, &more, rules, ev, &o);
    if (rc)
        return rc;
    json_array_append_new(b->rows,
                          json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:b}", "event_id",
                                    ev->event_id, "parcel_id", h->now.parcel_id, "code",
                                    parcel_code_name(ev->code), "at", ev->at_text, "reason",
                                    ev->reason, "location", ev->location, "moved", o.moved));
    json_array_append_new(b->notes, json_pack("{s:s, s:s, s:O}", "request_id", h->now.request_id,
                                              "at", ev->at_text, "detail", o.detail));
    json_object_set_new(b->inserted, ev->event_id, json_string(h->now.parcel_id));
    struct parcel_event *mine = realloc(h->mine, (h->nmine + 1) * sizeof(*mine));
    if (!mine) {
        json_decref(o.detail);
        return -ENOMEM;
    }
    h->mine = mine;
    h->mine[h->nmine++] = (struct parcel_event){ (enum parcel_code)ev->code, ev->at, ev->event_id };
    if (o.status_changed) {
        struct pending_change *c = realloc(b->changes, (b->nchanges + 1) * sizeof(*c));
        if (!c) {
            json_decref(o.detail);
            return -ENOMEM;
        }
        b->changes = c;
        b->changes[b->nchanges++] =
            (struct pending_change){ .h = h, .before = h->now, .o = o, .tracking_no = h->tracking };
    } else {
        json_decref(o.detail);
    }
    advance(&h->now, ev, &o);
    h->touched = true;
    it->result = o.moved ? PARCEL_APPLIED : PARCEL_RECORDED;
    return batch_view(db, b, h, it->view);
}

static const struct db_stmt parcel_row_stmt = {
    "parcel_row_stmt",
    "UPDATE parcels SET failed_attempts = $2::integer, branch_id = $3,"
    " collect_by = $4::date WHERE id = $1::bigint",
    4,
};

/* The parcel's row as a change's callback must find it. */
static int batch_parcel_row(struct db *db, struct held *h, const struct outcome *o)
{
    if (h->w_failed == o->st.failed_attempts && strcmp(h->w_branch, o->branch_id) == 0 &&
        strcmp(h->w_collect_by, o->collect_by) == 0)
        return 0;
    char failed[16];
    snprintf(failed, sizeof(failed), "%d", o->st.failed_attempts);
    int rc = db_query_stmt(db, NULL, &parcel_row_stmt, h->now.parcel_id, failed,
                           o->branch_id[0] ? o->branch_id : NULL,
                           o->collect_by[0] ? o->collect_by : NULL);
    if (!rc) {
        h->w_failed = o->st.failed_attempts;
        snprintf(h->w_branch, sizeof(h->w_branch), "%s", o->branch_id);
        snprintf(h->w_collect_by, sizeof(h->w_collect_by), "%s", o->collect_by);
    }
    return rc;
}

static const struct db_stmt parcel_batch_events_stmt = {
    "parcel_batch_events_stmt",
    "INSERT INTO courier_events (courier_id, event_id, parcel_id, code, at,"
    " reason, location, moved_status)"
    " SELECT $1::bigint, x.event_id, x.parcel_id, x.code, x.at, x.reason,"
    " x.location, x.moved FROM ROWS FROM (jsonb_to_recordset($2::jsonb)"
    "  AS (event_id text, parcel_id bigint, code text, at timestamptz,"
    "  reason text, location text, moved boolean))"
    " WITH ORDINALITY AS x(event_id, parcel_id, code, at, reason, location,"
    "  moved, n) ORDER BY x.n"
    " ON CONFLICT (courier_id, event_id) DO NOTHING RETURNING id",
    2,
};

static const struct db_stmt parcel_batch_states_stmt = {
    "parcel_batch_states_stmt",
    "UPDATE parcels p SET failed_attempts = x.failed, branch_id = x.branch_id,"
    " collect_by = x.collect_by,"
    " last_event_at = greatest(p.last_event_at, to_timestamp(x.last_at)),"
    " state_folded = x.folded FROM jsonb_to_recordset($1::jsonb) AS x(id bigint,"
    " failed integer, branch_id text, collect_by date, last_at bigint,"
    " folded boolean) WHERE p.id = x.id",
    1,
};

/* One round of changes (at most one per request) through the request's
 * transition table, the rows of their parcels first as the changes'
 * callbacks must find them. */
static int batch_round(struct db *db, struct pending_change **round, size_t m,
                       const struct parcel_rules *rules)
{
    struct request_move *moves = calloc(m, sizeof(*moves));
    char(*ats)[21] = calloc(m, sizeof(*ats));
    char **details = calloc(m, sizeof(*details));
    int rc = moves && ats && details ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < m; i++) {
        const struct pending_change *c = round[i];
        details[i] = json_dumps(c->o.detail, JSON_COMPACT);
        if (c->o.st.status_at)
            timestamp_format(c->o.st.status_at, ats[i]);
        const char *event = request_courier_event(c->o.st.status);
        rc = !details[i] ? -ENOMEM : !event ? -EPERM : batch_parcel_row(db, c->h, &c->o);
        moves[i] = (struct request_move){ { c->before.request_id, c->before.status,
                                            c->before.request_no, c->before.kind, c->before.phone },
                                          event,
                                          { .actor = rules->actor,
                                            .at = c->o.st.status_at ? ats[i] : NULL,
                                            .detail_json = details[i] } };
    }
    if (!rc)
        rc = request_apply_many(db, moves, m);
    for (size_t i = 0; !rc && i < m; i++)
        if (strcmp(round[i]->o.st.status, "redirected_to_branch") == 0)
            log_info("parcel %s goes back to branch %s after %d failed attempts",
                     round[i]->tracking_no, round[i]->o.branch_id, round[i]->o.st.failed_attempts);
    for (size_t i = 0; details && i < m; i++)
        free(details[i]);
    free(details);
    free(ats);
    free(moves);
    return rc;
}

/* The batch's changes of status in rounds, in the order the events made
 * them: each parcel's first change, then its second, and so on. */
static int batch_changes(struct db *db, struct batch *b, const struct parcel_rules *rules)
{
    size_t n = b->nchanges;
    struct pending_change **round = calloc(n + 1, sizeof(*round));
    int rc = round ? 0 : -ENOMEM;
    for (size_t r = 0, m = 1; !rc && m > 0; r++) {
        m = 0;
        for (size_t i = 0; i < n; i++) {
            size_t earlier = 0;
            for (size_t j = 0; j < i; j++)
                earlier += b->changes[j].h == b->changes[i].h;
            if (earlier == r)
                round[m++] = &b->changes[i];
        }
        if (m)
            rc = batch_round(db, round, m, rules);
    }
    free(round);
    return rc;
}

/* Writes what the batch's events did: every new event in one statement,
 * their history entries in one, the changes of status in rounds (through
 * the request's transition table, a few statements a round), then every
 * parcel's state in one statement. -EEXIST when an event was stored meanwhile (sent
 * twice at once): the batch is worked out again. */
static int batch_write(struct db *db, const char *courier_id, struct batch *b,
                       const struct parcel_rules *rules)
{
    size_t nrows = json_array_size(b->rows);
    if (nrows == 0)
        return 0;
    struct db_res *res = NULL;
    char *rows = json_dumps(b->rows, JSON_COMPACT);
    int rc = rows ? 0 : -ENOMEM;
    if (!rc)
        rc = db_query_stmt(db, &res, &parcel_batch_events_stmt, courier_id, rows);
    free(rows);
    if (!rc && db_rows(res) != nrows)
        rc = -EEXIST;
    db_res_free(res);
    if (!rc)
        rc = request_notes(db, rules->actor, b->notes);
    if (!rc)
        rc = batch_changes(db, b, rules);
    json_t *states = json_array();
    for (size_t i = 0; states && i < b->nheld; i++) {
        const struct held *h = &b->held[i];
        if (h->touched)
            json_array_append_new(
                states,
                json_pack("{s:s, s:i, s:s?, s:s?, s:I, s:b}", "id", h->now.parcel_id, "failed",
                          h->now.failed, "branch_id", h->now.branch[0] ? h->now.branch : NULL,
                          "collect_by", h->now.collect_by[0] ? h->now.collect_by : NULL, "last_at",
                          (json_int_t)h->now.last_at, "folded", h->now.folded));
    }
    char *text = states ? json_dumps(states, JSON_COMPACT) : NULL;
    json_decref(states);
    if (!rc && !text)
        rc = -ENOMEM;
    if (!rc)
        rc = db_query_stmt(db, NULL, &parcel_batch_states_stmt, text);
    free(text);
    return rc;
}

/* One transaction for the whole batch. */
static int batch_once(struct db *db, const char *courier_id, struct parcel_batch_item *items,
                      size_t n, const struct parcel_rules *rules)
{
    struct batch b = { .rows = json_array(),
                       .notes = json_array(),
                       .inserted = json_object(),
                       .seen = json_object(),
                       .branches = json_object() };
    int rc = b.rows && b.notes && b.inserted && b.seen && b.branches ? 0 : -ENOMEM;
    if (!rc)
        rc = db_begin(db);
    if (!rc)
        rc = batch_lock(db, courier_id, items, n, &b);
    for (size_t i = 0; !rc && i < n; i++)
        if (items[i].ev)
            rc = batch_event(db, &b, &items[i], rules);
    if (!rc)
        rc = batch_write(db, courier_id, &b, rules);
    if (!rc)
        rc = db_commit(db);
    db_rollback(db);
    batch_free(&b);
    return rc;
}

int parcel_apply_batch(struct db *db, const char *courier_id, struct parcel_batch_item *items,
                       size_t n, const struct parcel_rules *rules)
{
    int rc = 0;
    for (int tries = 0; tries < APPLY_TRIES; tries++) {
        for (size_t i = 0; i < n; i++) {
            items[i].result = PARCEL_FAILED;
            if (items[i].view)
                json_object_clear(items[i].view);
        }
        rc = batch_once(db, courier_id, items, n, rules);
        if (rc != DB_ERETRY && rc != -EEXIST)
            break;
    }
    if (rc)
        for (size_t i = 0; i < n; i++) {
            items[i].result = PARCEL_FAILED;
            if (items[i].view)
                json_object_clear(items[i].view);
        }
    return rc;
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
