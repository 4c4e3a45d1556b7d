/* courier.c — the HTTP handlers of the courier's calls (see courier.h): the
 * events are checked here and applied by the parcel aggregate
 * (store_parcel.c); the answers are built here. */
#include "courier.h"
#include "app.h"
#include "branch.h"
#include "calendar.h"
#include "db.h"
#include "ids.h"
#include "fields.h"
#include "store_parcel.h"
#include "log.h"
#include "parcel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LOCATION 200

/* The "result" of each outcome; an event dated before its dispatch is
 * answered as invalid, like an event that fails its checks. */
static const char *const result_names[] = {
    [PARCEL_APPLIED] = "applied",     [PARCEL_RECORDED] = "recorded",
    [PARCEL_DUPLICATE] = "duplicate", [PARCEL_NOT_FOUND] = "not_found",
    [PARCEL_FAILED] = "error",        [PARCEL_BEFORE_DISPATCH] = "invalid",
};

/* A string member: NULL when absent or null (required says whether that is
 * an error), else its text if it is a string of 1..maxlen bytes. */
static const char *string_member(json_t *obj, const char *key, size_t maxlen, bool required,
                                 const char *prefix, json_t *errors)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            field_error_at(errors, prefix, key, "required");
        return NULL;
    }
    if (!json_is_string(v)) {
        field_error_at(errors, prefix, key, "type");
        return NULL;
    }
    size_t n = json_string_length(v);
    if (n == 0) {
        field_error_at(errors, prefix, key, "required");
        return NULL;
    }
    if (n > maxlen || strlen(json_string_value(v)) != n) {
        field_error_at(errors, prefix, key, "length");
        return NULL;
    }
    return json_string_value(v);
}

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

/* Checks one event; fills ev. Returns the number of failing fields. */
static int event_validate(json_t *obj, const char *prefix, time_t now, struct courier_event *ev,
                          json_t *errors)
{
    static const char *const reasons[] = { "no_one_home", "address_not_found", "refused", "other" };
    size_t before = json_array_size(errors);
    memset(ev, 0, sizeof(*ev));
    ev->code = -1;
    if (!json_is_object(obj)) {
        json_array_append_new(
            errors, json_pack("{s:s, s:s}", "field", prefix[0] ? prefix : "event", "code", "type"));
        return 1;
    }
    ev->event_id = string_member(obj, "event_id", 64, true, prefix, errors);
    if (ev->event_id && !printable_ascii(ev->event_id)) {
        field_error_at(errors, prefix, "event_id", "format");
        ev->event_id = NULL;
    }
    ev->tracking_no = string_member(obj, "tracking_no", 13, true, prefix, errors);
    if (ev->tracking_no && !s10_valid(ev->tracking_no))
        field_error_at(errors, prefix, "tracking_no", "format");
    const char *code = string_member(obj, "code", 32, true, prefix, errors);
    if (code && (ev->code = parcel_code_parse(code)) < 0)
        field_error_at(errors, prefix, "code", "enum");
    const char *at = string_member(obj, "at", 40, true, prefix, errors);
    if (at && timestamp_parse(at, &ev->at) != 0)
        field_error_at(errors, prefix, "at", "format");
    else if (at && ev->at > now + PARCEL_FUTURE_SKEW_S)
        field_error_at(errors, prefix, "at", "future");
    else if (at)
        timestamp_format(ev->at, ev->at_text);
    ev->reason = string_member(obj, "reason", 32, false, prefix, errors);
    if (ev->reason) {
        bool known = false;
        for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
            known |= strcmp(ev->reason, reasons[i]) == 0;
        if (!known)
            field_error_at(errors, prefix, "reason", "enum");
    }
    ev->location = string_member(obj, "location", MAX_LOCATION, false, prefix, errors);
    return (int)(json_array_size(errors) - before);
}

