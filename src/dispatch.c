/* dispatch.c — handing produced cards to a courier.
 *
 * A call is atomic: every request must be `produced`, or nothing is
 * dispatched and the 409 lists each request that is not. Tracking numbers
 * come from the tracking_serial sequence, which never cycles, so a number is
 * never given twice. */
#include "dispatch.h"
#include "db.h"
#include "ids.h"
#include "fields.h"
#include "store_parcel.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Answers a parcel_dispatch() that did not succeed. */
static void answer_refused(struct http_req *rq, struct db *db, int rc, struct dispatch_result *d)
{
    if (rc == -ENOENT) {
        http_problem(rq, 422, "validation", "Invalid request", "Unknown request numbers.",
                     json_incref(d->unknown));
    } else if (rc == -EPERM) {
        http_problem(rq, 409, "not_produced", "Conflict",
                     "Only produced cards can be dispatched; nothing was dispatched.", NULL);
        json_object_set(rq->reply, "requests", d->not_produced);
    } else {
        if (rc == -ERANGE)
            log_error("tracking_serial is exhausted: no tracking number left");
        http_internal_error(rq,
                            rc == -ERANGE ? "tracking numbers exhausted" : db_error_message(db));
    }
}

void dispatches_create(struct http_req *rq)
{
    json_t *errors = json_array();
    struct db *db = NULL;
    char courier_id[24], *nos_text = NULL;
    struct dispatch_result d = { 0 };

    const char *courier = validate(rq->json, errors);
    if (json_array_size(errors) == 0) {
        db = http_db(rq);
        if (!db)
            goto out;
        int rc = parcel_courier_by_name(db, courier, courier_id);
        if (rc == -ENOENT) {
            field_error(errors, "courier", "unknown");
        } else if (rc) {
            http_internal_error(rq, db_error_message(db));
            goto out;
        }
    }
    if (json_array_size(errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     errors);
        errors = NULL;
        goto out;
    }
    nos_text = json_dumps(json_object_get(rq->json, "request_nos"), JSON_COMPACT);
    if (!nos_text) {
        http_internal_error(rq, "out of memory");
        goto out;
    }
    int rc = parcel_dispatch(db, courier_id, courier, nos_text, rq->who.name, &d);
    if (rc) {
        answer_refused(rq, db, rc, &d);
        goto out;
    }
    log_info("dispatch %s: %zu cards to %s", d.dispatch_id, json_array_size(d.items), courier);
    http_json(rq, 201,
              json_pack("{s:I, s:s, s:O}", "dispatch_id",
                        (json_int_t)strtoll(d.dispatch_id, NULL, 10), "courier", courier, "items",
                        d.items));
out:
    json_decref(errors);
    json_decref(d.items);
    json_decref(d.unknown);
    json_decref(d.not_produced);
    free(nos_text);
}
