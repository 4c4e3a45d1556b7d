/* track.c — citizen tracking. It needs no account but both the request
 * number and the holder's national ID; an unknown request and a wrong ID
 * are answered alike, after the same work, and failures are rate-limited
 * per client address. Nothing private leaves: no full address, phone,
 * documents or card serial. */
#include "track.h"
#include "app.h"
#include "clientaddr.h"
#include "db.h"
#include "fields.h"
#include "parcel.h"
#include "ids.h"
#include "ratelimit.h"
#include "status.h"
#include "store_request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void track_mask_address(const char *city, const char *district, char *out, size_t len)
{
    snprintf(out, len, "%s, %s, ****", city ? city : "", district ? district : "");
}

static json_t *label(const char *status)
{
    const struct status_label *l = status_find(status);
    return json_pack("{s:s, s:s}", "ar", l ? l->ar : status, "en", l ? l->en : status);
}

static void not_found(struct http_req *rq)
{
    http_problem(rq, 404, "not_found", "Not found",
                 "No request matches this request number and national ID.", NULL);
}

static json_t *branch_json(struct db_res *res, int col)
{
    if (db_is_null(res, 0, col))
        return json_null();
    return json_pack("{s:s, s:{s:s, s:s}, s:s, s:f, s:f}", "branch_id", db_get(res, 0, col), "name",
                     "ar", db_get(res, 0, col + 2), "en", db_get(res, 0, col + 1), "city",
                     db_get(res, 0, col + 3), "lat", strtod(db_get(res, 0, col + 4), NULL), "lon",
                     strtod(db_get(res, 0, col + 5), NULL));
}

/* One entry of the timeline before it is ordered: a status change of the
 * request, or one courier event (status worked out by parcel_timeline). */
struct entry {
    long long at_us;
    int source; /* 0: a status change, 1: a courier event */
    size_t row;
    long long order; /* ties: the event's id, or the courier event's canonical rank */
    const char *status;
};

/* A courier event and its row, sorted together. */
struct courier_row {
    struct parcel_event ev; /* first, for parcel_event_cmp */
    size_t row;
};

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    if (a->at_us != b->at_us)
        return a->at_us < b->at_us ? -1 : 1;
    if (a->source != b->source)
        return a->source - b->source;
    return (a->order > b->order) - (a->order < b->order);
}

/* The citizen's timeline from the rows of request_tracking(): the
 * request's own status changes and every courier event of its parcel —
 * those that did not move the status too — ordered by `at`. The courier's
 * part is worked out from the set of events (parcel_timeline), never from
 * the order they arrived in, so a late, a shuffled or a repeated event
 * gives the same timeline as the same events sent in order. */
static int timeline_build(struct db_res *res, int max_failed, json_t **out)
{
    struct entry *entries = NULL;
    struct courier_row *rows = NULL;
    struct parcel_event *events = NULL;
    const char **statuses = NULL;
    int rc = 0;
    *out = NULL;
    size_t nrows = db_rows(res), n = 0, nev = 0;
    entries = calloc(nrows ? nrows : 1, sizeof(*entries));
    rows = calloc(nrows ? nrows : 1, sizeof(*rows));
    events = calloc(nrows ? nrows : 1, sizeof(*events));
    statuses = calloc(nrows ? nrows : 1, sizeof(*statuses));
    if (!entries || !rows || !events || !statuses) {
        rc = -ENOMEM;
        goto out;
    }
    bool branch_available = !db_is_null(res, 0, TRACK_COL_BRANCH);
    for (size_t i = 0; i < nrows; i++) {
        if (db_is_null(res, i, TRACK_COL_TL_SOURCE))
            continue; /* the one row of a request without a timeline */
        struct entry *e = &entries[n++];
        e->at_us = db_get_long(res, i, TRACK_COL_TL_AT_US, 0);
        e->source = (int)db_get_long(res, i, TRACK_COL_TL_SOURCE, 0);
        e->row = i;
        e->order = db_get_long(res, i, TRACK_COL_TL_ORDER, 0);
        e->status = db_get(res, i, TRACK_COL_TL_STATUS);
        if (e->source == 1) {
            int code = parcel_code_parse(e->status);
            rows[nev].ev.code = code < 0 ? PARCEL_CODE_COUNT : (enum parcel_code)code;
            rows[nev].ev.at = (time_t)(e->at_us / 1000000);
            rows[nev].ev.event_id = db_get(res, i, TRACK_COL_TL_EVENT_ID);
            rows[nev].row = n - 1; /* the entry's index */
            nev++;
        }
    }
    if (nev > 1)
        qsort(rows, nev, sizeof(*rows), parcel_event_cmp);
    for (size_t k = 0; k < nev; k++)
        events[k] = rows[k].ev;
    parcel_timeline(events, nev, max_failed, branch_available, statuses);
    for (size_t k = 0; k < nev; k++) {
        entries[rows[k].row].status = statuses[k];
        entries[rows[k].row].order = (long long)k;
    }
    qsort(entries, n, sizeof(*entries), entry_cmp);

    json_t *timeline = json_array();
    for (size_t i = 0; timeline && i < n; i++) {
        json_t *e = json_pack("{s:s, s:s, s:o}", "at", db_get(res, entries[i].row, TRACK_COL_TL_AT),
                              "status", entries[i].status, "label", label(entries[i].status));
        if (!e || json_array_append_new(timeline, e)) {
            json_decref(timeline);
            timeline = NULL;
        }
    }
    if (!timeline)
        rc = -ENOMEM;
    *out = timeline;
out:
    free(entries);
    free(rows);
    free(events);
    free(statuses);
    return rc;
}

