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

/* The answer to a look-up that matched: the rows of request_tracking(). */
static json_t *track_reply(struct db_res *res, struct db_res *tl)
{
    json_t *timeline = json_array();
    for (size_t i = 0; i < db_rows(tl); i++)
        json_array_append_new(timeline,
                              json_pack("{s:s, s:s, s:o}", "at", db_get(tl, i, 0), "status",
                                        db_get(tl, i, 1), "label", label(db_get(tl, i, 1))));
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
    struct db_res *res = NULL, *tl = NULL;
    int rc = request_tracking(db, request_no, national_id, &res, &tl);
    json_t *reply = rc ? NULL : track_reply(res, tl);
    if (rc == -ENOENT)
        not_found(rq);
    else if (rc)
        http_internal_error(rq, db_error_message(db));
    else if (!reply)
        http_internal_error(rq, "reply could not be built");
    else
        http_json(rq, 200, reply);
    /* Only a wrong look-up counts; a success or a server fault does not. */
    if (rq->status == 200 || rq->status >= 500)
        ratelimit_release(rq->app->track_limit, &ticket);
    db_res_free(res);
    db_res_free(tl);
}
