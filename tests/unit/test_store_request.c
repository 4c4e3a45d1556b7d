/* test_store_request.c — the request's life, run through its transition
 * table: every allowed move writes the new status, its event, the holder's
 * notification, the approval platform's callback and the audit entry; every
 * other is refused and writes nothing. The database is replaced at link time
 * (test_store_request.wrap, tests/unit/lib/fake_db.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "fake_db.h"
#include "status.h"
#include "store_request.h"

/* The request's life as README and API.md tell it, written out here on
 * its own so that a change of the table shows as a failing test. */
static const struct {
    const char *from, *event, *to, *audit;
} allowed[] = {
    { "", "receive", "queued", "request.received" },
    { "queued", "start_production", "in_production", "request.in_production" },
    { "in_production", "produce", "produced", "request.produced" },
    { "queued", "cancel", "cancelled", "request.cancelled" },
    { "in_production", "cancel", "cancelled", "request.cancelled" },
    { "produced", "cancel", "cancelled", "request.cancelled" },
    { "produced", "dispatch", "dispatched", "card.dispatched" },
    { "dispatched", "courier.in_transit", "in_transit", "parcel.in_transit" },
    { "dispatched", "courier.out_for_delivery", "out_for_delivery", "parcel.out_for_delivery" },
    { "in_transit", "courier.out_for_delivery", "out_for_delivery", "parcel.out_for_delivery" },
    { "delivery_failed", "courier.out_for_delivery", "out_for_delivery",
      "parcel.out_for_delivery" },
    { "dispatched", "courier.delivery_failed", "delivery_failed", "parcel.delivery_failed" },
    { "in_transit", "courier.delivery_failed", "delivery_failed", "parcel.delivery_failed" },
    { "out_for_delivery", "courier.delivery_failed", "delivery_failed", "parcel.delivery_failed" },
    { "dispatched", "courier.redirected_to_branch", "redirected_to_branch", "parcel.redirected" },
    { "in_transit", "courier.redirected_to_branch", "redirected_to_branch", "parcel.redirected" },
    { "out_for_delivery", "courier.redirected_to_branch", "redirected_to_branch",
      "parcel.redirected" },
    { "delivery_failed", "courier.redirected_to_branch", "redirected_to_branch",
      "parcel.redirected" },
    { "dispatched", "courier.ready_for_collection", "ready_for_collection", "parcel.at_branch" },
    { "in_transit", "courier.ready_for_collection", "ready_for_collection", "parcel.at_branch" },
    { "out_for_delivery", "courier.ready_for_collection", "ready_for_collection",
      "parcel.at_branch" },
    { "delivery_failed", "courier.ready_for_collection", "ready_for_collection",
      "parcel.at_branch" },
    { "redirected_to_branch", "courier.ready_for_collection", "ready_for_collection",
      "parcel.at_branch" },
    { "dispatched", "courier.delivered", "delivered", "parcel.delivered" },
    { "in_transit", "courier.delivered", "delivered", "parcel.delivered" },
    { "out_for_delivery", "courier.delivered", "delivered", "parcel.delivered" },
    { "delivery_failed", "courier.delivered", "delivered", "parcel.delivered" },
    { "redirected_to_branch", "courier.delivered", "delivered", "parcel.delivered" },
    { "ready_for_collection", "courier.delivered", "delivered", "parcel.delivered" },
    { "ready_for_collection", "hand_over", "collected", "card.handed_over" },
};
#define NALLOWED (sizeof(allowed) / sizeof(allowed[0]))

static const char *const statuses[] = {
    "queued",
    "in_production",
    "produced",
    "dispatched",
    "in_transit",
    "out_for_delivery",
    "delivery_failed",
    "delivered",
    "redirected_to_branch",
    "ready_for_collection",
    "collected",
    "cancelled",
};
#define NSTATUSES (sizeof(statuses) / sizeof(statuses[0]))

static const char *const events[] = {
    "receive",
    "start_production",
    "produce",
    "cancel",
    "dispatch",
    "courier.in_transit",
    "courier.out_for_delivery",
    "courier.delivery_failed",
    "courier.redirected_to_branch",
    "courier.ready_for_collection",
    "courier.delivered",
    "hand_over",
    "collect",        /* not an event of the request */
    "courier.queued", /* nor is this */
};
#define NEVENTS (sizeof(events) / sizeof(events[0]))

static int expected_row(const char *from, const char *event)
{
    for (size_t i = 0; i < NALLOWED; i++)
        if (strcmp(allowed[i].from, from) == 0 && strcmp(allowed[i].event, event) == 0)
            return (int)i;
    return -1;
}

static const char *param(const struct fake_stmt *st, int k)
{
    assert_non_null(st);
    assert_true(k < st->nparams);
    return st->params[k];
}

/* A member of a JSON object as a string (NULL when absent). */
static const char *field(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    assert_non_null(v);
    return v;
}

