/* branch.c — the nearest branch, branch descriptions and the handover. */
#include "branch.h"
#include "app.h"
#include "auth.h"
#include "clientaddr.h"
#include "ratelimit.h"
#include "db.h"
#include "geo.h"
#include "ids.h"
#include "journal.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int branch_nearest(struct db *db, const char *request_id, char out[33])
{
    struct db_res *addr = NULL, *res = NULL;
    struct geo_point *places = NULL;
    int rc =
        db_query(db, &addr,
                 "SELECT coalesce(a.lat, c.lat), coalesce(a.lon, c.lon), a.city"
                 " FROM request_addresses a LEFT JOIN cities c ON lower(c.name) = lower(a.city)"
                 " WHERE a.request_id = $1::bigint",
                 request_id);
    if (rc)
        goto out;
    const char *city = db_get(addr, 0, 2);
    rc = db_query(db, &res,
                  "SELECT branch_id, lat, lon, lower(city) = lower($1) FROM branches"
                  " WHERE active AND collects_cards ORDER BY branch_id",
                  city ? city : "");
    if (rc)
        goto out;
    size_t n = db_rows(res);
    if (n == 0) {
        rc = -ENOENT;
        goto out;
    }
    long pick = 0;
    if (db_rows(addr) == 1 && !db_is_null(addr, 0, 0)) {
        places = calloc(n, sizeof(*places));
        if (!places) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            places[i].lat = strtod(db_get(res, i, 1), NULL);
            places[i].lon = strtod(db_get(res, i, 2), NULL);
        }
        struct geo_point from = { strtod(db_get(addr, 0, 0), NULL),
                                  strtod(db_get(addr, 0, 1), NULL) };
        pick = geo_nearest(from, places, n);
    } else {
        for (size_t i = 0; i < n; i++)
            if (strcmp(db_get(res, i, 3), "t") == 0) {
                pick = (long)i;
                break;
            }
    }
    snprintf(out, 33, "%s", db_get(res, (size_t)pick, 0));
out:
    free(places);
    db_res_free(addr);
    db_res_free(res);
    return rc;
}

json_t *branch_describe(struct db *db, const char *branch_id, int *rc)
{
    struct db_res *res = NULL;
    json_t *b = NULL;
    *rc = db_query(db, &res,
                   "SELECT branch_id, name_ar, name_en, city, lat, lon FROM branches"
                   " WHERE branch_id = $1",
                   branch_id);
    if (*rc)
        return NULL;
    if (db_rows(res) != 1) {
        *rc = -ENOENT;
    } else {
        b = json_pack("{s:s, s:{s:s, s:s}, s:s, s:f, s:f}", "branch_id", db_get(res, 0, 0), "name",
                      "ar", db_get(res, 0, 1), "en", db_get(res, 0, 2), "city", db_get(res, 0, 3),
                      "lat", strtod(db_get(res, 0, 4), NULL), "lon",
                      strtod(db_get(res, 0, 5), NULL));
        if (!b)
            *rc = -ENOMEM;
    }
    db_res_free(res);
    return b;
}

static bool branch_id_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 32 && all_of(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
}

static void field_error(json_t *errors, const char *field, const char *code)
{
    json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "code", code));
}

/* A required string of at most maxlen bytes, or NULL after recording why not. */
static const char *want_string(json_t *body, const char *key, size_t maxlen, json_t *errors)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) {
        field_error(errors, key, "required");
        return NULL;
    }
    if (!json_is_string(v)) {
        field_error(errors, key, "type");
        return NULL;
    }
    if (json_string_length(v) == 0 || json_string_length(v) > maxlen ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        field_error(errors, key, json_string_length(v) == 0 ? "required" : "format");
        return NULL;
    }
    return json_string_value(v);
}

/* The holder collects the card at the branch. An unknown request and a
 * national ID that does not match get the same 404, so a branch cannot probe
 * whose request a number is; a card that is not (yet) at this branch is a
 * 409. Handing over again what this branch already handed over answers 200. */
