/* stock.c — blank card batches, spoiling and destruction under dual control. */
#include "stock.h"
#include "auth.h"
#include "db.h"
#include "ids.h"
#include "fields.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REASON 200

/* The JSON-level problem of a field (absent or of the wrong type), or NULL. */
static const char *absent_or_type(json_t *body, const char *field, bool ok)
{
    if (ok)
        return NULL;
    return json_object_get(body, field) ? "type" : "required";
}

void stock_batch_create(struct http_req *rq)
{
    static const char *const fields[] = { "batch_no", "first_serial", "count" };
    const char *batch_no = json_string_value(json_object_get(rq->json, "batch_no"));
    const char *first = json_string_value(json_object_get(rq->json, "first_serial"));
    json_t *jcount = json_object_get(rq->json, "count");
    long count = json_is_integer(jcount) ? (long)json_integer_value(jcount) : 0;
    const char *shape[3] = {
        absent_or_type(rq->json, "batch_no", batch_no),
        absent_or_type(rq->json, "first_serial", first),
        absent_or_type(rq->json, "count", json_is_integer(jcount)),
    };
    struct stock_problem problems[3];
    char last[CARD_SERIAL_MAX + 1] = "";
    int nproblems =
        stock_batch_check(batch_no, first, json_is_integer(jcount) ? &count : NULL, problems, last);
    if (nproblems > 0 || shape[0] || shape[1] || shape[2]) {
        /* Every failing field, in field order. */
        json_t *errors = json_array();
        for (int f = 0; f < 3; f++) {
            if (shape[f])
                field_error(errors, fields[f], shape[f]);
            for (int k = 0; k < nproblems; k++)
                if (strcmp(problems[k].field, fields[f]) == 0)
                    field_error(errors, fields[f], problems[k].code);
        }
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     errors);
        return;
    }

    struct db *db = http_db(rq);
    if (!db)
        return;
    int rc = stock_batch_receive(db, batch_no, first, count, rq->who.name, last);
    switch (rc) {
    case STOCK_RECEIVED:
        log_info("stock batch %s received: %ld cards %s..%s", batch_no, count, first, last);
        /* fall through */
    case STOCK_SAME_BATCH:
        http_json(rq, rc == STOCK_RECEIVED ? 201 : 200,
                  json_pack("{s:s, s:s, s:s, s:I}", "batch_no", batch_no, "first_serial", first,
                            "last_serial", last, "count", (json_int_t)count));
        break;
    case -EEXIST:
        http_problem(rq, 409, "conflict", "Conflict",
                     "A different batch with this batch_no was already received.", NULL);
        break;
    case -EADDRINUSE:
        http_problem(rq, 409, "serial_overlap", "Conflict",
                     "Some serials of this batch were already received in another batch.", NULL);
        break;
    default:
        http_internal_error(rq, db_error_message(db));
    }
}

void stock_list(struct http_req *rq)
{
    struct db *db = http_db(rq);
    if (!db)
        return;
    struct stock_batch *batches = NULL;
    size_t n = 0;
    long totals[STOCK_NCOUNTS];
    int rc = stock_census(db, &batches, &n, totals);
    if (rc) {
        http_internal_error(rq, rc == -ENOMEM ? "out of memory" : db_error_message(db));
        return;
    }
    json_t *list = json_array();
    for (size_t r = 0; r < n; r++) {
        json_t *b = json_pack("{s:s, s:s, s:s}", "batch_no", batches[r].batch_no, "first_serial",
                              batches[r].first_serial, "received_at", batches[r].received_at);
        for (int k = 0; k < STOCK_NCOUNTS; k++)
            json_object_set_new(b, stock_count_name[k], json_integer(batches[r].count[k]));
        json_array_append_new(list, b);
    }
    json_t *total = json_object();
    for (int k = 0; k < STOCK_NCOUNTS; k++)
        json_object_set_new(total, stock_count_name[k], json_integer(totals[k]));
    free(batches);
    http_json(rq, 200, json_pack("{s:o, s:o}", "batches", list, "totals", total));
}

/* A reason or witness field: required, 1 to MAX_REASON bytes. */
static const char *required_text(struct http_req *rq, const char *key)
{
    json_t *v = rq->json ? json_object_get(rq->json, key) : NULL;
    const char *s = json_string_value(v);
    const char *code = !v                       ? "required"
                       : !s                     ? "type"
                       : !*s                    ? "required"
                       : strlen(s) > MAX_REASON ? "length"
                                                : NULL;
    if (code) {
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     json_pack("[{s:s, s:s}]", "field", key, "code", code));
        return NULL;
    }
    return s;
}

/* The countersignature of a second operator (X-Witness-Authorization), or
 * 403 and false. */
static bool countersigned(struct http_req *rq, struct db *db, struct identity *witness)
{
    const char *why = NULL;
    int rc = auth_witness(db, http_header(rq, "X-Witness-Authorization"), &rq->who, witness, &why);
    if (rc == -EACCES) {
        http_problem(rq, 403, "witness_required", "Forbidden", why, NULL);
        return false;
    }
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return false;
    }
    return true;
}

/* Maps what card_change said to the answer; true when it was done. */
static bool card_changed(struct http_req *rq, struct db *db, int rc, const char *state,
                         const char *rule)
{
    if (rc == -ENOENT) {
        http_problem(rq, 404, "not_found", "Not found", "No such card.", NULL);
    } else if (rc == -EBUSY) {
        char detail[160];
        snprintf(detail, sizeof(detail), "The card is %s; %s.", state, rule);
        http_problem(rq, 409, "card_state", "Conflict", detail, NULL);
    } else if (rc) {
        http_internal_error(rq, db_error_message(db));
    }
    return rc == 0;
}

void card_spoil(struct http_req *rq)
{
    const char *reason = required_text(rq, "reason");
    if (!reason)
        return;
    struct db *db = http_db(rq);
    struct identity witness;
    char state[16];
    if (!db || !countersigned(rq, db, &witness))
        return;
    int rc = stock_card_spoil(db, rq->param[0], reason, rq->who.name, witness.name, state);
    if (card_changed(rq, db, rc, state, "only an available blank can be spoiled"))
        http_json(rq, 200,
                  json_pack("{s:s, s:s, s:s, s:s}", "card_serial", rq->param[0], "state", "spoiled",
                            "reason", reason, "witness", witness.name));
}

void card_destroy(struct http_req *rq)
{
    const char *named = required_text(rq, "witness");
    if (!named)
        return;
    struct db *db = http_db(rq);
    struct identity witness;
    char state[16];
    if (!db || !countersigned(rq, db, &witness))
        return;
    if (strcmp(named, witness.name) != 0) {
        http_problem(rq, 403, "witness_required", "Forbidden",
                     "The witness named in the body did not countersign.", NULL);
        return;
    }
    int rc = stock_card_destroy(db, rq->param[0], rq->who.name, witness.name, state);
    if (card_changed(rq, db, rc, state, "only a spoiled card is destroyed"))
        http_json(rq, 200,
                  json_pack("{s:s, s:s, s:s, s:s}", "card_serial", rq->param[0], "state",
                            "destroyed", "destroyed_by", rq->who.name, "witness", witness.name));
}
