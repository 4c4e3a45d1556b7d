/* stock.c — blank card batches, spoiling and destruction under dual control. */
#include "stock.h"
#include "db.h"
#include "ids.h"
#include "journal.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 100000
#define MAX_REASON 200

bool card_serial_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= CARD_SERIAL_MAX && all_of(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
}

int card_serial_add(const char *first, long count, char out[CARD_SERIAL_MAX + 1])
{
    if (!card_serial_valid(first) || count < 0)
        return -EINVAL;
    size_t n = strlen(first), tail = 0;
    while (tail < n && first[n - 1 - tail] >= '0' && first[n - 1 - tail] <= '9')
        tail++;
    if (tail == 0 || tail > 9)
        return -EINVAL;
    long value = strtol(first + n - tail, NULL, 10);
    long limit = 1;
    for (size_t i = 0; i < tail; i++)
        limit *= 10;
    if (value + count >= limit)
        return -EINVAL;
    memcpy(out, first, n - tail);
    snprintf(out + (n - tail), CARD_SERIAL_MAX + 1 - (n - tail), "%0*ld", (int)tail, value + count);
    return 0;
}

static void fail(json_t *errors, const char *field, const char *code)
{
    json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "code", code));
}

void stock_batch_create(struct http_req *rq)
{
    json_t *errors = json_array();
    const char *batch_no = json_string_value(json_object_get(rq->json, "batch_no"));
    const char *first = json_string_value(json_object_get(rq->json, "first_serial"));
    json_t *jcount = json_object_get(rq->json, "count");
    char last[CARD_SERIAL_MAX + 1] = "";
    struct db_res *res = NULL;
    struct db *db = NULL;

    if (!batch_no)
        fail(errors, "batch_no", json_object_get(rq->json, "batch_no") ? "type" : "required");
    else if (!request_no_valid(batch_no))
        fail(errors, "batch_no", "format");
    if (!first)
        fail(errors, "first_serial", json_object_get(rq->json, "first_serial") ? "type" : "required");
    else if (!card_serial_valid(first))
        fail(errors, "first_serial", "format");
    long count = 0;
    if (!jcount)
        fail(errors, "count", "required");
    else if (!json_is_integer(jcount))
        fail(errors, "count", "type");
    else if ((count = (long)json_integer_value(jcount)) < 1 || count > MAX_BATCH)
        fail(errors, "count", "range");
    if (json_array_size(errors) == 0 && card_serial_add(first, count - 1, last) != 0)
        fail(errors, "first_serial", "no_room_for_count");
    if (json_array_size(errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     errors);
        return;
    }
    json_decref(errors);

    db = http_db(rq);
    if (!db)
        return;
    char count_text[24];
    snprintf(count_text, sizeof(count_text), "%ld", count);
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &res,
                      "INSERT INTO stock_batches (batch_no, first_serial, count, received_by)"
                      " VALUES ($1, $2, $3::int, $4) ON CONFLICT (batch_no) DO NOTHING RETURNING id",
                      batch_no, first, count_text, rq->who.name);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    if (db_rows(res) == 0) {
        /* The same batch again is the same delivery; anything else conflicts. */
        db_res_free(res);
        res = NULL;
        rc = db_query(db, &res,
                      "SELECT 1 FROM stock_batches WHERE batch_no = $1 AND first_serial = $2"
                      " AND count = $3::int", batch_no, first, count_text);
        if (!rc && db_rows(res) == 1)
            http_json(rq, 200, json_pack("{s:s, s:s, s:s, s:I}", "batch_no", batch_no,
                                         "first_serial", first, "last_serial", last,
                                         "count", (json_int_t)count));
        else
            http_problem(rq, 409, "conflict", "Conflict",
                         "A different batch with this batch_no was already received.", NULL);
        goto out;
    }
    char id[24];
    snprintf(id, sizeof(id), "%s", db_get(res, 0, 0));
    /* One row per card, serials made by the same rule as card_serial_add. */
    size_t n = strlen(first), tail = 0;
    while (tail < n && first[n - 1 - tail] >= '0' && first[n - 1 - tail] <= '9')
        tail++;
    char prefix[CARD_SERIAL_MAX + 1], start[16], width[24];
    memcpy(prefix, first, n - tail);
    prefix[n - tail] = '\0';
    snprintf(start, sizeof(start), "%s", first + n - tail);
    snprintf(width, sizeof(width), "%zu", tail);
    rc = db_query(db, NULL,
                  "INSERT INTO cards (serial, batch_id)"
                  " SELECT $1 || lpad((($2::bigint) + g)::text, $3::int, '0'), $4::bigint"
                  " FROM generate_series(0, $5::int - 1) AS g",
                  prefix, start, width, id, count_text);
    if (rc == DB_ECONFLICT) {
        db_rollback(db);
        http_problem(rq, 409, "serial_overlap", "Conflict",
                     "Some serials of this batch were already received in another batch.", NULL);
        goto out;
    }
    if (!rc) {
        char detail[128];
        snprintf(detail, sizeof(detail), "{\"first_serial\":\"%s\",\"last_serial\":\"%s\",\"count\":%ld}",
                 first, last, count);
        rc = audit(db, rq->who.name, "stock.received", NULL, NULL, NULL, detail);
    }
    if (!rc)
        rc = db_commit(db);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    log_info("stock batch %s received: %ld cards %s..%s", batch_no, count, first, last);
    http_json(rq, 201, json_pack("{s:s, s:s, s:s, s:I}", "batch_no", batch_no, "first_serial", first,
                                 "last_serial", last, "count", (json_int_t)count));