/* Runs one (from, event) on a stored request and checks what was written. */
static void run_one(const char *from, const char *event)
{
    const char *row[] = { from, "REQ-7", "national_id", "+966512345678" };
    fake_db_reset();
    fake_db_answer("SELECT status, request_no, kind, phone FROM requests", 4, row);
    const struct change ch = { .actor = "intake-1",
                               .at = "2026-11-29T08:00:00Z",
                               .detail_json = "{\"k\":1}" };
    int rc = request_apply(NULL, "7", event, &ch);
    int e = expected_row(from, event);
    if (e < 0) {
        if (rc != -EPERM)
            fail_msg("%s --%s--> should be refused, got %d", from, event, rc);
        assert_int_equal(fake_db_writes(), 0);
        return;
    }
    if (rc != 0)
        fail_msg("%s --%s--> %s refused (%d)", from, event, allowed[e].to, rc);
    const char *to = allowed[e].to;
    /* the status, its event and the notification, written by one statement
     * for any number of moves: its one parameter lists them (here one) */
    const struct fake_stmt *st = fake_db_find("UPDATE requests r SET status");
    assert_ptr_equal(st, fake_db_find("INSERT INTO request_events"));
    assert_ptr_equal(st, fake_db_find("INSERT INTO notifications"));
    json_t *moves = json_loads(param(st, 0), 0, NULL);
    assert_int_equal(json_array_size(moves), 1);
    json_t *m = json_array_get(moves, 0);
    assert_string_equal(field(m, "id"), "7");
    assert_string_equal(field(m, "status"), to);
    /* its event, at the courier's time, by the actor, with the detail */
    assert_string_equal(field(m, "at"), "2026-11-29T08:00:00Z");
    assert_string_equal(field(m, "actor"), "intake-1");
    assert_string_equal(field(m, "detail"), "{\"k\":1}");
    /* the holder's notification, in both languages */
    assert_string_equal(field(m, "phone"), "+966512345678");
    const struct status_label *l = status_find(to);
    assert_non_null(l);
    assert_non_null(strstr(field(m, "ar"), l->ar));
    assert_non_null(strstr(field(m, "en"), l->en));
    assert_non_null(strstr(field(m, "en"), "REQ-7"));
    json_decref(moves);
    /* the approval platform's callback, at the same time as the event */
    st = fake_db_find("INSERT INTO callbacks");
    json_t *calls = json_loads(param(st, 0), 0, NULL);
    assert_int_equal(json_array_size(calls), 1);
    m = json_array_get(calls, 0);
    assert_string_equal(field(m, "request_id"), "7");
    assert_string_equal(field(m, "status"), to);
    assert_string_equal(field(m, "at"), "2026-11-29T08:00:00Z");
    json_decref(calls);
    /* the audit entry */
    st = fake_db_find("INSERT INTO audit_log");
    json_t *audits = json_loads(param(st, 0), 0, NULL);
    assert_int_equal(json_array_size(audits), 1);
    m = json_array_get(audits, 0);
    assert_string_equal(field(m, "actor"), "intake-1");
    assert_string_equal(field(m, "action"), allowed[e].audit);
    assert_string_equal(field(m, "request_no"), "REQ-7");
    assert_string_equal(field(m, "detail"), "{\"k\":1}");
    json_decref(audits);
    assert_int_equal(fake_db_writes(), 3);
}

static void every_pair_of_status_and_event(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSTATUSES; s++)
        for (size_t e = 0; e < NEVENTS; e++)
            run_one(statuses[s], events[e]);
    fake_db_reset();
}

/* The table in the code is the list above, row for row: nothing more is
 * allowed than what this test names. */
static void table_is_the_documented_life(void **state)
{
    (void)state;
    assert_int_equal(request_ntransitions, NALLOWED);
    for (size_t i = 0; i < NALLOWED; i++) {
        const struct transition *t = request_transition_find(allowed[i].from, allowed[i].event);
        assert_non_null(t);
        assert_string_equal(t->to, allowed[i].to);
        assert_string_equal(t->audit_action, allowed[i].audit);
    }
    /* a request not stored yet can only be received */
    for (size_t e = 0; e < NEVENTS; e++)
        if (strcmp(events[e], "receive") != 0)
            assert_null(request_transition_find("", events[e]));
}

static void unknown_request_is_not_found(void **state)
{
    (void)state;
    fake_db_reset();
    const struct change ch = { .actor = "x" };
    assert_int_equal(request_apply(NULL, "8", "cancel", &ch), -ENOENT);
    assert_int_equal(fake_db_writes(), 0);
    fake_db_reset();
}

/* The parcel's statuses each have their courier event; nothing else has. */
static void courier_events_name_their_status(void **state)
{
    (void)state;
    const char *courier[] = { "in_transit",           "out_for_delivery",     "delivery_failed",
                              "redirected_to_branch", "ready_for_collection", "delivered" };
    for (size_t i = 0; i < 6; i++) {
        char want[64];
        snprintf(want, sizeof(want), "courier.%s", courier[i]);
        assert_string_equal(request_courier_event(courier[i]), want);
    }
    assert_null(request_courier_event("queued"));
    assert_null(request_courier_event("collected"));
    assert_null(request_courier_event("cancelled"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_pair_of_status_and_event),
        cmocka_unit_test(table_is_the_documented_life),
        cmocka_unit_test(unknown_request_is_not_found),
        cmocka_unit_test(courier_events_name_their_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
