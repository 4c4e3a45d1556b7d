/* store_card.c — the card aggregate (see store_card.h). */
#include "store_card.h"
#include "db.h"
#include "ids.h"
#include "log.h"
#include "production.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every move a card's state may make. A blank is claimed for a job and
 * ends used, spoiled, or back in stock when the printer never took it;
 * a blank can be spoiled by hand; an issued card is voided only by
 * cancelling its request; only a spoiled card is destroyed. */
const struct transition card_transitions[] = {
    { "available", "claim", "in_production", "job.claimed" },
    { "in_production", "use", "used", "job.produced" },
    { "in_production", "return", "available", "job.card_not_taken" },
    { "in_production", "spoil", "spoiled", "card.spoiled" },
    { "in_production", "recover", "spoiled", "job.recovered" },
    { "available", "spoil_blank", "spoiled", "card.spoiled" },
    { "used", "void", "spoiled", "card.voided" },
    { "spoiled", "destroy", "destroyed", "card.destroyed" },
};
const size_t card_ntransitions = sizeof(card_transitions) / sizeof(card_transitions[0]);

/* Writes a move the table allows: the card's row and its audit entry. */
static int record_change(struct db *db, const char *serial, const struct transition *t,
                         const struct card_change *c)
{
    int rc = db_query(
        db, NULL,
        "UPDATE cards SET state = $2, updated_at = now(),"
        " request_id = CASE $2 WHEN 'in_production' THEN $3::bigint"
        "  WHEN 'available' THEN NULL ELSE request_id END,"
        " station_id = CASE $2 WHEN 'in_production' THEN $4 WHEN 'available' THEN NULL"
        "  ELSE station_id END,"
        " spoil_reason = CASE $2 WHEN 'spoiled' THEN $5 ELSE spoil_reason END,"
        " spoiled_at = CASE $2 WHEN 'spoiled' THEN now() ELSE spoiled_at END,"
        " destroyed_at = CASE $2 WHEN 'destroyed' THEN now() ELSE destroyed_at END,"
        " destroyed_by = CASE $2 WHEN 'destroyed' THEN $6 ELSE destroyed_by END,"
        " witness = CASE $2 WHEN 'destroyed' THEN $7 ELSE witness END"
        " WHERE serial = $1",
        serial, t->to, c->request_id, c->ch.station_id, c->reason, c->ch.actor, c->witness);
    if (!rc && t->audit_action) {
        struct change ch = c->ch;
        ch.card_serial = serial;
        rc = audit_change(db, t->audit_action, &ch);
    }
    return rc;
}

int card_apply(struct db *db, const char *serial, const char *event, const struct card_change *c,
               char state[16])
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res, "SELECT state FROM cards WHERE serial = $1 FOR UPDATE", serial);
    if (rc)
        return rc;
    if (db_rows(res) != 1) {
        rc = -ENOENT;
    } else {
        const char *from = db_get(res, 0, 0);
        if (state)
            snprintf(state, 16, "%s", from);
        const struct transition *t =
            transition_find(card_transitions, card_ntransitions, from, event);
        rc = t ? record_change(db, serial, t, c) : -EPERM;
    }
    db_res_free(res);
    return rc;
}

/* One card_apply() in its own transaction. */
static int apply_alone(struct db *db, const char *serial, const char *event,
                       const struct card_change *c, char state[16])
{
    int rc = db_begin(db);
    if (!rc)
        rc = card_apply(db, serial, event, c, state);
    if (!rc)
        rc = db_commit(db);
    db_rollback(db);
    return rc;
}

/* A change made by hand under dual control: the audit entry names both
 * people. -EBUSY (state says which it is) when the card is not in the
 * state the event needs. */
static int by_hand(struct db *db, const char *serial, const char *event, const char *actor,
                   const char *witness, const char *reason, char state[16])
{
    state[0] = '\0';
    if (!card_serial_valid(serial))
        return -ENOENT;
    json_t *d = json_pack("{s:s}", "witness", witness);
    if (d && reason)
        json_object_set_new(d, "reason", json_string(reason));
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (!detail)
        return -ENOMEM;
    struct card_change c = { .ch = { .actor = actor, .detail_json = detail },
                             .reason = reason,
                             .witness = witness };
    int rc = apply_alone(db, serial, event, &c, state);
    free(detail);
    return rc == -EPERM ? -EBUSY : rc;
}