/* The answer to a look-up that matched: the rows of request_tracking() and
 * the timeline (its reference is taken). */
static json_t *track_reply(struct db_res *res, json_t *timeline)
{
    char address[512];
    track_mask_address(db_get(res, 0, TRACK_COL_CITY), db_get(res, 0, TRACK_COL_DISTRICT), address,
                       sizeof(address));
    bool at_branch = !db_is_null(res, 0, TRACK_COL_BRANCH);
    const char *status = db_get(res, 0, TRACK_COL_STATUS);
    json_t *collect_by = db_is_null(res, 0, TRACK_COL_COLLECT_BY)
                             ? json_null()
                             : json_string(db_get(res, 0, TRACK_COL_COLLECT_BY));
    json_t *reply = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:o, s:o}, s:o}",
        "request_no", db_get(res, 0, TRACK_COL_REQUEST_NO), "kind", db_get(res, 0, TRACK_COL_KIND),
        "reason", db_get(res, 0, TRACK_COL_REASON), "status", status, "status_label", label(status),
        "updated_at", db_get(res, 0, TRACK_COL_UPDATED_AT), "estimated_delivery", "earliest",
        db_get(res, 0, TRACK_COL_EARLIEST), "latest", db_get(res, 0, TRACK_COL_LATEST), "delivery",
        "method", at_branch ? "branch" : "home", "attempts",
        (int)db_get_long(res, 0, TRACK_COL_ATTEMPTS, 0), "address", address, "branch",
        branch_json(res, TRACK_COL_BRANCH), "collect_by", collect_by, "timeline", timeline);
    return reply;
}

/* The answer from request_tracking()'s rows; NULL when it cannot be built. */
static json_t *answer_build(struct db_res *res, int max_failed)
{
    json_t *timeline = NULL;
    if (timeline_build(res, max_failed, &timeline) != 0)
        return NULL;
    return track_reply(res, timeline);
}

void track_lookup(struct http_req *rq)
{
    /* A failure is reserved before the look-up and given back only when it
     * succeeds (or the server fails), so concurrent wrong look-ups cannot
     * all pass the check before one of them is counted. */
    char client[CLIENT_KEY_LEN];
    struct rl_ticket ticket;
    clientaddr_of(rq, client);
    int wait = ratelimit_reserve(rq->app->track_limit, client, time(NULL), &ticket);
    if (wait > 0) {
        snprintf(rq->retry_after, sizeof(rq->retry_after), "%d", wait);
        http_problem(rq, 429, "too_many_requests", "Too many requests",
                     "Too many failed look-ups from this address; try again later.", NULL);
        return;
    }
    const char *request_no = json_string_value(json_object_get(rq->json, "request_no"));
    const char *national_id = json_string_value(json_object_get(rq->json, "national_id"));
    json_t *errors = json_array();
    if (!request_no || !request_no_valid(request_no))
        field_error(errors, "request_no", request_no ? "format" : "required");
    if (!national_id || !national_id_valid(national_id))
        field_error(errors, "national_id", national_id ? "format" : "required");
    if (json_array_size(errors) > 0) {
        ratelimit_keep(rq->app->track_limit, &ticket); /* a malformed look-up counts */
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     errors);
        return;
    }
    json_decref(errors);

    struct db *db = http_db(rq);
    if (!db) {
        ratelimit_release(rq->app->track_limit, &ticket);
        return;
    }
    struct db_res *res = NULL;
    int rc = request_tracking(db, request_no, national_id, &res);
    /* A miss builds an answer from the rows it read too, and drops it: the
     * same work as a match. */
    json_t *reply =
        rc == 0 || rc == -ENOENT ? answer_build(res, rq->app->cfg->delivery_attempts) : NULL;
    if (rc == -ENOENT) {
        free(json_dumps(reply, JSON_COMPACT));
        json_decref(reply);
        not_found(rq);
    } else if (rc) {
        http_internal_error(rq, db_error_message(db));
    } else if (!reply) {
        http_internal_error(rq, "reply could not be built");
    } else {
        http_json(rq, 200, reply);
    }
    /* Only a wrong look-up counts; a success or a server fault does not. */
    if (rq->status == 200 || rq->status >= 500)
        ratelimit_release(rq->app->track_limit, &ticket);
    else
        ratelimit_keep(rq->app->track_limit, &ticket);
    db_res_free(res);
}