out:
    if (db)
        db_rollback(db);
    db_res_free(res);
}

void stock_list(struct http_req *rq)
{
    struct db *db = http_db(rq);
    if (!db)
        return;
    struct db_res *res = NULL;
    int rc = db_exec(db, &res,
                     "SELECT b.batch_no, b.first_serial, rfc3339(b.received_at), b.count,"
                     " count(c.serial) FILTER (WHERE c.state = 'used'),"
                     " count(c.serial) FILTER (WHERE c.state = 'spoiled'),"
                     " count(c.serial) FILTER (WHERE c.state = 'destroyed'),"
                     " count(c.serial) FILTER (WHERE c.state = 'in_production'),"
                     " count(c.serial) FILTER (WHERE c.state = 'available'),"
                     " count(c.serial)"
                     " FROM stock_batches b LEFT JOIN cards c ON c.batch_id = b.id"
                     " GROUP BY b.id ORDER BY b.id",
                     0, NULL);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return;
    }
    static const char *const cols[] = { "received", "used", "spoiled", "destroyed",
                                        "in_production", "available" };
    json_t *batches = json_array();
    json_int_t totals[6] = { 0 };
    for (size_t r = 0; r < db_rows(res); r++) {
        json_t *b = json_pack("{s:s, s:s, s:s}", "batch_no", db_get(res, r, 0), "first_serial",
                              db_get(res, r, 1), "received_at", db_get(res, r, 2));
        for (int k = 0; k < 6; k++) {
            json_int_t v = db_get_long(res, r, 3 + k, 0);
            totals[k] += v;
            json_object_set_new(b, cols[k], json_integer(v));
        }
        /* The cards on record must be the cards received. */
        if (db_get_long(res, r, 9, -1) != db_get_long(res, r, 3, -2))
            log_error("stock batch %s: %s cards on record for %s received", db_get(res, r, 0),
                      db_get(res, r, 9), db_get(res, r, 3));
        json_array_append_new(batches, b);
    }
    json_t *total = json_object();
    for (int k = 0; k < 6; k++)
        json_object_set_new(total, cols[k], json_integer(totals[k]));
    db_res_free(res);
    http_json(rq, 200, json_pack("{s:o, s:o}", "batches", batches, "totals", total));
}

/* A reason or witness field: required, 1 to MAX_REASON bytes. */
static const char *required_text(struct http_req *rq, const char *key)
{
    json_t *v = rq->json ? json_object_get(rq->json, key) : NULL;
    const char *s = json_string_value(v);
    const char *code = !v ? "required" : !s ? "type" : !*s ? "required"
                                             : strlen(s) > MAX_REASON ? "length" : NULL;
    if (code) {
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     json_pack("[{s:s, s:s}]", "field", key, "code", code));
        return NULL;
    }
    return s;
}

