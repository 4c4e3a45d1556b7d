/* it_courier_batch.c — a courier's batch is applied in one transaction,
 * set-wise, yet each event's outcome is what it would have been sent alone
 * in the same order: the same results and views, the same parcel states,
 * and the same history, notifications, callbacks and audit entries. Repeats
 * (in the batch, or of events sent before) stay duplicates that change
 * nothing, and two batches over the same parcels at once both land. */
#include "flow.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct service svc;
static char intake[128], operator_[128], courier[128], secret[128];
static int next_id = 700;

#define PARCELS 4

/* A produced request dispatched to fastpost, handed over two days ago. */
static void parcel(char no[40], char tracking[14])
{
    char nine[16], nid[11];
    snprintf(nine, sizeof(nine), "1%08d", next_id);
    make_national_id(nine, nid);
    snprintf(no, 40, "RQ-CB-%06d", next_id++);
    assert_int_equal(flow_produced(&svc, intake, sample_json(no, nid, "national_id", "lost")), 0);
    assert_int_equal(flow_dispatch(&svc, operator_, "fastpost", no, tracking), 0);
    assert_int_equal(flow_sql(NULL, 0,
                              "UPDATE parcels SET created_at = created_at - interval '2 days'"
                              " WHERE tracking_no = '%s'",
                              tracking),
                     0);
}

static void post(const char *body, struct reply *r)
{
    assert_int_equal(flow_signed(&svc, "POST", "/v1/courier/events", courier, secret, 0, body, r),
                     0);
}

/* The script of one set: events of four parcels, some out of time order,
 * one repeated inside the batch, one before the dispatch, one for a parcel
 * that does not exist. Event ids carry the set's prefix; the parcel of
 * event i is tracking[index]. */
static json_t *script(const char *set, char tracking[PARCELS][14])
{
    static const struct {
        int parcel;
        const char *code;
        long offset;
        const char *id;
    } ev[] = {
        { 0, "picked_up", -7200, "a1" },        { 0, "out_for_delivery", -3600, "a2" },
        { 0, "delivery_failed", -3000, "a3" },  { 0, "out_for_delivery", -2400, "a4" },
        { 0, "delivery_failed", -1800, "a5" }, /* the second failure: to a branch */
        { 0, "arrived_at_branch", -600, "a6" }, { 1, "in_transit", -5000, "b1" },
        { 1, "delivered", -1000, "b2" },        { 1, "picked_up", -6000, "b3" }, /* late */
        { 1, "delivered", -1000, "b2" }, /* the same event again */
        { 2, "out_for_delivery", -4000, "c1" }, { 2, "delivery_failed", -3500, "c2" },
        { 2, "in_transit", -3800, "c3" },     /* between the two: recorded */
        { 3, "picked_up", -86400 * 5, "d1" }, /* before the dispatch */
        { 3, "in_transit", -100, "d2" },        { -1, "in_transit", -100, "x1" },
    };
    json_t *events = json_array();
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
        char at[21], id[40];
        flow_time(ev[i].offset, at);
        snprintf(id, sizeof(id), "%s-%s", set, ev[i].id);
        json_array_append_new(
            events, json_pack("{s:s, s:s, s:s, s:s, s:s?}", "event_id", id, "tracking_no",
                              ev[i].parcel >= 0 ? tracking[ev[i].parcel] : "RR999999995SA", "code",
                              ev[i].code, "at", at, "reason",
                              strcmp(ev[i].code, "delivery_failed") == 0 ? "no_one_home" : NULL));
    }
    return events;
}

/* A result with the set's own names taken out, to compare two sets. */
static char *comparable(json_t *result, char tracking[PARCELS][14])
{
    json_t *r = json_deep_copy(result);
    const char *id = flow_str(r, "event_id");
    json_object_set_new(r, "event_id", json_string(strchr(id, '-') ? strchr(id, '-') + 1 : id));
    const char *t = flow_str(r, "tracking_no");
    for (int p = 0; p < PARCELS; p++)
        if (strcmp(t, tracking[p]) == 0) {
            json_object_set_new(r, "tracking_no", json_integer(p)); /* frees t */
            break;
        }
    char *text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(r);
    return text;
}

/* What the request of a parcel went through: status, failures, branch,
 * deadline, and its history, notifications, callbacks and audit entries. */
