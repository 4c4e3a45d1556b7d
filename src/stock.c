/* stock.c — blank card batches, spoiling and destruction under dual control. */
#include "stock.h"
#include "auth.h"
#include "db.h"
#include "ids.h"
#include "journal.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REASON 200

bool card_serial_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= CARD_SERIAL_MAX && all_of(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
}

/* How many digits end a serial: the part that counts up within a batch. */
static size_t serial_tail(const char *s)
{
    size_t n = strlen(s), tail = 0;
    while (tail < n && s[n - 1 - tail] >= '0' && s[n - 1 - tail] <= '9')
        tail++;
    return tail;
}

int card_serial_add(const char *first, long count, char out[CARD_SERIAL_MAX + 1])
{
    if (!card_serial_valid(first) || count < 0)
        return -EINVAL;
    size_t n = strlen(first), tail = serial_tail(first);
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

int stock_batch_check(const char *batch_no, const char *first, const long *count,
                      struct stock_problem problems[3], char last[CARD_SERIAL_MAX + 1])
{
    int n = 0;
    if (batch_no && !request_no_valid(batch_no))
        problems[n++] = (struct stock_problem){ "batch_no", "format" };
    if (first && !card_serial_valid(first))
        problems[n++] = (struct stock_problem){ "first_serial", "format" };
    if (count && (*count < 1 || *count > STOCK_MAX_BATCH))
        problems[n++] = (struct stock_problem){ "count", "range" };
    if (n == 0 && batch_no && first && count && card_serial_add(first, *count - 1, last) != 0)
        problems[n++] = (struct stock_problem){ "first_serial", "no_room_for_count" };
    return n;
}

int stock_batch_receive(struct db *db, const char *batch_no, const char *first, long count,
                        const char *actor, char last[CARD_SERIAL_MAX + 1])
{
    struct stock_problem problems[3];
    struct db_res *res = NULL;
    char count_text[24], id[24];
    if (stock_batch_check(batch_no, first, &count, problems, last) != 0)
        return -EINVAL;
    snprintf(count_text, sizeof(count_text), "%ld", count);
    int rc = db_begin(db);
    if (!rc)
        rc =
            db_query(db, &res,
                     "INSERT INTO stock_batches (batch_no, first_serial, count, received_by)"
                     " VALUES ($1, $2, $3::int, $4) ON CONFLICT (batch_no) DO NOTHING RETURNING id",
                     batch_no, first, count_text, actor);
    if (rc)
        goto out;
    if (db_rows(res) == 0) {
        /* The same batch again is the same delivery; anything else conflicts. */
        db_res_free(res);
        res = NULL;
        rc = db_query(db, &res,
                      "SELECT 1 FROM stock_batches WHERE batch_no = $1 AND first_serial = $2"
                      " AND count = $3::int",
                      batch_no, first, count_text);
        if (!rc)
            rc = db_rows(res) == 1 ? STOCK_SAME_BATCH : -EEXIST;
        goto out;
    }
    snprintf(id, sizeof(id), "%s", db_get(res, 0, 0));
    /* One row per card, serials made by the same rule as card_serial_add. */
    size_t n = strlen(first), tail = serial_tail(first);
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
        rc = -EADDRINUSE;
        goto out;
    }
    if (!rc) {
        char detail[128];
        snprintf(detail, sizeof(detail),
                 "{\"first_serial\":\"%s\",\"last_serial\":\"%s\",\"count\":%ld}", first, last,
                 count);
        rc = audit(db, actor, "stock.received", NULL, NULL, NULL, detail);
    }
    if (!rc)
        rc = db_commit(db);
out:
    db_rollback(db);
    db_res_free(res);
    return rc;
}

static void fail(json_t *errors, const char *field, const char *code)
{
    json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "code", code));
}

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
                fail(errors, fields[f], shape[f]);
            for (int k = 0; k < nproblems; k++)
                if (strcmp(problems[k].field, fields[f]) == 0)
                    fail(errors, fields[f], problems[k].code);
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

const char *const stock_count_name[STOCK_NCOUNTS] = {
    [STOCK_COUNT_RECEIVED] = "received",
    [STOCK_COUNT_USED] = "used",
    [STOCK_COUNT_SPOILED] = "spoiled",
    [STOCK_COUNT_DESTROYED] = "destroyed",
    [STOCK_COUNT_IN_PRODUCTION] = "in_production",
    [STOCK_COUNT_AVAILABLE] = "available",
};