int stock_card_spoil(struct db *db, const char *serial, const char *reason, const char *actor,
                     const char *witness, char state[16])
{
    /* A card in a job is the station's to account for, and an issued card
     * is voided only by cancelling its request: only a blank is spoiled here. */
    return by_hand(db, serial, "spoil_blank", actor, witness, reason, state);
}

int stock_card_destroy(struct db *db, const char *serial, const char *actor, const char *witness,
                       char state[16])
{
    return by_hand(db, serial, "destroy", actor, witness, NULL, state);
}

int card_void_for_request(struct db *db, const char *request_id, const char *request_no,
                          const char *actor)
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT serial FROM cards WHERE request_id = $1::bigint AND state = 'used'"
                      " ORDER BY serial FOR UPDATE",
                      request_id);
    struct card_change c = { .ch = { .actor = actor, .request_no = request_no },
                             .reason = "voided: request cancelled" };
    for (size_t i = 0; !rc && i < db_rows(res); i++)
        rc = card_apply(db, db_get(res, i, 0), "void", &c, NULL);
    db_res_free(res);
    return rc;
}

/* ---- production ---- */

static void copy_text(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

int card_claim_next(struct db *db, struct job *job, const char *instance)
{
    struct db_res *card = NULL, *att = NULL;
    int rc =
        db_exec(db, &card,
                "SELECT c.serial, b.batch_no FROM cards c JOIN stock_batches b ON b.id = c.batch_id"
                " WHERE c.state = 'available' ORDER BY c.batch_id, c.serial LIMIT 1"
                " FOR UPDATE OF c SKIP LOCKED",
                0, NULL);
    if (rc)
        return rc;
    if (db_rows(card) == 0) {
        db_res_free(card);
        return -ENOSPC;
    }
    snprintf(job->card_serial, sizeof(job->card_serial), "%s", db_get(card, 0, 0));
    snprintf(job->batch_no, sizeof(job->batch_no), "%s", db_get(card, 0, 1));
    db_res_free(card);
    char actor[64];
    snprintf(actor, sizeof(actor), "station:%s", job->station_id);
    struct card_change c = {
        .ch = { .actor = actor, .request_no = job->request_no, .station_id = job->station_id },
        .request_id = job->request_id,
    };
    rc = card_apply(db, job->card_serial, "claim", &c, NULL);
    if (!rc)
        rc = db_query(
            db, &att,
            "INSERT INTO production_attempts (request_id, card_serial, station_id, instance)"
            " VALUES ($1::bigint, $2, $3, $4) RETURNING id",
            job->request_id, job->card_serial, job->station_id, instance);
    if (!rc)
        snprintf(job->attempt_id, sizeof(job->attempt_id), "%s", db_get(att, 0, 0));
    db_res_free(att);
    return rc;
}

int card_audit_step(struct db *db, const struct job *job, const char *action,
                    const char *detail_json)
{
    char actor[64];
    snprintf(actor, sizeof(actor), "station:%s", job->station_id);
    return audit_append(db, actor, action, job->request_no, job->card_serial, job->station_id,
                        detail_json);
}

int card_attempt_finish(struct db *db, const char *attempt_id, const char *outcome,
                        const char *step, const char *reason)
{
    return db_query(db, NULL,
                    "UPDATE production_attempts SET outcome = $2, finished_at = now(), step = $3,"
                    " reason = $4 WHERE id = $1::bigint",
                    attempt_id, outcome, step, reason);
}

#define RECOVERED_REASON "fate unknown after restart: rejected"

int card_recover_station(struct db *db, const char *station_id, const char *actor,
                         struct db_res **lost)
{
    int rc = db_query(db, lost,
                      "UPDATE production_attempts p SET outcome = 'unknown', finished_at = now(),"
                      " step = coalesce(step, 'in_flight'), reason = '" RECOVERED_REASON "'"
                      " FROM requests r WHERE r.id = p.request_id"
                      " AND p.station_id = $1 AND p.outcome = 'in_progress'"
                      " RETURNING p.request_id, r.request_no, p.card_serial",
                      station_id);
    struct card_change c = {
        .ch = { .actor = actor,
                .station_id = station_id,
                .detail_json = "{\"outcome\":\"spoiled\",\"reason\":\"" RECOVERED_REASON "\"}" },
        .reason = RECOVERED_REASON,
    };
    for (size_t i = 0; !rc && i < db_rows(*lost); i++) {
        c.ch.request_no = db_get(*lost, i, 1);
        const char *serial = db_get(*lost, i, 2);
        rc = serial ? card_apply(db, serial, "recover", &c, NULL) : -EPERM;
        if (rc == -EPERM) {
            /* The card is no longer in production (or there was none): the
             * attempt is resolved all the same, and said so. */
            c.ch.card_serial = serial;
            rc = audit_change(db, "job.recovered", &c.ch);
            c.ch.card_serial = NULL;
        }
    }
    if (rc) {
        db_res_free(*lost);
        *lost = NULL;
    }
    return rc;
}

int card_face_data(struct db *db, const char *request_no, struct job *job)
{
    struct db_res *res = NULL;
    memset(job, 0, sizeof(*job));
    /* The same dates as request_take_next(), from the moment the card was claimed. */
    int rc = db_query(
        db, &res,
        "SELECT r.id, r.request_no, r.kind, r.national_id, r.name_ar, r.name_en,"
        " to_char(r.birth_date, 'YYYY-MM-DD'), r.sex, r.nationality,"
        " to_char((coalesce(a.started_at, now()) AT TIME ZONE 'Asia/Riyadh')::date, 'YYYY-MM-DD'),"
        " to_char((coalesce(a.started_at, now()) AT TIME ZONE 'Asia/Riyadh')::date"
        "  + interval '10 years', 'YYYY-MM-DD'),"
        " a.card_serial, a.id, a.station_id"
        " FROM requests r LEFT JOIN LATERAL ("
        "  SELECT p.id, p.card_serial, p.started_at, p.station_id FROM production_attempts p"
        "  WHERE p.request_id = r.id AND p.outcome IN ('produced','in_progress')"
        "  AND p.card_serial IS NOT NULL ORDER BY p.id DESC LIMIT 1) a ON true"
        " WHERE r.request_no = $1",
        request_no);
    if (rc)
        return rc;
    if (db_rows(res) == 0) {
        db_res_free(res);
        return -ENOENT;
    }
    copy_text(job->request_id, sizeof(job->request_id), db_get(res, 0, 0));
    copy_text(job->request_no, sizeof(job->request_no), db_get(res, 0, 1));
    copy_text(job->kind, sizeof(job->kind), db_get(res, 0, 2));
    copy_text(job->national_id, sizeof(job->national_id), db_get(res, 0, 3));
    copy_text(job->name_ar, sizeof(job->name_ar), db_get(res, 0, 4));
    copy_text(job->name_en, sizeof(job->name_en), db_get(res, 0, 5));
    copy_text(job->birth_date, sizeof(job->birth_date), db_get(res, 0, 6));
    copy_text(job->sex, sizeof(job->sex), db_get(res, 0, 7));
    copy_text(job->nationality, sizeof(job->nationality), db_get(res, 0, 8));
    copy_text(job->issue_date, sizeof(job->issue_date), db_get(res, 0, 9));
    copy_text(job->expiry_date, sizeof(job->expiry_date), db_get(res, 0, 10));
    copy_text(job->card_serial, sizeof(job->card_serial), db_get(res, 0, 11));
    copy_text(job->attempt_id, sizeof(job->attempt_id), db_get(res, 0, 12));
    copy_text(job->station_id, sizeof(job->station_id), db_get(res, 0, 13));
    db_res_free(res);
    return 0;
}

/* ---- batches ---- */

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
        rc = audit_append(db, actor, "stock.received", NULL, NULL, NULL, detail);
    }
    if (!rc)
        rc = db_commit(db);
out:
    db_rollback(db);
    db_res_free(res);
    return rc;
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
