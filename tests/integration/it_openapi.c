/* it_openapi.c — the real service's answers hold to docs/openapi.json: for
 * each call below, the status is one the spec lists for the operation, the
 * Content-Type and the required headers are those it gives, and the body
 * conforms to the schema of that answer. The checker itself must be able
 * to fail, so wrong bodies are put to it too. */
#include "harness.h"
#include "schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct service svc;
static json_t *spec;
static char intake[128], operator_[128], witness[128], courier[128], admin[128];
static int group_setup(void **state)
{
    (void)state;
    char path[512], out[256];
    spec = openapi_load();
    if (!spec)
        return -1;
    if (harness_setup(&svc, "station = st1 evolis EVO-0001 Virtual PCD 00 00\n"
                            "station = st2 evolis EVO-0002 Virtual PCD 00 01\n") != 0)
        return -1;
    /* An instance with stations is ready with a Document Signer certificate. */
    if (harness_ds_files(svc.dir) != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "cities", "import",
                    harness_src("../shared/reference/cities.csv", path, sizeof(path)), NULL) != 0 ||
        harness_ctl(&svc, out, sizeof(out), "branches", "import",
                    harness_src("../shared/reference/branches.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher-approvals", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-fatimah", operator_, sizeof(operator_)) ||
        harness_token(&svc, "operator", "op-khalid", witness, sizeof(witness)) ||
        harness_token(&svc, "courier", "fastpost", courier, sizeof(courier)) ||
        harness_token(&svc, "admin", "admin-1", admin, sizeof(admin)))
        return -1;
    return harness_start(&svc);
}

static int group_teardown(void **state)
{
    (void)state;
    json_decref(spec);
    return harness_stop(&svc, false);
}

/* cmocka's fail_msg with the caller's location. */
#define fail_at(file, line, ...)            \
    do {                                    \
        print_error("%s:%d: ", file, line); \
        fail_msg(__VA_ARGS__);              \
    } while (0)

/* Asserts the status of a reply and that it holds to the spec. */
#define conforms(method, path, r, want) conforms_at(method, path, r, want, __FILE__, __LINE__)
static void conforms_at(const char *method, const char *path, struct reply *r, long want,
                        const char *file, int line)
{
    char why[1024];
    if (r->status != want)
        fail_at(file, line, "%s %s answered %ld, not %ld: %.300s", method, path, r->status, want,
                r->body ? r->body : "");
    if (openapi_check_reply(spec, method, path, r, why, sizeof(why)) != 0)
        fail_at(file, line, "%s\n  body: %.600s", why, r->body ? r->body : "");
}

static void get(const char *token, const char *path, long want, struct reply *r)
{
    assert_int_equal(http_get(&svc, token, path, r), 0);
    conforms("GET", path, r, want);
}

static void post(const char *token, const char *path, const char *body, long want, struct reply *r)
{
    assert_int_equal(http_post_json(&svc, token, path, body, r), 0);
    conforms("POST", path, r, want);
}

/* A POST by the operator, countersigned by the witness operator. */
static void countersigned(const char *path, const char *body, long want, struct reply *r)
{
    char auth[256], wit[256];
    const char *headers[] = { "Content-Type: application/json", auth, wit, NULL };
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", operator_);
    snprintf(wit, sizeof(wit), "X-Witness-Authorization: Bearer %s", witness);
    assert_int_equal(http_call(&svc, "POST", path, headers, body, strlen(body), r), 0);
    conforms("POST", path, r, want);
}

/* Submits a fresh request and returns its number in no. */
static void submit_fresh(char *no, size_t len, char nid[11])
{
    harness_fresh_nid(nid);
    harness_fresh_no("RQ-OA", no, len);
    char *body = sample_request(no, nid, "national_id", "lost");
    struct reply r;
    post(intake, "/v1/requests", body, 201, &r);
    reply_free(&r);
    free(body);
}

/* ---- operations ---- */

static void test_operations_endpoints(void **state)
{
    (void)state;
    struct reply r;
    get(NULL, "/healthz", 200, &r);
    reply_free(&r);
    get(NULL, "/readyz", 200, &r);
    reply_free(&r);
    get(NULL, "/metrics", 401, &r);
    reply_free(&r);
    get(operator_, "/metrics", 200, &r);
    reply_free(&r);
    /* A body where none is taken: 400. */
    const char *h[] = { "Content-Type: application/json", NULL };
    assert_int_equal(http_call(&svc, "GET", "/healthz", h, "{}", 2, &r), 0);
    conforms("GET", "/healthz", &r, 400);
    reply_free(&r);
}

static void test_intake(void **state)
{
    (void)state;
    char nid[11], no[40];
    harness_fresh_nid(nid);
    harness_fresh_no("RQ-OA", no, sizeof(no));
    char *body = sample_request(no, nid, "national_id", "lost");
    struct reply r;
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", intake);

    post(intake, "/v1/requests", body, 201, &r);
    reply_free(&r);
    post(intake, "/v1/requests", body, 200, &r); /* the same again */
    reply_free(&r);

    json_t *j = json_loads(body, 0, NULL);
    json_object_set_new(j, "phone", json_string("+966509999999"));
    char *changed = json_dumps(j, JSON_COMPACT);
    post(intake, "/v1/requests", changed, 409, &r); /* another body */
    reply_free(&r);

    char no2[40];
    harness_fresh_no("RQ-OA", no2, sizeof(no2));
    char *second = sample_request(no2, nid, "national_id", "damaged");
    post(intake, "/v1/requests", second, 409, &r); /* active_request */
    assert_string_equal(problem_code_for(&r, "national_id"), "active_request");
    reply_free(&r);

    json_object_set_new(j, "national_id", json_string("1000000009"));
    json_object_set_new(json_object_get(j, "address"), "postal_code", json_string("123"));
    char *invalid = json_dumps(j, JSON_COMPACT);
    post(intake, "/v1/requests", invalid, 422, &r);
    assert_true(json_array_size(json_object_get(r.json, "errors")) >= 2);
    reply_free(&r);

    post(NULL, "/v1/requests", body, 401, &r); /* no token */
    reply_free(&r);
    post("cdt_notarealtokennotarealtokennotarealtoken", "/v1/requests", body, 401, &r);
    reply_free(&r);
    post(operator_, "/v1/requests", body, 403, &r); /* wrong role */
    reply_free(&r);

    const char *text_plain[] = { "Content-Type: text/plain", auth, NULL };
    assert_int_equal(http_call(&svc, "POST", "/v1/requests", text_plain, body, strlen(body), &r),
                     0);
    conforms("POST", "/v1/requests", &r, 415);
    reply_free(&r);

    post(intake, "/v1/requests", "{\"request_no\": ", 400, &r); /* malformed */
    reply_free(&r);

    size_t big = 70 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    post(intake, "/v1/requests", huge, 413, &r);
    reply_free(&r);

    free(huge);
    free(invalid);
    free(second);
    free(changed);
    free(body);
    json_decref(j);
}

static void test_record_and_cancel(void **state)
{
    (void)state;
    char nid[11], no[40], path[120];
    submit_fresh(no, sizeof(no), nid);
    struct reply r;

    snprintf(path, sizeof(path), "/v1/requests/%s", no);
    get(operator_, path, 200, &r);
    reply_free(&r);
    get(intake, "/v1/requests/RQ-NO-SUCH-ONE", 404, &r);
    reply_free(&r);
    get(courier, path, 403, &r);
    reply_free(&r);

    snprintf(path, sizeof(path), "/v1/requests/%s/cancel", no);
    post(intake, path, "{\"reason\":\"holder found the card\"}", 200, &r);
    reply_free(&r);
    post(intake, path, NULL, 200, &r); /* already cancelled */
    reply_free(&r);
    post(intake, "/v1/requests/RQ-NO-SUCH-ONE/cancel", NULL, 404, &r);
    reply_free(&r);

    /* After dispatch: 409. */
    char other[40], sql[200];
    submit_fresh(other, sizeof(other), nid);
    snprintf(sql, sizeof(sql), "UPDATE requests SET status = 'dispatched' WHERE request_no = '%s'",
             other);
    assert_int_equal(harness_sql(NULL, 0, sql), 0);
    snprintf(path, sizeof(path), "/v1/requests/%s/cancel", other);
    post(intake, path, NULL, 409, &r);
    reply_free(&r);
}

/* A record with everything filled in: a production attempt, a parcel sent
 * to a branch, and events, put in place through SQL (the dispatch and
 * courier endpoints are not there yet). */
static void test_full_record_and_track(void **state)
{
    (void)state;
    char nid[11], no[40], path[120], sql[1024];
    submit_fresh(no, sizeof(no), nid);
    struct reply r;
    post(operator_, "/v1/stock/batches",
         "{\"batch_no\":\"B-OA-FULL\",\"first_serial\":\"F00000001\",\"count\":2}", 201, &r);
    reply_free(&r);
    snprintf(
        sql, sizeof(sql),
        "WITH r AS (SELECT id FROM requests WHERE request_no = '%s'),"
        " c AS (UPDATE cards SET state = 'used', request_id = (SELECT id FROM r), station_id = 'st1'"
        "       WHERE serial = 'F00000001' RETURNING serial)"
        " INSERT INTO production_attempts (request_id, card_serial, station_id, instance, outcome,"
        " finished_at, step) SELECT (SELECT id FROM r), serial, 'st1', 'it', 'produced', now(), 'done'"
        " FROM c",
        no);
    assert_int_equal(harness_sql(NULL, 0, sql), 0);
    assert_int_equal(
        harness_sql(
            NULL, 0,
            "INSERT INTO couriers (name, token_id, secret_salt) SELECT 'fastpost', id,"
            " '\\x00112233445566778899aabbccddeeff'::bytea FROM api_tokens WHERE name = 'fastpost'"),
        0);
    snprintf(
        sql, sizeof(sql),
        "WITH d AS (INSERT INTO dispatches (courier_id, created_by)"
        "           SELECT id, 'op-fatimah' FROM couriers WHERE name = 'fastpost' RETURNING id, courier_id)"
        " INSERT INTO parcels (tracking_no, dispatch_id, courier_id, request_id, failed_attempts,"
        " branch_id, collect_by)"
        " SELECT 'RR123456785SA', d.id, d.courier_id, r.id, 2, 'RUH-MLQ', date '2026-12-20'"
        " FROM d, requests r WHERE r.request_no = '%s'",
        no);
    assert_int_equal(harness_sql(NULL, 0, sql), 0);
    snprintf(
        sql, sizeof(sql),
        "INSERT INTO request_events (request_id, status, actor, detail)"
        " SELECT id, s, 'fastpost', '{\"code\":\"x\"}' FROM requests,"
        " unnest(ARRAY['produced','dispatched','delivery_failed','redirected_to_branch']) s"
        " WHERE request_no = '%s';"
        "INSERT INTO request_events (request_id, actor) SELECT id, 'st1' FROM requests"
        " WHERE request_no = '%s';"
        "UPDATE requests SET status = 'redirected_to_branch', spoiled_cards = 1 WHERE request_no = '%s'",
        no, no, no);
    assert_int_equal(harness_sql(NULL, 0, sql), 0);

    snprintf(path, sizeof(path), "/v1/requests/%s", no);
    get(admin, path, 200, &r);
    assert_false(json_is_null(json_object_get(r.json, "dispatch")));
    assert_int_equal(json_array_size(json_object_get(r.json, "cards")), 1);
    reply_free(&r);

    char body[200];
    snprintf(body, sizeof(body), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    post(NULL, "/v1/track", body, 200, &r);
    json_t *delivery = json_object_get(r.json, "delivery");
    assert_string_equal(json_string_value(json_object_get(delivery, "method")), "branch");
    assert_true(json_is_object(json_object_get(delivery, "branch")));
    reply_free(&r);
}

static void test_track(void **state)
{
    (void)state;
    char nid[11], no[40], wrong[11], body[200];
    submit_fresh(no, sizeof(no), nid);
    harness_fresh_nid(wrong);
    struct reply r;
    harness_source_ip = "127.0.0.21";
    snprintf(body, sizeof(body), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    post(NULL, "/v1/track", body, 200, &r);
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, wrong);
    post(NULL, "/v1/track", body, 404, &r);
    reply_free(&r);
    post(NULL, "/v1/track", "{\"request_no\":\"rq lower\",\"national_id\":\"123\"}", 422, &r);
    reply_free(&r);
    post(NULL, "/v1/track", "[]", 400, &r);
    reply_free(&r);
    /* Failed look-ups are limited: the answer with Retry-After conforms too. */
    for (int i = 0; i < 20 && r.status != 429; i++) {
        reply_free(&r);
        assert_int_equal(http_post_json(&svc, NULL, "/v1/track", body, &r), 0);
    }
    conforms("POST", "/v1/track", &r, 429);
    reply_free(&r);
    harness_source_ip = NULL;
}

static void test_stock_and_cards(void **state)
{
    (void)state;
    struct reply r;
    const char *batch = "{\"batch_no\":\"B-OA-01\",\"first_serial\":\"A00000001\",\"count\":10}";
    post(operator_, "/v1/stock/batches", batch, 201, &r);
    reply_free(&r);
    post(operator_, "/v1/stock/batches", batch, 200, &r);
    reply_free(&r);
    post(operator_, "/v1/stock/batches",
         "{\"batch_no\":\"B-OA-01\",\"first_serial\":\"A00000001\",\"count\":11}", 409, &r);
    reply_free(&r);
    post(operator_, "/v1/stock/batches", "{\"batch_no\":\"b\",\"count\":0}", 422, &r);
    reply_free(&r);
    post(intake, "/v1/stock/batches", batch, 403, &r);
    reply_free(&r);

    post(operator_, "/v1/cards/A00000003/spoil", "{\"reason\":\"dropped\"}", 403, &r);
    reply_free(&r);
    countersigned("/v1/cards/A00000003/spoil", "{\"reason\":\"dropped\"}", 200, &r);
    reply_free(&r);
    countersigned("/v1/cards/A00000003/spoil", "{\"reason\":\"dropped\"}", 409, &r);
    reply_free(&r);
    countersigned("/v1/cards/Z99999999/spoil", "{\"reason\":\"dropped\"}", 404, &r);
    reply_free(&r);
    countersigned("/v1/cards/A00000003/destroy", "{}", 422, &r);
    reply_free(&r);
    post(operator_, "/v1/cards/A00000003/destroy", "{\"witness\":\"op-khalid\"}", 403, &r);
    reply_free(&r);
    countersigned("/v1/cards/A00000003/destroy", "{\"witness\":\"op-khalid\"}", 200, &r);
    reply_free(&r);

    get(operator_, "/v1/stock", 200, &r);
    reply_free(&r);
}

static void test_stations_and_queue(void **state)
{
    (void)state;
    struct reply r;
    char nid[11], no[40];
    get(operator_, "/v1/stations", 200, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "stations")), 2);
    reply_free(&r);
    post(operator_, "/v1/stations/st1/pause", NULL, 200, &r);
    reply_free(&r);
    get(operator_, "/v1/stations", 200, &r);
    reply_free(&r);
    post(operator_, "/v1/stations/st1/resume", "{}", 200, &r);
    reply_free(&r);
    post(operator_, "/v1/stations/nope/pause", NULL, 404, &r);
    reply_free(&r);

    submit_fresh(no, sizeof(no), nid);
    submit_fresh(no, sizeof(no), nid);
    get(operator_, "/v1/production/queue?limit=1", 200, &r);
    const char *cursor = json_string_value(json_object_get(r.json, "next_cursor"));
    assert_non_null(cursor);
    char path[120];
    snprintf(path, sizeof(path), "/v1/production/queue?limit=500&cursor=%s", cursor);
    reply_free(&r);
    get(operator_, path, 200, &r);
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    reply_free(&r);
    get(operator_, "/v1/production/queue?limit=0", 422, &r);
    reply_free(&r);
    get(NULL, "/v1/production/queue", 401, &r);
    reply_free(&r);

    /* The dashboard's calls: held requests and release, summary, at risk. */
    get(operator_, "/v1/production/queue?held=maybe", 422, &r);
    reply_free(&r);
    post(operator_, "/v1/requests/RQ-NO-SUCH/release", NULL, 404, &r);
    reply_free(&r);
    post(operator_, "/v1/requests/RQ-NO-SUCH/release", "[]", 400, &r);
    reply_free(&r);
    char sql[256];
    snprintf(path, sizeof(path), "/v1/requests/%s/release", no);
    post(operator_, path, NULL, 409, &r);
    reply_free(&r);
    /* Set-up: the production line holds a request after spoil_limit spoiled cards. */
    snprintf(
        sql, sizeof(sql),
        "UPDATE requests SET hold_reason = 'held after 3 spoiled cards' WHERE request_no = '%s'",
        no);
    assert_int_equal(harness_sql(NULL, 0, sql), 0);
    get(operator_, "/v1/production/queue?held=true", 200, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    reply_free(&r);
    post(operator_, path, "{}", 200, &r);
    assert_string_equal(json_string_value(json_object_get(r.json, "hold_reason")),
                        "held after 3 spoiled cards");
    reply_free(&r);
    get(operator_, "/v1/production/queue?held=true", 200, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 0);
    reply_free(&r);
    post(intake, path, NULL, 403, &r);
    reply_free(&r);

    get(operator_, "/v1/production/summary", 200, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "hourly")), 24);
    reply_free(&r);
    get(intake, "/v1/production/summary", 403, &r);
    reply_free(&r);
    /* sample_request's approval date lies in the past: its requests are at risk. */
    get(operator_, "/v1/production/at-risk", 200, &r);
    assert_true(json_array_size(json_object_get(r.json, "items")) > 0);
    reply_free(&r);
    get(NULL, "/v1/production/at-risk", 401, &r);
    reply_free(&r);
}

