/* it_dispatch.c — POST /v1/dispatches through the real service: tracking
 * numbers, atomicity, validation and roles. Requests are brought to
 * `produced` with SQL, the state the production line leaves them in. */
#include "flow.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ids.h"

static struct service svc;
static char intake[128], operator_[128], courier[128], secret[128];
static int next_id = 500;

static void produced(char no[40])
{
    char nine[16], nid[11];
    snprintf(nine, sizeof(nine), "2%08d", next_id);
    make_national_id(nine, nid);
    snprintf(no, 40, "RQ-DS-%06d", next_id++);
    assert_int_equal(flow_produced(&svc, intake, sample_json(no, nid, "national_id", "damaged")),
                     0);
}

static void dispatch(const char *body, struct reply *r)
{
    assert_int_equal(http_post_json(&svc, operator_, "/v1/dispatches", body, r), 0);
}

static const char *status_of(const char *no, char out[64])
{
    flow_sql(out, 64, "SELECT status FROM requests WHERE request_no = '%s'", no);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    char path[512], out[256];
    if (harness_setup(&svc, NULL) != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "cities", "import",
                    harness_src("../shared/reference/cities.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher-approvals", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-khalid", operator_, sizeof(operator_)) ||
        flow_courier_add(&svc, "smsa", courier, sizeof(courier), secret, sizeof(secret)))
        return -1;
    return harness_start(&svc);
}

static int group_teardown(void **state)
{
    (void)state;
    return harness_stop(&svc, false);
}

static void test_dispatch(void **state)
{
    (void)state;
    char a[40], b[40], st[64];
    produced(a);
    produced(b);
    char body[256];
    snprintf(body, sizeof(body), "{\"courier\":\"smsa\",\"request_nos\":[\"%s\",\"%s\"]}", b, a);
    struct reply r;
    dispatch(body, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(flow_str(r.json, "courier"), "smsa");
    assert_true(json_integer_value(json_object_get(r.json, "dispatch_id")) > 0);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 2);
    /* In the order asked, each with a valid S10 number of ours. */
    assert_string_equal(flow_str(json_array_get(items, 0), "request_no"), b);
    assert_string_equal(flow_str(json_array_get(items, 1), "request_no"), a);
    char t0[14], t1[14];
    snprintf(t0, sizeof(t0), "%s", flow_str(json_array_get(items, 0), "tracking_no"));
    snprintf(t1, sizeof(t1), "%s", flow_str(json_array_get(items, 1), "tracking_no"));
    assert_true(s10_valid(t0));
    assert_true(s10_valid(t1));
    assert_string_not_equal(t0, t1);
    assert_int_equal(strncmp(t0, "RR", 2), 0);
    assert_string_equal(t0 + 11, "SA");
    reply_free(&r);
    assert_string_equal(status_of(a, st), "dispatched");
    assert_string_equal(status_of(b, st), "dispatched");

    /* The whole record shows the dispatch; the citizen's timeline too. */
    char path[80];
    snprintf(path, sizeof(path), "/v1/requests/%s", a);
    assert_int_equal(http_get(&svc, operator_, path, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *d = json_object_get(r.json, "dispatch");
    assert_string_equal(flow_str(d, "courier"), "smsa");
    assert_string_equal(flow_str(d, "tracking_no"), t1);
    reply_free(&r);
    char out[64];
    flow_sql(out, sizeof(out),
             "SELECT count(*) FROM notifications n JOIN requests q ON q.id = n.request_id"
             " WHERE q.request_no = '%s' AND n.status = 'dispatched'",
             a);
    assert_string_equal(out, "1");

    /* Already dispatched: no longer produced, 409. */
    snprintf(body, sizeof(body), "{\"courier\":\"smsa\",\"request_nos\":[\"%s\"]}", a);
    dispatch(body, &r);
    assert_int_equal(r.status, 409);
    assert_string_equal(r.content_type, "application/problem+json");
    reply_free(&r);
}

/* Any request that is not produced: 409 listing each, nothing dispatched. */
static void test_atomic(void **state)
{
    (void)state;
    char ok[40], queued[40], cancelled[40], st[64];
    produced(ok);
    produced(queued);
    produced(cancelled);
    flow_sql(NULL, 0, "UPDATE requests SET status = 'queued' WHERE request_no = '%s'", queued);
    flow_sql(NULL, 0, "UPDATE requests SET status = 'cancelled' WHERE request_no = '%s'",
             cancelled);
    char before[32], after[32];
    flow_sql(before, sizeof(before), "SELECT count(*) FROM parcels");
    char body[256];
    snprintf(body, sizeof(body), "{\"courier\":\"smsa\",\"request_nos\":[\"%s\",\"%s\",\"%s\"]}",
             ok, queued, cancelled);
    struct reply r;
    dispatch(body, &r);
    assert_int_equal(r.status, 409);
    assert_non_null(strstr(flow_str(r.json, "type"), "/problems/not_produced"));
    json_t *list = json_object_get(r.json, "requests");
    assert_int_equal(json_array_size(list), 2);
    bool saw_queued = false, saw_cancelled = false;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        saw_queued |= strcmp(flow_str(e, "request_no"), queued) == 0 &&
                      strcmp(flow_str(e, "status"), "queued") == 0;
        saw_cancelled |= strcmp(flow_str(e, "request_no"), cancelled) == 0;
    }
    assert_true(saw_queued && saw_cancelled);
    reply_free(&r);
    flow_sql(after, sizeof(after), "SELECT count(*) FROM parcels");
    assert_string_equal(before, after);
    assert_string_equal(status_of(ok, st), "produced");
}

static void test_validation(void **state)
{
    (void)state;
    struct reply r;
    dispatch("{}", &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "courier"), "required");
    assert_string_equal(problem_code_for(&r, "request_nos"), "required");
    reply_free(&r);

    dispatch("{\"courier\":7,\"request_nos\":\"RQ-1\"}", &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "courier"), "type");
    assert_string_equal(problem_code_for(&r, "request_nos"), "type");
    reply_free(&r);

    dispatch("{\"courier\":\"smsa\",\"request_nos\":[]}", &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "request_nos"), "required");
    reply_free(&r);

    dispatch("{\"courier\":\"smsa\",\"request_nos\":[\"ok-lower\",5,\"RQ-A\",\"RQ-A\",\"\"]}", &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "request_nos[0]"), "format");
    assert_string_equal(problem_code_for(&r, "request_nos[1]"), "type");
    assert_null(problem_code_for(&r, "request_nos[2]"));
    assert_string_equal(problem_code_for(&r, "request_nos[3]"), "duplicate");
    assert_string_equal(problem_code_for(&r, "request_nos[4]"), "format");
    reply_free(&r);

    /* An unknown courier, an unknown request. */
    char no[40];
    produced(no);
    char body[256];
    snprintf(body, sizeof(body), "{\"courier\":\"nobody\",\"request_nos\":[\"%s\"]}", no);
    dispatch(body, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "courier"), "unknown");
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"courier\":\"smsa\",\"request_nos\":[\"%s\",\"RQ-NO-SUCH\"]}",
             no);
    dispatch(body, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "request_nos[1]"), "unknown");
    reply_free(&r);
    char st[64];
    assert_string_equal(status_of(no, st), "produced");

    /* At most 200 in one call. */
    json_t *nos = json_array();
    for (int i = 0; i < 201; i++) {
        char n[32];
        snprintf(n, sizeof(n), "RQ-MANY-%d", i);
        json_array_append_new(nos, json_string(n));
    }
    json_t *b = json_pack("{s:s, s:o}", "courier", "smsa", "request_nos", nos);
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    dispatch(text, &r);
    free(text);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "request_nos"), "too_many");
    reply_free(&r);

    /* Garbage never makes a 5xx. */
    static const char *const bodies[] = {
        "null",
        "[]",
        "{\"courier\":null,\"request_nos\":null}",
        "{\"courier\":\"a\\u0000b\"}",
        "{\"courier\":{},\"request_nos\":[[]]}",
        "{\"request_nos\":[null,{},1.5,true]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        dispatch(bodies[i], &r);
        if (r.status < 400 || r.status >= 500)
            fail_msg("body %zu answered %ld", i, r.status);
        reply_free(&r);
    }
}