static void footprint(const char *tracking, char *out, size_t len)
{
    flow_sql(
        out, len,
        "SELECT r.status || '|' || p.failed_attempts || '|' || coalesce(p.branch_id, '-')"
        " || '|' || coalesce(p.collect_by::text, '-')"
        " || '|' || (SELECT string_agg(coalesce(e.status, '.') || '@'"
        "   || to_char(e.at, 'HH24:MI:SS'), ',' ORDER BY e.at, e.status NULLS FIRST)"
        "   FROM request_events e WHERE e.request_id = r.id AND e.actor = 'fastpost')"
        " || '|' || (SELECT string_agg(n.status, ',' ORDER BY n.id) FROM notifications n"
        "   WHERE n.request_id = r.id)"
        " || '|' || (SELECT string_agg(c.sequence || c.status || (c.payload->'delivery')::text,"
        "   ',' ORDER BY c.sequence) FROM callbacks c WHERE c.request_id = r.id)"
        " || '|' || (SELECT count(*) FROM audit_log a WHERE a.request_no = r.request_no)"
        " || '|' || (SELECT string_agg(ce.code || ce.moved_status::text, ',' ORDER BY ce.at,"
        "   ce.code) FROM courier_events ce WHERE ce.parcel_id = p.id)"
        " FROM parcels p JOIN requests r ON r.id = p.request_id WHERE p.tracking_no = '%s'",
        tracking);
}

static void test_batch_is_the_events_one_by_one(void **state)
{
    (void)state;
    char nos[2][PARCELS][40], tracking[2][PARCELS][14];
    for (int set = 0; set < 2; set++)
        for (int p = 0; p < PARCELS; p++)
            parcel(nos[set][p], tracking[set][p]);
    /* A callback is written only when the platform is set up: it is. */
    json_t *one = script("one", tracking[0]), *all = script("all", tracking[1]);
    json_t *singles = json_array();
    size_t i;
    json_t *ev;
    json_array_foreach(one, i, ev)
    {
        char *text = json_dumps(ev, JSON_COMPACT);
        struct reply r;
        post(text, &r);
        free(text);
        /* a single event answers 404 / 422 as problems: the batch says
         * not_found / invalid */
        json_t *res = r.status == 200   ? json_incref(r.json)
                      : r.status == 404 ? json_pack("{s:s, s:s}", "event_id",
                                                    flow_str(ev, "event_id"), "result", "not_found")
                                        : json_pack("{s:s, s:s, s:O}", "event_id",
                                                    flow_str(ev, "event_id"), "result", "invalid",
                                                    "errors", json_object_get(r.json, "errors"));
        json_array_append_new(singles, res);
        reply_free(&r);
    }
    json_t *wrap = json_pack("{s:O}", "events", all);
    char *text = json_dumps(wrap, JSON_COMPACT);
    json_decref(wrap);
    struct reply r;
    post(text, &r);
    free(text);
    assert_int_equal(r.status, 200);
    json_t *results = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(results), json_array_size(singles));
    json_array_foreach(results, i, ev)
    {
        char *a = comparable(json_array_get(singles, i), tracking[0]);
        char *b = comparable(ev, tracking[1]);
        /* the field named in a batch's error is the event's */
        if (strstr(b, "events[")) {
            char *f = strstr(b, "events[");
            char *dot = strchr(f, '.');
            memmove(f, dot + 1, strlen(dot + 1) + 1);
        }
        if (strcmp(a, b) != 0)
            fail_msg("event %zu: alone %s, in the batch %s", i, a, b);
        free(a);
        free(b);
    }
    reply_free(&r);
    for (int p = 0; p < PARCELS; p++) {
        char a[4096], b[4096];
        footprint(tracking[0][p], a, sizeof(a));
        footprint(tracking[1][p], b, sizeof(b));
        if (strcmp(a, b) != 0)
            fail_msg("parcel %d: alone %s\nin the batch %s", p, a, b);
    }
    /* The first parcel went to a branch and is ready there. */
    char out[64];
    flow_sql(out, sizeof(out), "SELECT status FROM requests WHERE request_no = '%s'", nos[1][0]);
    assert_string_equal(out, "ready_for_collection");

    /* The whole batch again: every event a duplicate, nothing written. */
    long before = harness_sql_long(
        "SELECT (SELECT count(*) FROM courier_events) + (SELECT count(*) FROM request_events)"
        " + (SELECT count(*) FROM notifications) + (SELECT count(*) FROM audit_log)");
    wrap = json_pack("{s:o}", "events", all);
    text = json_dumps(wrap, JSON_COMPACT);
    json_decref(wrap);
    post(text, &r);
    free(text);
    assert_int_equal(r.status, 200);
    json_array_foreach(json_object_get(r.json, "results"), i, ev)
    {
        const char *o = flow_str(ev, "result");
        if (strcmp(o, "duplicate") && strcmp(o, "not_found") && strcmp(o, "invalid"))
            fail_msg("event %zu sent again: %s", i, o);
    }
    reply_free(&r);
    assert_int_equal(
        harness_sql_long(
            "SELECT (SELECT count(*) FROM courier_events) + (SELECT count(*) FROM request_events)"
            " + (SELECT count(*) FROM notifications) + (SELECT count(*) FROM audit_log)"),
        before);
    json_decref(one);
    json_decref(singles);
}