/* ---- the checker can fail ---- */

static void expect_rejected(const char *method, const char *path, struct reply *r, const char *what)
{
    char why[1024];
    if (openapi_check_reply(spec, method, path, r, why, sizeof(why)) == 0)
        fail_msg("a wrong answer passed: %s", what);
    print_message("rejected as expected (%s): %s\n", what, why);
}

/* Puts a mutated copy of a real body to the checker. */
static void expect_body_rejected(const char *method, const char *path, const struct reply *good,
                                 json_t *body, const char *what)
{
    struct reply bad = *good;
    bad.json = body;
    expect_rejected(method, path, &bad, what);
    json_decref(body);
}

static void test_checker_rejects_wrong_answers(void **state)
{
    (void)state;
    char nid[11], no[40], body[200];
    struct reply r;
    submit_fresh(no, sizeof(no), nid);
    snprintf(body, sizeof(body), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    post(NULL, "/v1/track", body, 200, &r);

    json_t *j = json_deep_copy(r.json);
    json_object_del(j, "status");
    expect_body_rejected("POST", "/v1/track", &r, j, "a required property missing");

    j = json_deep_copy(r.json);
    json_object_set_new(j, "status", json_string("lost_in_space"));
    expect_body_rejected("POST", "/v1/track", &r, j, "a status outside the enum");

    j = json_deep_copy(r.json);
    json_object_set_new(j, "phone", json_string("+966501234567"));
    expect_body_rejected("POST", "/v1/track", &r, j, "the phone leaking into tracking");

    j = json_deep_copy(r.json);
    json_object_set_new(json_object_get(j, "estimated_delivery"), "earliest",
                        json_string("2026-02-30"));
    expect_body_rejected("POST", "/v1/track", &r, j, "an impossible date");

    j = json_deep_copy(r.json);
    json_object_set_new(j, "updated_at", json_string("yesterday"));
    expect_body_rejected("POST", "/v1/track", &r, j, "a timestamp that is not RFC 3339");

    j = json_deep_copy(r.json);
    json_object_set_new(j, "request_no", json_string("rq-lower-case"));
    expect_body_rejected("POST", "/v1/track", &r, j, "a request_no against its pattern");

    j = json_deep_copy(r.json);
    json_object_set_new(json_object_get(j, "delivery"), "attempts", json_string("1"));
    expect_body_rejected("POST", "/v1/track", &r, j, "a string where an integer is expected");

    j = json_deep_copy(r.json);
    json_object_set_new(json_object_get(j, "delivery"), "method", json_null());
    expect_body_rejected("POST", "/v1/track", &r, j, "null where nothing is nullable");

    j = json_deep_copy(r.json);
    json_object_set_new(json_object_get(j, "delivery"), "branch",
                        json_pack("{s:s}", "branch_id", "X"));
    expect_body_rejected("POST", "/v1/track", &r, j, "a branch without its required fields");

    j = json_deep_copy(r.json);
    json_object_set_new(json_array_get(json_object_get(j, "timeline"), 0), "label",
                        json_pack("{s:s}", "en", "Request received"));
    expect_body_rejected("POST", "/v1/track", &r, j, "a label without Arabic");

    /* Nullable fields do take null, and the real body passes. */
    j = json_deep_copy(r.json);
    json_object_set_new(json_object_get(j, "delivery"), "collect_by", json_null());
    char why[512];
    struct reply ok = r;
    ok.json = j;
    assert_int_equal(openapi_check_reply(spec, "POST", "/v1/track", &ok, why, sizeof(why)), 0);
    json_decref(j);

    /* A status the operation does not list, a wrong Content-Type, no X-Request-Id. */
    struct reply bad = r;
    bad.status = 201;
    expect_rejected("POST", "/v1/track", &bad, "a status the spec does not list");
    bad = r;
    snprintf(bad.content_type, sizeof(bad.content_type), "text/html");
    expect_rejected("POST", "/v1/track", &bad, "a Content-Type the spec does not give");
    bad = r;
    bad.request_id[0] = '\0';
    expect_rejected("POST", "/v1/track", &bad, "no X-Request-Id");
    bad = r;
    expect_rejected("POST", "/v1/no-such-thing", &bad, "an operation the spec lacks");
    reply_free(&r);

    /* A 429 without Retry-After, and a problem body without its status. */
    post(NULL, "/v1/track", "{}", 422, &r);
    bad = r;
    bad.status = 429;
    bad.retry_after[0] = '\0';
    expect_rejected("POST", "/v1/track", &bad, "429 without Retry-After");
    j = json_deep_copy(r.json);
    json_object_del(j, "status");
    expect_body_rejected("POST", "/v1/track", &r, j, "a problem without status");
    j = json_deep_copy(r.json);
    json_array_append_new(json_object_get(j, "errors"), json_pack("{s:s}", "field", "x"));
    expect_body_rejected("POST", "/v1/track", &r, j, "an errors entry without code");
    reply_free(&r);

    /* The keywords one by one, on schemas of their own. */
    json_t *s =
        json_pack("{s:s, s:[s], s:{s:{s:s, s:i, s:i}, s:{s:b, s:[{s:s}]}}}", "type", "object",
                  "required", "a", "properties", "a", "type", "string", "minLength", 2, "maxLength",
                  3, "b", "nullable", 1, "allOf", "$ref", "#/components/schemas/Label");
    json_t *v = json_pack("{s:s}", "a", "ثلاث"); /* 4 characters, 8 bytes */
    assert_int_not_equal(schema_validate(spec, s, v, why, sizeof(why)), 0);
    json_decref(v);
    v = json_pack("{s:s, s:n}", "a", "ثلث", "b"); /* 3 characters */
    assert_int_equal(schema_validate(spec, s, v, why, sizeof(why)), 0);
    json_decref(v);
    v = json_pack("{s:s, s:{s:s}}", "a", "ab", "b", "ar", "x");
    assert_int_not_equal(schema_validate(spec, s, v, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "$.b"));
    json_decref(v);
    json_decref(s);
    s = json_pack("{s:[{s:s}, {s:s, s:i}]}", "oneOf", "type", "number", "type", "integer",
                  "minimum", 0);
    v = json_integer(5); /* both match: not one of */
    assert_int_not_equal(schema_validate(spec, s, v, why, sizeof(why)), 0);
    json_decref(v);
    v = json_real(0.5);
    assert_int_equal(schema_validate(spec, s, v, why, sizeof(why)), 0);
    json_decref(v);
    json_decref(s);
    s = json_pack("{s:s}", "$ref", "#/components/schemas/NoSuchSchema");
    v = json_object();
    assert_int_not_equal(schema_validate(spec, s, v, why, sizeof(why)), 0);
    json_decref(v);
    json_decref(s);
    s = json_pack("{s:s, s:i, s:b}", "type", "array", "maxItems", 2, "uniqueItems", 1);
    v = json_pack("[i, i]", 1, 1);
    assert_int_not_equal(schema_validate(spec, s, v, why, sizeof(why)), 0);
    json_decref(v);
    v = json_pack("[i, i, i]", 1, 2, 3);
    assert_int_not_equal(schema_validate(spec, s, v, why, sizeof(why)), 0);
    json_decref(v);
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operations_endpoints),
        cmocka_unit_test(test_intake),
        cmocka_unit_test(test_record_and_cancel),
        cmocka_unit_test(test_full_record_and_track),
        cmocka_unit_test(test_track),
        cmocka_unit_test(test_stock_and_cards),
        cmocka_unit_test(test_stations_and_queue),
        cmocka_unit_test(test_checker_rejects_wrong_answers),
    };
    return cmocka_run_group_tests_name("openapi", tests, group_setup, group_teardown);
}
