/* branch.c — the HTTP handler of the handover of a card at a branch. */
#include "branch.h"
#include "app.h"
#include "auth.h"
#include "clientaddr.h"
#include "ratelimit.h"
#include "db.h"
#include "fields.h"
#include "ids.h"
#include "refdata.h"
#include "store_parcel.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool branch_id_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 32 && all_of(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
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

/* Checks the handover's body; answers and returns false when it is refused. */
static bool handover_acceptable(struct http_req *rq, const char **request_no,
                                const char **national_id)
{
    json_t *errors = json_array();
    *request_no = want_string(rq->json, "request_no", 32, errors);
    if (*request_no && !request_no_valid(*request_no))
        field_error(errors, "request_no", "format");
    *national_id = want_string(rq->json, "national_id", 10, errors);
    if (*national_id) {
        int c = national_id_check(*national_id);
        if (c)
            field_error(errors, "national_id", c == -1 ? "format" : "checksum");
    }
    if (!branch_id_valid(rq->param[0])) {
        json_decref(errors);
        http_problem(rq, 404, "not_found", "Not found", "No such branch.", NULL);
        return false;
    }
    if (json_array_size(errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     errors);
        return false;
    }
    json_decref(errors);
    return true;
}

/* Failed matches are limited like tracking look-ups, per client address
 * and per token, reserved before the look-up (see track.c). Answers 429
 * and returns false when either is spent. */
static bool reserve_match(struct http_req *rq, struct rl_ticket *by_client,
                          struct rl_ticket *by_token)
{
    char client[CLIENT_KEY_LEN], token_key[CLIENT_KEY_LEN];
    clientaddr_of(rq, client);
    snprintf(token_key, sizeof(token_key), "token:%ld", rq->who.token_id);
    time_t now = time(NULL);
    int wait = ratelimit_reserve(rq->app->handover_limit, client, now, by_client);
    if (wait == 0)
        wait = ratelimit_reserve(rq->app->handover_limit, token_key, now, by_token);
    if (wait > 0) {
        ratelimit_release(rq->app->handover_limit, by_client);
        snprintf(rq->retry_after, sizeof(rq->retry_after), "%d", wait);
        http_problem(rq, 429, "too_many_requests", "Too many requests",
                     "Too many failed matches; try again later.", NULL);
        return false;
    }
    return true;
}

/* Hands the card over (store_parcel.c) and answers; returns true when the
 * request number and national ID matched no request. */
static bool hand_over(struct http_req *rq, const char *branch_id, const char *request_no,
                      const char *national_id)
{
    struct db *db = http_db(rq);
    if (!db)
        return false;
    int rc = branch_collects(db, branch_id);
    if (rc < 0) {
        http_internal_error(rq, db_error_message(db));
        return false;
    }
    if (rc == 0) {
        http_problem(rq, 404, "not_found", "Not found", "No such branch.", NULL);
        return false;
    }
    char status[32] = "", detail[160];
    rc = parcel_hand_over(db, branch_id, request_no, national_id, rq->who.name, status);
    switch (rc) {
    case 0:
        log_info("request %s collected at %s", request_no, branch_id);
        /* fall through */
    case -EALREADY:
        http_json(rq, 200,
                  json_pack("{s:s, s:s, s:s}", "request_no", request_no, "status", "collected",
                            "branch_id", branch_id));
        break;
    case -ENOENT:
        log_info("handover refused at %s: no request %s for that national ID", branch_id,
                 request_no);
        http_problem(rq, 404, "not_found", "Not found",
                     "No request matches this request number and national ID.", NULL);
        return true;
    case -EXDEV:
        http_problem(rq, 409, "not_at_branch", "Conflict", "The card is not held at this branch.",
                     NULL);
        break;
    case -EPERM:
        snprintf(detail, sizeof(detail),
                 "The card is %s; it can be handed over once it is ready for collection.", status);
        http_problem(rq, 409, "not_ready", "Conflict", detail, NULL);
        break;
    default:
        http_internal_error(rq, db_error_message(db));
    }
    return false;
}

/* The holder collects the card at the branch. An unknown request and a
 * national ID that does not match get the same 404, so a branch cannot probe
 * whose request a number is; a card that is not (yet) at this branch is a
 * 409. Handing over again what this branch already handed over answers 200.
 * A branch token acts at its own branch only. */
void branches_handover(struct http_req *rq)
{
    const char *branch_id = rq->param[0], *request_no, *national_id;
    struct rl_ticket by_client = { .slot = -1 }, by_token = { .slot = -1 };
    if (!auth_may_act_at_branch(&rq->who, branch_id)) {
        http_problem(rq, 403, "forbidden", "Forbidden", "This token is for another branch.", NULL);
        return;
    }
    if (!reserve_match(rq, &by_client, &by_token))
        return;
    bool mismatch = false;
    if (handover_acceptable(rq, &request_no, &national_id))
        mismatch = hand_over(rq, branch_id, request_no, national_id);
    /* Only a failed match counts. */
    if (!mismatch) {
        ratelimit_release(rq->app->handover_limit, &by_client);
        ratelimit_release(rq->app->handover_limit, &by_token);
    } else {
        ratelimit_keep(rq->app->handover_limit, &by_client);
        ratelimit_keep(rq->app->handover_limit, &by_token);
    }
}