/* Applies one valid event and builds its result object. */
static json_t *apply_event(struct http_req *rq, struct db *db, const char *courier_id,
                           const struct courier_event *ev, const char *prefix,
                           enum parcel_result *outcome)
{
    int rc = 0;
    const struct parcel_rules rules = { .actor = rq->who.name,
                                        .max_failed = rq->app->cfg->delivery_attempts,
                                        .collection_days = rq->app->cfg->collection_days };
    json_t *r = json_pack("{s:s}", "event_id", ev->event_id);
    json_t *view = json_object();
    enum parcel_result o =
        r && view ? parcel_apply_event(db, courier_id, ev, &rules, view, &rc) : PARCEL_FAILED;
    if (r && (o == PARCEL_APPLIED || o == PARCEL_RECORDED || o == PARCEL_DUPLICATE))
        json_object_update(r, view);
    json_decref(view);
    if (r)
        json_object_set_new(r, "result", json_string(result_names[o]));
    if (r && o == PARCEL_BEFORE_DISPATCH) {
        char field[48];
        snprintf(field, sizeof(field), "%sat", prefix);
        json_object_set_new(r, "errors",
                            json_pack("[{s:s, s:s}]", "field", field, "code", "before_dispatch"));
    }
    if (o == PARCEL_FAILED)
        log_error("courier event %s failed (%d): %s", ev->event_id, rc, db_error_message(db));
    *outcome = o;
    return r;
}

/* The courier behind the token (auth_lookup read it); answers and returns
 * false when none. */
static bool courier_self(struct http_req *rq, char id[24])
{
    if (!rq->who.courier_id[0]) {
        http_problem(rq, 403, "forbidden", "Forbidden", "This token belongs to no courier.", NULL);
        return false;
    }
    snprintf(id, 24, "%s", rq->who.courier_id);
    return true;
}

static void post_single(struct http_req *rq, struct db *db, const char *courier_id, time_t now)
{
    struct courier_event ev;
    json_t *errors = json_array();
    if (event_validate(rq->json, "", now, &ev, errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid event", "One or more fields are invalid.",
                     errors);
        return;
    }
    json_decref(errors);
    enum parcel_result o;
    json_t *r = apply_event(rq, db, courier_id, &ev, "", &o);
    if (o == PARCEL_BEFORE_DISPATCH) {
        http_problem(rq, 422, "validation", "Invalid event",
                     "The event is dated before the card was dispatched.",
                     json_incref(json_object_get(r, "errors")));
        json_decref(r);
    } else if (o == PARCEL_NOT_FOUND) {
        http_problem(rq, 404, "not_found", "Not found",
                     "No parcel of this courier has this tracking number.", NULL);
        json_object_set_new(rq->reply, "event_id", json_string(ev.event_id));
        json_decref(r);
    } else if (o == PARCEL_FAILED || !r) {
        json_decref(r);
        http_internal_error(rq, "courier event not applied");
    } else {
        http_json(rq, 200, r);
    }
}

/* The result object of one batch event once applied. */
static json_t *batch_result(const struct parcel_batch_item *it, const char *prefix)
{
    json_t *r = json_pack("{s:s}", "event_id", it->ev->event_id);
    if (!r)
        return NULL;
    if (it->result == PARCEL_APPLIED || it->result == PARCEL_RECORDED ||
        it->result == PARCEL_DUPLICATE)
        json_object_update(r, it->view);
    json_object_set_new(r, "result", json_string(result_names[it->result]));
    if (it->result == PARCEL_BEFORE_DISPATCH) {
        char field[48];
        snprintf(field, sizeof(field), "%sat", prefix);
        json_object_set_new(r, "errors",
                            json_pack("[{s:s, s:s}]", "field", field, "code", "before_dispatch"));
    }
    return r;
}

/* Every event is checked first; the valid ones are applied together, in
 * one transaction (parcel_apply_batch), with the outcome each would have
 * had alone in the order sent. */