/* Locks the card and returns its state, or answers 404 and returns NULL. */
static const char *lock_card(struct http_req *rq, struct db *db, struct db_res **res)
{
    if (!card_serial_valid(rq->param[0])) {
        http_problem(rq, 404, "not_found", "Not found", "No such card.", NULL);
        return NULL;
    }
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, res, "SELECT state FROM cards WHERE serial = $1 FOR UPDATE", rq->param[0]);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return NULL;
    }
    if (db_rows(*res) == 0) {
        http_problem(rq, 404, "not_found", "Not found", "No such card.", NULL);
        return NULL;
    }
    return db_get(*res, 0, 0);
}

void card_spoil(struct http_req *rq)
{
    const char *reason = required_text(rq, "reason");
    if (!reason)
        return;
    struct db *db = http_db(rq);
    if (!db)
        return;
    struct db_res *res = NULL;
    const char *state = lock_card(rq, db, &res);
    if (!state)
        goto out;
    /* A blank card can be spoiled by hand (damaged in handling); a card in
     * a job is the station's to account for, and an issued card is voided
     * only by cancelling its request. */
    if (strcmp(state, "available") != 0) {
        char detail[160];
        snprintf(detail, sizeof(detail), "The card is %s; only an available blank can be spoiled.",
                 state);
        http_problem(rq, 409, "card_state", "Conflict", detail, NULL);
        goto out;
    }
    json_t *d = json_pack("{s:s}", "reason", reason);
    char *detail = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    int rc = db_query(db, NULL,
                      "UPDATE cards SET state = 'spoiled', spoil_reason = $2, spoiled_at = now(),"
                      " updated_at = now() WHERE serial = $1", rq->param[0], reason);
    if (!rc)
        rc = audit(db, rq->who.name, "card.spoiled", NULL, rq->param[0], NULL, detail);
    if (!rc)
        rc = db_commit(db);
    free(detail);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    http_json(rq, 200, json_pack("{s:s, s:s, s:s}", "card_serial", rq->param[0], "state", "spoiled",
                                 "reason", reason));
out:
    db_rollback(db);
    db_res_free(res);
}

void card_destroy(struct http_req *rq)
{
    const char *witness = required_text(rq, "witness");
    if (!witness)
        return;
    if (strcmp(witness, rq->who.name) == 0) {
        http_problem(rq, 422, "validation", "Invalid request",
                     "The witness must be a second operator, not the caller.",
                     json_pack("[{s:s, s:s}]", "field", "witness", "code", "same_as_caller"));
        return;
    }
    struct db *db = http_db(rq);
    if (!db)
        return;
    struct db_res *res = NULL, *w = NULL;
    int rc = db_query(db, &w,
                      "SELECT 1 FROM api_tokens WHERE name = $1 AND role IN ('operator','admin')"
                      " AND revoked_at IS NULL", witness);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    if (db_rows(w) == 0) {
        http_problem(rq, 422, "validation", "Invalid request",
                     "The witness is not an operator known to the service.",
                     json_pack("[{s:s, s:s}]", "field", "witness", "code", "unknown_operator"));
        goto out;
    }
    const char *state = lock_card(rq, db, &res);
    if (!state)
        goto out;
    if (strcmp(state, "spoiled") != 0) {
        char detail[160];
        snprintf(detail, sizeof(detail), "The card is %s; only a spoiled card is destroyed.", state);
        http_problem(rq, 409, "card_state", "Conflict", detail, NULL);
        goto out;
    }
    json_t *d = json_pack("{s:s}", "witness", witness);
    char *detail = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    rc = db_query(db, NULL,
                  "UPDATE cards SET state = 'destroyed', destroyed_at = now(), destroyed_by = $2,"
                  " witness = $3, updated_at = now() WHERE serial = $1",
                  rq->param[0], rq->who.name, witness);
    if (!rc)
        rc = audit(db, rq->who.name, "card.destroyed", NULL, rq->param[0], NULL, detail);
    if (!rc)
        rc = db_commit(db);
    free(detail);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    http_json(rq, 200, json_pack("{s:s, s:s, s:s, s:s}", "card_serial", rq->param[0], "state",
                                 "destroyed", "destroyed_by", rq->who.name, "witness", witness));
out:
    db_rollback(db);
    db_res_free(res);
    db_res_free(w);
}