void branches_handover(struct http_req *rq)
{
    const char *branch_id = rq->param[0];
    json_t *errors = NULL;
    struct db_res *res = NULL;
    struct db *db = NULL;
    struct rl_ticket by_client = { .slot = -1 }, by_token = { .slot = -1 };
    bool mismatch = false;

    /* A branch token acts at its own branch only. */
    if (!auth_may_act_at_branch(&rq->who, branch_id)) {
        http_problem(rq, 403, "forbidden", "Forbidden", "This token is for another branch.", NULL);
        return;
    }
    /* Failed matches are limited like tracking look-ups, per client address
     * and per token, reserved before the look-up (see track.c). */
    char client[CLIENT_KEY_LEN], token_key[CLIENT_KEY_LEN];
    clientaddr_of(rq, client);
    snprintf(token_key, sizeof(token_key), "token:%ld", rq->who.token_id);
    time_t now = time(NULL);
    int wait = ratelimit_reserve(rq->app->handover_limit, client, now, &by_client);
    if (wait == 0)
        wait = ratelimit_reserve(rq->app->handover_limit, token_key, now, &by_token);
    if (wait > 0) {
        ratelimit_release(rq->app->handover_limit, &by_client);
        snprintf(rq->retry_after, sizeof(rq->retry_after), "%d", wait);
        http_problem(rq, 429, "too_many_requests", "Too many requests",
                     "Too many failed matches; try again later.", NULL);
        return;
    }
    errors = json_array();

    const char *request_no = want_string(rq->json, "request_no", 32, errors);
    if (request_no && !request_no_valid(request_no))
        field_error(errors, "request_no", "format");
    const char *national_id = want_string(rq->json, "national_id", 10, errors);
    if (national_id) {
        int c = national_id_check(national_id);
        if (c)
            field_error(errors, "national_id", c == -1 ? "format" : "checksum");
    }
    if (!branch_id_valid(branch_id)) {
        http_problem(rq, 404, "not_found", "Not found", "No such branch.", NULL);
        goto out;
    }
    if (json_array_size(errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     errors);
        errors = NULL;
        goto out;
    }
    db = http_db(rq);
    if (!db)
        goto out;
    int rc = db_query(
        db, &res, "SELECT collects_cards AND active FROM branches WHERE branch_id = $1", branch_id);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    if (db_rows(res) != 1) {
        http_problem(rq, 404, "not_found", "Not found", "No such branch.", NULL);
        goto out;
    }
    db_res_free(res);
    res = NULL;

    rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &res,
                      "SELECT r.id, r.status, r.national_id, p.id, p.branch_id, p.collected_by,"
                      " r.national_id = $2"
                      " FROM requests r LEFT JOIN parcels p ON p.request_id = r.id"
                      " WHERE r.request_no = $1 FOR UPDATE OF r",
                      request_no, national_id);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    if (db_rows(res) != 1 || strcmp(db_get(res, 0, 6), "t") != 0) {
        log_info("handover refused at %s: no request %s for that national ID", branch_id,
                 request_no);
        mismatch = true;
        http_problem(rq, 404, "not_found", "Not found",
                     "No request matches this request number and national ID.", NULL);
        goto out;
    }
    const char *status = db_get(res, 0, 1);
    const char *at = db_get(res, 0, 4);
    if (!at || strcmp(at, branch_id) != 0) {
        http_problem(rq, 409, "not_at_branch", "Conflict", "The card is not held at this branch.",
                     NULL);
        goto out;
    }
    if (strcmp(status, "collected") == 0) {
        http_json(rq, 200,
                  json_pack("{s:s, s:s, s:s}", "request_no", request_no, "status", "collected",
                            "branch_id", branch_id));
        goto out;
    }
    if (strcmp(status, "ready_for_collection") != 0) {
        char detail[160];
        snprintf(detail, sizeof(detail),
                 "The card is %s; it can be handed over once it is ready for collection.", status);
        http_problem(rq, 409, "not_ready", "Conflict", detail, NULL);
        goto out;
    }
    char request_id[24], parcel_id[24];
    snprintf(request_id, sizeof(request_id), "%s", db_get(res, 0, 0));
    snprintf(parcel_id, sizeof(parcel_id), "%s", db_get(res, 0, 3));
    json_t *dj = json_pack("{s:s}", "branch_id", branch_id);
    char *detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);
    rc = detail ? 0 : -ENOMEM;
    if (!rc)
        rc = db_query(
            db, NULL,
            "UPDATE parcels SET collected_at = now(), collected_by = $2 WHERE id = $1::bigint",
            parcel_id, rq->who.name);
    if (!rc)
        rc = journal_status(db, request_id, "collected", rq->who.name, NULL, detail);
    if (!rc)
        rc = audit(db, rq->who.name, "card.handed_over", request_no, NULL, NULL, detail);
    if (!rc)
        rc = db_commit(db);
    free(detail);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    log_info("request %s collected at %s", request_no, branch_id);
    http_json(rq, 200,
              json_pack("{s:s, s:s, s:s}", "request_no", request_no, "status", "collected",
                        "branch_id", branch_id));
out:
    /* Only a failed match counts. */
    if (!mismatch) {
        ratelimit_release(rq->app->handover_limit, &by_client);
        ratelimit_release(rq->app->handover_limit, &by_token);
    } else {
        ratelimit_keep(rq->app->handover_limit, &by_client);
        ratelimit_keep(rq->app->handover_limit, &by_token);
    }
    if (db)
        db_rollback(db);
    db_res_free(res);
    json_decref(errors);
}
