/* dispatch.c — handing produced cards to a courier.
 *
 * A call is atomic: every request must be `produced`, or nothing is
 * dispatched and the 409 lists each request that is not. Tracking numbers
 * come from the tracking_serial sequence, which never cycles, so a number is
 * never given twice. */
#include "dispatch.h"
#include "db.h"
#include "ids.h"
#include "journal.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void field_error(json_t *errors, const char *field, const char *code)
{
    json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "code", code));
}

/* Checks the body; returns the courier's name or NULL (errors filled). */
static const char *validate(json_t *body, json_t *errors)
{
    const char *courier = NULL;
    json_t *c = json_object_get(body, "courier");
    if (!c || json_is_null(c))
        field_error(errors, "courier", "required");
    else if (!json_is_string(c))
        field_error(errors, "courier", "type");
    else if (json_string_length(c) == 0)
        field_error(errors, "courier", "required");
    else if (json_string_length(c) > 64 || strlen(json_string_value(c)) != json_string_length(c))
        field_error(errors, "courier", "length");
    else
        courier = json_string_value(c);

    json_t *nos = json_object_get(body, "request_nos");
    if (!nos || json_is_null(nos)) {
        field_error(errors, "request_nos", "required");
        return courier;
    }
    if (!json_is_array(nos)) {
        field_error(errors, "request_nos", "type");
        return courier;
    }
    size_t n = json_array_size(nos);
    if (n == 0) {
        field_error(errors, "request_nos", "required");
        return courier;
    }
    if (n > DISPATCH_MAX_ITEMS) {
        field_error(errors, "request_nos", "too_many");
        return courier;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(nos, i);
        char field[40];
        snprintf(field, sizeof(field), "request_nos[%zu]", i);
        const char *s = json_string_value(v);
        if (!json_is_string(v)) {
            field_error(errors, field, "type");
            continue;
        }
        if (strlen(s) != json_string_length(v) || !request_no_valid(s)) {
            field_error(errors, field, "format");
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            const char *t = json_string_value(json_array_get(nos, j));
            if (t && strcmp(s, t) == 0) {
                field_error(errors, field, "duplicate");
                break;
            }
        }
    }
    return courier;
}

void dispatches_create(struct http_req *rq)
{
    json_t *errors = json_array();
    json_t *not_produced = NULL, *items = NULL;
    struct db_res *cres = NULL, *res = NULL;
    char *nos_text = NULL;
    struct db *db = NULL;

    const char *courier = validate(rq->json, errors);
    if (json_array_size(errors) == 0) {
        db = http_db(rq);
        if (!db)
            goto out;
        int rc = db_query(db, &cres, "SELECT id FROM couriers WHERE name = $1", courier);
        if (rc) {
            http_internal_error(rq, db_error_message(db));
            goto out;
        }
        if (db_rows(cres) != 1)
            field_error(errors, "courier", "unknown");
    }
    if (json_array_size(errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     errors);
        errors = NULL;
        goto out;
    }
    const char *courier_id = db_get(cres, 0, 0);
    json_t *nos = json_object_get(rq->json, "request_nos");
    nos_text = json_dumps(nos, JSON_COMPACT);
    if (!nos_text) {
        http_internal_error(rq, "out of memory");
        goto out;
    }

    /* Rows are locked in id order, so two dispatches never deadlock. */
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, NULL,
                      "SELECT id FROM requests WHERE request_no IN"
                      " (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY id FOR UPDATE",
                      nos_text);
    if (!rc)
        rc = db_query(db, &res,
                      "SELECT q.no, r.id, r.status, q.ord FROM jsonb_array_elements_text($1::jsonb)"
                      " WITH ORDINALITY AS q(no, ord)"
                      " LEFT JOIN requests r ON r.request_no = q.no ORDER BY q.ord",
                      nos_text);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    size_t n = db_rows(res);
    not_produced = json_array();
    for (size_t i = 0; i < n; i++) {
        if (db_is_null(res, i, 1)) {
            char field[40];
            snprintf(field, sizeof(field), "request_nos[%ld]", db_get_long(res, i, 3, 1) - 1);
            field_error(errors, field, "unknown");
        } else if (strcmp(db_get(res, i, 2), "produced") != 0) {
            json_array_append_new(not_produced,
                                  json_pack("{s:s, s:s}", "request_no", db_get(res, i, 0), "status",
                                            db_get(res, i, 2)));
        }
    }
    if (json_array_size(errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid request", "Unknown request numbers.", errors);
        errors = NULL;
        goto out;
    }
    if (json_array_size(not_produced) > 0) {
        http_problem(rq, 409, "not_produced", "Conflict",
                     "Only produced cards can be dispatched; nothing was dispatched.", NULL);
        json_object_set(rq->reply, "requests", not_produced);
        goto out;
    }

    struct db_res *dres = NULL;
    rc = db_query(db, &dres,
                  "INSERT INTO dispatches (courier_id, created_by) VALUES ($1::bigint, $2)"
                  " RETURNING id",
                  courier_id, rq->who.name);
    char dispatch_id[24] = "";
    if (!rc)
        snprintf(dispatch_id, sizeof(dispatch_id), "%s", db_get(dres, 0, 0));
    db_res_free(dres);

    items = json_array();
    /* In the order the caller listed. */
    for (size_t i = 0; !rc && i < n; i++) {
        struct db_res *sres = NULL;
        rc = db_query(db, &sres, "SELECT nextval($1::regclass)", "tracking_serial");
        long serial = rc ? 0 : db_get_long(sres, 0, 0, 0);
        db_res_free(sres);
        char tracking_no[14];
        if (!rc && s10_format(DISPATCH_TRACKING_PREFIX, serial, tracking_no) != 0)
            rc = -ERANGE;
        if (rc)
            break;
        const char *request_id = db_get(res, i, 1), *request_no = db_get(res, i, 0);
        rc = db_query(db, NULL,
                      "INSERT INTO parcels (tracking_no, dispatch_id, courier_id, request_id)"
                      " VALUES ($1, $2::bigint, $3::bigint, $4::bigint)",
                      tracking_no, dispatch_id, courier_id, request_id);
        json_t *dj = json_pack("{s:s, s:s}", "tracking_no", tracking_no, "courier", courier);
        char *detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
        json_decref(dj);
        if (!rc && !detail)
            rc = -ENOMEM;
        if (!rc)
            rc = journal_status(db, request_id, "dispatched", rq->who.name, NULL, detail);
        if (!rc)
            rc = audit(db, rq->who.name, "card.dispatched", request_no, NULL, NULL, detail);
        free(detail);
        json_array_append_new(
            items, json_pack("{s:s, s:s}", "request_no", request_no, "tracking_no", tracking_no));
    }
    if (!rc)
        rc = db_commit(db);
    if (rc) {
        if (rc == -ERANGE)
            log_error("tracking_serial is exhausted: no tracking number left");
        http_internal_error(rq,
                            rc == -ERANGE ? "tracking numbers exhausted" : db_error_message(db));
        goto out;
    }
    log_info("dispatch %s: %zu cards to %s", dispatch_id, n, courier);
    http_json(rq, 201,
              json_pack("{s:I, s:s, s:O}", "dispatch_id",
                        (json_int_t)strtoll(dispatch_id, NULL, 10), "courier", courier, "items",
                        items));
out:
    if (db)
        db_rollback(db);
    json_decref(errors);
    json_decref(not_produced);
    json_decref(items);
    db_res_free(cres);
    db_res_free(res);
    free(nos_text);
}