/* Two batches over the same parcels, sent at once, in opposite orders:
 * both land (the parcels are locked in one order), nothing twice. */
struct sender {
    json_t *events;
    long status;
};

static void *send_batch(void *arg)
{
    struct sender *s = arg;
    json_t *wrap = json_pack("{s:O}", "events", s->events);
    char *text = json_dumps(wrap, JSON_COMPACT);
    json_decref(wrap);
    struct reply r;
    s->status = flow_signed(&svc, "POST", "/v1/courier/events", courier, secret, 0, text, &r) == 0
                    ? r.status
                    : -1;
    if (s->status == 200)
        reply_free(&r);
    free(text);
    return NULL;
}

static void test_batches_at_once(void **state)
{
    (void)state;
    enum {
        N = 40
    };
    char nos[N][40], tracking[N][14];
    for (int p = 0; p < N; p++)
        parcel(nos[p], tracking[p]);
    struct sender s[2] = { { json_array(), 0 }, { json_array(), 0 } };
    for (int p = 0; p < N; p++) {
        char at[21], id[32];
        flow_time(-3000 + p, at);
        snprintf(id, sizeof(id), "up-%d", p);
        json_array_append_new(s[0].events,
                              json_pack("{s:s, s:s, s:s, s:s}", "event_id", id, "tracking_no",
                                        tracking[p], "code", "picked_up", "at", at));
        flow_time(-2000 + p, at);
        snprintf(id, sizeof(id), "down-%d", N - 1 - p);
        json_array_append_new(s[1].events,
                              json_pack("{s:s, s:s, s:s, s:s}", "event_id", id, "tracking_no",
                                        tracking[N - 1 - p], "code", "out_for_delivery", "at", at));
        /* and one event that both batches carry */
        if (p % 10 == 0) {
            snprintf(id, sizeof(id), "both-%d", p);
            json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "event_id", id, "tracking_no",
                                  tracking[p], "code", "in_transit", "at", at);
            json_array_append(s[0].events, e);
            json_array_append_new(s[1].events, e);
        }
    }
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&t[k], NULL, send_batch, &s[k]), 0);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    assert_int_equal(s[0].status, 200);
    assert_int_equal(s[1].status, 200);
    assert_int_equal(harness_sql_long("SELECT count(*) FROM courier_events WHERE event_id LIKE"
                                      " 'up-%%' OR event_id LIKE 'down-%%' OR event_id LIKE"
                                      " 'both-%%'"),
                     2 * N + N / 10);
    for (int p = 0; p < N; p++) {
        char out[64];
        flow_sql(out, sizeof(out), "SELECT status FROM requests WHERE request_no = '%s'", nos[p]);
        assert_string_equal(out, "out_for_delivery");
    }
    json_decref(s[0].events);
    json_decref(s[1].events);
}

static int group_setup(void **state)
{
    (void)state;
    char path[512], out[256];
    if (harness_setup(&svc, NULL) != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "cities", "import",
                    harness_src("../shared/reference/cities.csv", path, sizeof(path)), NULL) != 0 ||
        harness_ctl(&svc, out, sizeof(out), "branches", "import",
                    harness_src("../shared/reference/branches.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "platform", "secret", NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher-approvals", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-fatimah", operator_, sizeof(operator_)) ||
        flow_courier_add(&svc, "fastpost", courier, sizeof(courier), secret, sizeof(secret)))
        return -1;
    return harness_start(&svc);
}

static int group_teardown(void **state)
{
    (void)state;
    return harness_stop(&svc, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_is_the_events_one_by_one),
        cmocka_unit_test(test_batches_at_once),
    };
    return cmocka_run_group_tests_name("courier batch", tests, group_setup, group_teardown);
}