static void post_batch(struct http_req *rq, struct db *db, const char *courier_id, time_t now)
{
    json_t *events = json_object_get(rq->json, "events");
    const char *why = !json_is_array(events)                         ? "type"
                      : json_array_size(events) == 0                 ? "required"
                      : json_array_size(events) > COURIER_MAX_EVENTS ? "too_many"
                                                                     : NULL;
    if (why) {
        http_problem(rq, 422, "validation", "Invalid events", "The events list is invalid.",
                     json_pack("[{s:s, s:s}]", "field", "events", "code", why));
        return;
    }
    size_t n = json_array_size(events);
    struct courier_event *evs = calloc(n, sizeof(*evs));
    struct parcel_batch_item *items = calloc(n, sizeof(*items));
    json_t **invalid = calloc(n, sizeof(*invalid));
    json_t *results = json_array();
    bool any_failed = !evs || !items || !invalid || !results;
    size_t i;
    json_t *obj;
    json_array_foreach(events, i, obj)
    {
        if (any_failed)
            break;
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "events[%zu].", i);
        json_t *errors = json_array();
        if (event_validate(obj, prefix, now, &evs[i], errors) > 0) {
            const char *id =
                json_is_object(obj) ? json_string_value(json_object_get(obj, "event_id")) : NULL;
            invalid[i] =
                json_pack("{s:s?, s:s, s:o}", "event_id", id && strlen(id) <= 64 ? id : NULL,
                          "result", "invalid", "errors", errors);
            any_failed |= !invalid[i];
        } else {
            json_decref(errors);
            items[i].ev = &evs[i];
            items[i].view = json_object();
            any_failed |= !items[i].view;
        }
    }
    if (!any_failed) {
        const struct parcel_rules rules = { .actor = rq->who.name,
                                            .max_failed = rq->app->cfg->delivery_attempts,
                                            .collection_days = rq->app->cfg->collection_days };
        int rc = parcel_apply_batch(db, courier_id, items, n, &rules);
        if (rc)
            log_error("courier batch of %zu events failed (%d): %s", n, rc, db_error_message(db));
        for (i = 0; i < n; i++) {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "events[%zu].", i);
            json_t *r = invalid[i];
            invalid[i] = NULL;
            if (!r)
                r = batch_result(&items[i], prefix);
            any_failed |= !r || (items[i].ev && items[i].result == PARCEL_FAILED);
            if (r)
                json_array_append_new(results, r);
        }
    }
    for (i = 0; items && i < n; i++) {
        json_decref(items[i].view);
        if (invalid)
            json_decref(invalid[i]);
    }
    free(evs);
    free(items);
    free(invalid);
    if (any_failed) {
        http_problem(rq, 503, "unavailable", "Service unavailable",
                     "Some events could not be applied; send them again.", NULL);
        snprintf(rq->retry_after, sizeof(rq->retry_after), "5");
        json_object_set_new(rq->reply, "results", results ? results : json_array());
        return;
    }
    http_json(rq, 200, json_pack("{s:o}", "results", results));
}

void courier_events_post(struct http_req *rq)
{
    struct db *db = http_db(rq);
    char courier_id[24];
    if (!db || !courier_self(rq, courier_id))
        return;
    time_t now = time(NULL);
    if (json_object_get(rq->json, "events"))
        post_batch(rq, db, courier_id, now);
    else
        post_single(rq, db, courier_id, now);
}

void courier_parcel_get(struct http_req *rq)
{
    const char *tracking_no = rq->param[0];
    char courier_id[24], parcel_id[24];
    struct db *db = http_db(rq);
    if (!db || !courier_self(rq, courier_id))
        return;
    int rc = s10_valid(tracking_no) ? parcel_find(db, tracking_no, courier_id, parcel_id) : -ENOENT;
    if (rc == -ENOENT) {
        http_problem(rq, 404, "not_found", "Not found",
                     "No parcel of this courier has this tracking number.", NULL);
        return;
    }
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        return;
    }
    json_t *obj = json_object();
    rc = obj ? parcel_view(db, parcel_id, obj) : -ENOMEM;
    if (rc) {
        json_decref(obj);
        http_internal_error(rq, "parcel view failed");
    } else {
        http_json(rq, 200, obj);
    }
}