int stock_census(struct db *db, struct stock_batch **out, size_t *n, long totals[STOCK_NCOUNTS])
{
    struct db_res *res = NULL;
    *out = NULL;
    *n = 0;
    memset(totals, 0, sizeof(long) * STOCK_NCOUNTS);
    /* Columns 3 to 8 in the order of enum stock_count; 9 the cards on record. */
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
    if (rc)
        return rc;
    size_t rows = db_rows(res);
    struct stock_batch *batches = rows ? calloc(rows, sizeof(*batches)) : NULL;
    if (rows && !batches) {
        db_res_free(res);
        return -ENOMEM;
    }
    for (size_t r = 0; r < rows; r++) {
        struct stock_batch *b = &batches[r];
        snprintf(b->batch_no, sizeof(b->batch_no), "%s", db_get(res, r, 0));
        snprintf(b->first_serial, sizeof(b->first_serial), "%s", db_get(res, r, 1));
        snprintf(b->received_at, sizeof(b->received_at), "%s", db_get(res, r, 2));
        for (int k = 0; k < STOCK_NCOUNTS; k++) {
            b->count[k] = db_get_long(res, r, 3 + k, 0);
            totals[k] += b->count[k];
        }
        /* The cards on record must be the cards received. */
        if (db_get_long(res, r, 9, -1) != db_get_long(res, r, 3, -2))
            log_error("stock batch %s: %s cards on record for %s received", db_get(res, r, 0),
                      db_get(res, r, 9), db_get(res, r, 3));
    }
    db_res_free(res);
    *out = batches;
    *n = rows;
    return 0;
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

/* Runs one hand-made change of a card under dual control, in one
 * transaction: the card is locked, must be in state `from`, and is moved by
 * the statement `change` with its nparams parameters (the serial first);
 * the audit line names both people. */
static int card_change(struct db *db, const char *serial, const char *from, const char *change,
                       int nparams, const char *const *params, const char *action,
                       const char *actor, const char *witness, const char *reason, char state[16])
{
    struct db_res *res = NULL;
    state[0] = '\0';
    if (!card_serial_valid(serial))
        return -ENOENT;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &res, "SELECT state FROM cards WHERE serial = $1 FOR UPDATE", serial);
    if (rc)
        goto out;
    if (db_rows(res) == 0) {
        rc = -ENOENT;
        goto out;
    }
    snprintf(state, 16, "%s", db_get(res, 0, 0));
    if (strcmp(state, from) != 0) {
        rc = -EBUSY;
        goto out;
    }
    json_t *d = json_pack("{s:s}", "witness", witness);
    if (d && reason)
        json_object_set_new(d, "reason", json_string(reason));
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    rc = detail ? db_exec(db, NULL, change, nparams, params) : -ENOMEM;
    if (!rc)
        rc = audit(db, actor, action, NULL, serial, NULL, detail);
    if (!rc)
        rc = db_commit(db);
    free(detail);
out:
    db_rollback(db);
    db_res_free(res);
    return rc;
}

int stock_card_spoil(struct db *db, const char *serial, const char *reason, const char *actor,
                     const char *witness, char state[16])
{
    /* A blank card can be spoiled by hand (damaged in handling); a card in
     * a job is the station's to account for, and an issued card is voided
     * only by cancelling its request. */
    const char *params[] = { serial, reason };
    return card_change(db, serial, "available",
                       "UPDATE cards SET state = 'spoiled', spoil_reason = $2, spoiled_at = now(),"
                       " updated_at = now() WHERE serial = $1",
                       2, params, "card.spoiled", actor, witness, reason, state);
}

int stock_card_destroy(struct db *db, const char *serial, const char *actor, const char *witness,
                       char state[16])
{
    const char *params[] = { serial, actor, witness };
    return card_change(db, serial, "spoiled",
                       "UPDATE cards SET state = 'destroyed', destroyed_at = now(),"
                       " destroyed_by = $2, witness = $3, updated_at = now() WHERE serial = $1",
                       3, params, "card.destroyed", actor, witness, NULL, state);
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