static void test_roles(void **state)
{
    (void)state;
    struct reply r;
    const char *body = "{\"courier\":\"smsa\",\"request_nos\":[\"RQ-X\"]}";
    assert_int_equal(http_post_json(&svc, NULL, "/v1/dispatches", body, &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, intake, "/v1/dispatches", body, &r), 0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, courier, "/v1/dispatches", body, &r), 0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
}

/* Tracking numbers are never given twice. */
static void test_tracking_numbers_unique(void **state)
{
    (void)state;
    char nos[20][40];
    for (int i = 0; i < 20; i++)
        produced(nos[i]);
    for (int i = 0; i < 20; i += 5) {
        char body[1024];
        snprintf(body, sizeof(body),
                 "{\"courier\":\"smsa\",\"request_nos\":[\"%s\",\"%s\",\"%s\",\"%s\",\"%s\"]}",
                 nos[i], nos[i + 1], nos[i + 2], nos[i + 3], nos[i + 4]);
        struct reply r;
        dispatch(body, &r);
        assert_int_equal(r.status, 201);
        reply_free(&r);
    }
    char out[64];
    flow_sql(out, sizeof(out), "SELECT count(*) - count(DISTINCT tracking_no) FROM parcels");
    assert_string_equal(out, "0");
    /* The sequence never cycles. */
    flow_sql(out, sizeof(out),
             "SELECT seqcycle::text FROM pg_sequences s JOIN pg_sequence q"
             " ON q.seqrelid = 'tracking_serial'::regclass LIMIT 1");
    assert_string_equal(out, "false");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_atomic),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_tracking_numbers_unique),
    };
    return cmocka_run_group_tests_name("dispatch", tests, group_setup, group_teardown);
}
