/* it_intake.c — intake, the whole record, cancel, tracking and the HTTP
 * conventions of API.md, through the real service and PostgreSQL. */
#include "db.h"
#include "harness.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static struct service svc;
static char intake[128], operator_[128], courier[128], admin[128];
static int group_setup(void **state)
{
    (void)state;
    char path[512], out[256];
    if (harness_setup(&svc, NULL) != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "cities", "import",
                    harness_src("../shared/reference/cities.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "branches", "import",
                    harness_src("../shared/reference/branches.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher-approvals", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-fatimah", operator_, sizeof(operator_)) ||
        harness_token(&svc, "courier", "fastpost", courier, sizeof(courier)) ||
        harness_token(&svc, "admin", "admin-1", admin, sizeof(admin)))
        return -1;
    return harness_start(&svc);
}

static int group_teardown(void **state)
{
    (void)state;
    return harness_stop(&svc, false);
}

static void submit(const char *body, struct reply *r)
{
    assert_int_equal(http_post_json(&svc, intake, "/v1/requests", body, r), 0);
}

static void test_health_and_request_id(void **state)
{
    (void)state;
    struct reply r;
    assert_int_equal(http_get(&svc, NULL, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(strlen(r.request_id) >= 16); /* generated */
    reply_free(&r);

    const char *h[] = { "X-Request-Id: trace-abc-123", NULL };
    assert_int_equal(http_call(&svc, "GET", "/readyz", h, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.request_id, "trace-abc-123");
    assert_int_equal(json_integer_value(json_object_get(r.json, "schema_version")),
                     DB_SCHEMA_VERSION);
    reply_free(&r);

    /* Metrics: an operator's (or admin's) token; anyone else is refused. */
    assert_int_equal(http_get(&svc, NULL, "/metrics", &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    assert_int_equal(http_get(&svc, intake, "/metrics", &r), 0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    assert_int_equal(http_get(&svc, operator_, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(
        r.body, "cardd_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"));
    assert_non_null(strstr(r.body, "cardd_http_request_duration_seconds_bucket"));
    assert_non_null(strstr(r.body, "cardd_queue_depth"));
    assert_non_null(strstr(r.body, "cardd_notification_backlog"));
    reply_free(&r);
}

static void test_create_idempotent_conflict(void **state)
{
    (void)state;
    char nid[11], no[40];
    harness_fresh_nid(nid);
    harness_fresh_no("RQ-IT", no, sizeof(no));
    char *body = sample_request(no, nid, "national_id", "lost");
    struct reply r;
    submit(body, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "queued");
    assert_string_equal(json_string_value(json_object_get(r.json, "request_no")), no);
    /* Approved Saturday 2026-11-21: 5th working day Thu 26th, 7th Mon 30th. */
    json_t *est = json_object_get(r.json, "estimated_delivery");
    assert_string_equal(json_string_value(json_object_get(est, "earliest")), "2026-11-26");
    assert_string_equal(json_string_value(json_object_get(est, "latest")), "2026-11-30");
    reply_free(&r);

    /* The same body again, even with its keys in another order: 200. */
    json_t *j = json_loads(body, 0, NULL);
    char *sorted = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2));
    submit(sorted, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "request_no")), no);
    /* The stored request, whole. */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "holder"), "name_en")),
        "MOHAMMED ABDULLAH ALQAHTANI");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(r.json, "estimated_delivery"), "earliest")),
                        "2026-11-26");
    reply_free(&r);

    /* The same number with another body: 409. */
    json_object_set_new(j, "phone", json_string("+966509999999"));
    char *changed = json_dumps(j, JSON_COMPACT);
    submit(changed, &r);
    assert_int_equal(r.status, 409);
    assert_string_equal(r.content_type, "application/problem+json");
    reply_free(&r);

    /* A second active request of the same kind for the same holder: 409 active_request. */
    char no2[40];
    harness_fresh_no("RQ-IT", no2, sizeof(no2));
    char *second = sample_request(no2, nid, "national_id", "damaged");
    submit(second, &r);
    assert_int_equal(r.status, 409);
    assert_non_null(
        strstr(json_string_value(json_object_get(r.json, "type")), "/problems/active_request"));
    reply_free(&r);

    /* Another kind for the same holder is allowed. */
    char *family = sample_request(no2, nid, "family_record", "damaged");
    submit(family, &r);
    assert_int_equal(r.status, 201);
    reply_free(&r);

    char one[8];
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM requests WHERE national_id = '%s'", nid);
    harness_sql(one, sizeof(one), sql);
    assert_string_equal(one, "2");
    free(body);
    free(sorted);
    free(changed);
    free(second);
    free(family);
    json_decref(j);
}

static void test_arabic_round_trip(void **state)
{
    (void)state;
    char nid[11], no[40], path[80];
    harness_fresh_nid(nid);
    harness_fresh_no("RQ-IT", no, sizeof(no));
    json_t *j = sample_json(no, nid, "family_record", "lost");
    /* A name with a ZWNJ (a format character) and a non-BMP character
     * cannot be a holder's name (API.md, names): 422. */
    json_object_set_new(
        json_object_get(j, "holder"), "name_ar",
        json_string("عبدُالرَّحمن بن سعود آل سعود‌ \xF0\x9F\x8C\xB4"));
    char *body = json_dumps(j, JSON_COMPACT);
    struct reply r;
    submit(body, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "holder.name_ar"), "script");
    reply_free(&r);
    free(body);
    /* Letters with shadda, hamza and madda; a non-BMP character in the
     * street, which is free text. */
    const char *name = "عبدُالرَّحمن بن سعود آل سعود";
    json_object_set_new(json_object_get(j, "holder"), "name_ar", json_string(name));
    json_object_set_new(json_object_get(j, "address"), "street",
                        json_string("شارع التخصصي \xF0\x9F\x8C\xB4"));
    body = json_dumps(j, JSON_COMPACT);
    submit(body, &r);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    snprintf(path, sizeof(path), "/v1/requests/%s", no);
    assert_int_equal(http_get(&svc, operator_, path, &r), 0);
    assert_int_equal(r.status, 200);
    const char *got =
        json_string_value(json_object_get(json_object_get(r.json, "holder"), "name_ar"));
    assert_non_null(got);
    assert_int_equal(strlen(got), strlen(name));
    assert_memory_equal(got, name, strlen(name));
    /* The raw body carries the UTF-8 bytes themselves, not \u escapes. */
    assert_non_null(strstr(r.body, "عبدُالرَّحمن"));
    assert_non_null(strstr(r.body, "\xF0\x9F\x8C\xB4"));
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 1);
    assert_int_equal(json_array_size(json_object_get(r.json, "documents")), 2);
    assert_true(json_is_null(json_object_get(r.json, "dispatch")));
    reply_free(&r);
    free(body);
    json_decref(j);
}

static void test_http_errors(void **state)
{
    (void)state;
    char nid[11], no[40];
    harness_fresh_nid(nid);
    harness_fresh_no("RQ-IT", no, sizeof(no));
    char *body = sample_request(no, nid, "national_id", "lost");
    struct reply r;
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", intake);

    /* Wrong content type: 415. */
    const char *text_plain[] = { "Content-Type: text/plain", auth, NULL };
    assert_int_equal(http_call(&svc, "POST", "/v1/requests", text_plain, body, strlen(body), &r),
                     0);
    assert_int_equal(r.status, 415);
    assert_string_equal(r.content_type, "application/problem+json");
    assert_int_equal(json_integer_value(json_object_get(r.json, "status")), 415);
    reply_free(&r);

    /* Malformed JSON: 400. */
    submit("{\"request_no\": ", &r);
    assert_int_equal(r.status, 400);
    reply_free(&r);
    submit("[1,2,3]", &r);
    assert_int_equal(r.status, 400);
    reply_free(&r);
    submit("{\"a\":1,\"a\":2}", &r);
    assert_int_equal(r.status, 400);
    reply_free(&r);
    /* Invalid UTF-8 is malformed too. */
    submit("{\"request_no\":\"\xff\xfe\"}", &r);
    assert_int_equal(r.status, 400);
    reply_free(&r);

    /* Over 64 KiB: 413 with a Content-Length; a chunked body is refused
     * with 411 before it is read (API.md). */
    size_t big = 70 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    submit(huge, &r);
    assert_int_equal(r.status, 413);
    reply_free(&r);
    const char *chunked[] = { "Content-Type: application/json", "Transfer-Encoding: chunked", auth,
                              NULL };
    assert_int_equal(http_call(&svc, "POST", "/v1/requests", chunked, huge, big, &r), 0);
    assert_int_equal(r.status, 411);
    reply_free(&r);
    free(huge);

    /* Missing and unknown tokens: 401; wrong role: 403. */
    assert_int_equal(http_post_json(&svc, NULL, "/v1/requests", body, &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, "cdt_notarealtokennotarealtokennotarealtokennotareal",
                                    "/v1/requests", body, &r),
                     0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, operator_, "/v1/requests", body, &r), 0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    assert_int_equal(http_get(&svc, courier, "/v1/requests/RQ-1", &r), 0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    /* Admin may do everything. */
    assert_int_equal(http_post_json(&svc, admin, "/v1/requests", body, &r), 0);
    assert_int_equal(r.status, 201);
    reply_free(&r);

    /* Unknown paths and methods. */
    assert_int_equal(http_get(&svc, intake, "/v1/nothing-here", &r), 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    assert_int_equal(http_call(&svc, "DELETE", "/v1/requests", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 405);
    reply_free(&r);
    assert_int_equal(http_get(&svc, intake, "/v1/requests/NO-SUCH-ONE", &r), 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    assert_int_equal(http_get(&svc, intake, "/v1/requests/bad%20number", &r), 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    free(body);
}

/* Sends raw bytes and returns the status code of the answer (0 if none). */
static int raw_status(const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)svc.port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return 0;
    }
    if (write(fd, request, strlen(request)) < 0) {
        close(fd);
        return 0;
    }
    char buf[512] = "";
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    int status = 0;
    if (n > 12)
        sscanf(buf, "HTTP/1.%*d %d", &status);
    return status;
}

static void test_ambiguous_framing(void **state)
{
    (void)state;
    int s = raw_status("POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_int_equal(s, 400);
    s = raw_status("POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: gzip\r\n\r\n");
    assert_int_equal(s, 400);
}

static void test_every_invalid_field_listed(void **state)
{
    (void)state;
    char nid[11], no[40];
    harness_fresh_nid(nid);
    harness_fresh_no("RQ-IT", no, sizeof(no));
    json_t *j = sample_json(no, nid, "national_id", "lost");
    json_object_set_new(j, "national_id", json_string("1000000009")); /* bad Luhn */
    json_object_set_new(j, "phone", json_string("+966401234567"));    /* not a mobile */
    json_object_set_new(j, "kind", json_string("passport"));
    json_t *addr = json_object_get(j, "address");
    json_object_set_new(addr, "postal_code", json_string("1234"));
    json_object_set_new(addr, "building_no", json_string("29a9"));
    json_object_set_new(addr, "additional_no", json_integer(7788));
    json_object_set_new(addr, "short_address", json_string("RRR2929"));
    json_object_set_new(addr, "lat", json_real(124.0));
    json_object_set_new(json_object_get(j, "holder"), "name_ar", json_string("Mohammed"));
    json_object_set_new(json_object_get(j, "holder"), "birth_date", json_string("1990-02-30"));
    json_object_set_new(j, "terms_accepted_at",
                        json_string("2026-11-22T10:00:00Z")); /* after approval */
    json_array_remove(json_object_get(j, "documents"), 1);    /* no loss report */
    char *body = json_dumps(j, JSON_COMPACT);
    struct reply r;
    submit(body, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(r.content_type, "application/problem+json");
    assert_string_equal(problem_code_for(&r, "national_id"), "checksum");
    assert_string_equal(problem_code_for(&r, "phone"), "format");
    assert_string_equal(problem_code_for(&r, "kind"), "enum");
    assert_string_equal(problem_code_for(&r, "address.postal_code"), "format");
    assert_string_equal(problem_code_for(&r, "address.building_no"), "format");
    assert_string_equal(problem_code_for(&r, "address.additional_no"), "type");
    assert_string_equal(problem_code_for(&r, "address.short_address"), "format");
    assert_string_equal(problem_code_for(&r, "address.lat"), "range");
    assert_string_equal(problem_code_for(&r, "holder.name_ar"), "script");
    assert_string_equal(problem_code_for(&r, "holder.birth_date"), "format");
    assert_string_equal(problem_code_for(&r, "terms_accepted_at"), "after_approval");
    assert_string_equal(problem_code_for(&r, "documents"), "missing_loss_report");
    assert_int_equal(json_array_size(json_object_get(r.json, "errors")), 12);
    reply_free(&r);

    /* Nothing was stored. */
    char count[16];
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM requests WHERE request_no = '%s'", no);
    harness_sql(count, sizeof(count), sql);
    assert_string_equal(count, "0");

    /* Future timestamps, a damage report for a lost card, a city unknown without coordinates. */
    json_decref(j);
    j = sample_json(no, nid, "national_id", "lost");
    json_object_set_new(j, "approved_at", json_string("2030-01-01T00:00:00Z"));
    json_object_set_new(json_array_get(json_object_get(j, "documents"), 1), "type",
                        json_string("damage_report"));
    free(body);
    body = json_dumps(j, JSON_COMPACT);
    submit(body, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "approved_at"), "future");
    assert_string_equal(problem_code_for(&r, "documents[1].type"), "unexpected");
    reply_free(&r);

    json_decref(j);
    j = sample_json(no, nid, "national_id", "lost");
    addr = json_object_get(j, "address");
    json_object_del(addr, "lat");
    json_object_del(addr, "lon");
    json_object_set_new(addr, "city", json_string("Atlantis"));
    free(body);
    body = json_dumps(j, JSON_COMPACT);
    submit(body, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "address.city"), "unknown_city");
    reply_free(&r);
    /* A known city without coordinates is accepted (placed at its centre). */
    json_object_set_new(addr, "city", json_string("Jeddah"));
    free(body);
    body = json_dumps(j, JSON_COMPACT);
    submit(body, &r);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    free(body);
    json_decref(j);
}

static void test_working_days_with_holidays(void **state)
{
    (void)state;
    char path[300], out[256];
    snprintf(path, sizeof(path), "%s/holidays.csv", svc.dir);
    FILE *f = fopen(path, "w");
    /* A break across the week after approval on Wed 2026-11-11. */
    fputs("date,name\n2026-11-12,Holiday A\n2026-11-15,Holiday B\n2026-11-16,Holiday C\n", f);
    fclose(f);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "holidays", "import", path, NULL), 0);

    char nid[11], no[40];
    harness_fresh_nid(nid);
    harness_fresh_no("RQ-IT", no, sizeof(no));
    json_t *j = sample_json(no, nid, "national_id", "damaged");
    /* 22:30 UTC on Tue 10 Nov is already Wed 11 Nov in Riyadh. */
    json_object_set_new(j, "approved_at", json_string("2026-11-10T22:30:00Z"));
    json_object_set_new(j, "terms_accepted_at", json_string("2026-11-10T20:00:00Z"));
    char *body = json_dumps(j, JSON_COMPACT);
    struct reply r;
    submit(body, &r);
    assert_int_equal(r.status, 201);
    /* Wed 11 → Thu 12 holiday, Fri/Sat weekend, Sun 15 and Mon 16 holidays:
     * 1 Tue 17, 2 Wed 18, 3 Thu 19, (Fri 20, Sat 21), 4 Sun 22, 5 Mon 23, 6 Tue 24, 7 Wed 25. */
    json_t *est = json_object_get(r.json, "estimated_delivery");
    assert_string_equal(json_string_value(json_object_get(est, "earliest")), "2026-11-23");
    assert_string_equal(json_string_value(json_object_get(est, "latest")), "2026-11-25");
    reply_free(&r);
    free(body);
    json_decref(j);

    /* A bad holidays file imports nothing. */
    f = fopen(path, "w");
    fputs("date,name\n2027-01-01,Fine\n2027-02-30,Broken\n", f);
    fclose(f);
    assert_int_not_equal(harness_ctl(&svc, out, sizeof(out), "holidays", "import", path, NULL), 0);
    harness_sql(out, sizeof(out), "SELECT count(*) FROM holidays WHERE day = '2027-01-01'");
    assert_string_equal(out, "0");
}

static void test_cancel(void **state)
{
    (void)state;
    char nid[11], no[40], path[80];
    harness_fresh_nid(nid);
    harness_fresh_no("RQ-IT", no, sizeof(no));
    char *body = sample_request(no, nid, "national_id", "lost");
    struct reply r;
    submit(body, &r);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    snprintf(path, sizeof(path), "/v1/requests/%s/cancel", no);
    assert_int_equal(http_post_json(&svc, operator_, path, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    assert_int_equal(
        http_post_json(&svc, intake, path, "{\"reason\":\"holder found the card\"}", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "cancelled");
    reply_free(&r);
    /* Cancelling frees the holder for a new request of the same kind. */
    char no2[40];
    harness_fresh_no("RQ-IT", no2, sizeof(no2));
    char *again = sample_request(no2, nid, "national_id", "lost");
    submit(again, &r);
    assert_int_equal(r.status, 201);
    reply_free(&r);

    /* After dispatch: 409, and nothing changes. */
    char sql[200];
    snprintf(sql, sizeof(sql), "UPDATE requests SET status = 'dispatched' WHERE request_no = '%s'",
             no2);
    assert_int_equal(harness_sql(NULL, 0, sql), 0);
    snprintf(path, sizeof(path), "/v1/requests/%s/cancel", no2);
    assert_int_equal(http_post_json(&svc, intake, path, NULL, &r), 0);
    assert_int_equal(r.status, 409);
    reply_free(&r);
    char st[32];
    snprintf(sql, sizeof(sql), "SELECT status FROM requests WHERE request_no = '%s'", no2);
    harness_sql(st, sizeof(st), sql);
    assert_string_equal(st, "dispatched");
    free(body);
    free(again);
}

static void track(const char *no, const char *nid, struct reply *r)
{
    char body[200];
    snprintf(body, sizeof(body), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    assert_int_equal(http_post_json(&svc, NULL, "/v1/track", body, r), 0);
}

static void test_track(void **state)
{
    (void)state;
    char nid[11], no[40], other[11];
    harness_fresh_nid(nid);
    harness_fresh_nid(other);
    harness_fresh_no("RQ-IT", no, sizeof(no));
    char *body = sample_request(no, nid, "national_id", "lost");
    struct reply r;
    submit(body, &r);
    assert_int_equal(r.status, 201);
    reply_free(&r);

    track(no, nid, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "queued");
    json_t *lbl = json_object_get(r.json, "status_label");
    assert_string_equal(json_string_value(json_object_get(lbl, "ar")), "تم استلام الطلب");
    assert_string_equal(json_string_value(json_object_get(lbl, "en")), "Request received");
    json_t *delivery = json_object_get(r.json, "delivery");
    assert_string_equal(json_string_value(json_object_get(delivery, "address")),
                        "Riyadh, Al Olaya, ****");
    assert_int_equal(json_array_size(json_object_get(r.json, "timeline")), 1);
    /* Nothing private. */
    assert_null(strstr(r.body, "+9665"));
    assert_null(strstr(r.body, "2929"));
    assert_null(strstr(r.body, "Takhassusi"));
    assert_null(strstr(r.body, "docs://"));
    assert_null(strstr(r.body, nid));
    reply_free(&r);

    /* Unknown request and wrong national ID: the same 404. */
    struct reply a, b;
    track("RQ-NOPE-0001", nid, &a);
    track(no, other, &b);
    assert_int_equal(a.status, 404);
    assert_int_equal(b.status, 404);
    assert_string_equal(json_string_value(json_object_get(a.json, "detail")),
                        json_string_value(json_object_get(b.json, "detail")));
    assert_string_equal(json_string_value(json_object_get(a.json, "type")),
                        json_string_value(json_object_get(b.json, "type")));
    reply_free(&a);
    reply_free(&b);
    free(body);
}

static void test_track_rate_limit(void **state)
{
    (void)state;
    char nid[11], no[40], wrong[11];
    harness_fresh_nid(nid);
    harness_fresh_nid(wrong);
    harness_fresh_no("RQ-IT", no, sizeof(no));
    char *body = sample_request(no, nid, "national_id", "lost");
    struct reply r;
    submit(body, &r);
    reply_free(&r);
    /* A client address of its own, so that earlier tests' failures do not count. */
    harness_source_ip = "127.0.0.9";
    /* Successful look-ups are not limited. */
    for (int i = 0; i < 15; i++) {
        track(no, nid, &r);
        assert_int_equal(r.status, 200);
        reply_free(&r);
    }
    for (int failures = 0; failures < 10; failures++) {
        track(no, wrong, &r);
        assert_int_equal(r.status, 404);
        reply_free(&r);
    }
    track(no, wrong, &r);
    assert_int_equal(r.status, 429);
    assert_true(atoi(r.retry_after) > 0 && atoi(r.retry_after) <= 60);
    reply_free(&r);
    /* Once limited, the address waits, whatever it asks. */
    track(no, nid, &r);
    assert_int_equal(r.status, 429);
    reply_free(&r);
    /* Another address is not affected. */
    harness_source_ip = "127.0.0.10";
    track(no, nid, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    harness_source_ip = NULL;
    free(body);
}

/* Whatever arrives, the answer is never a 5xx. */
static void test_no_5xx_on_garbage(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "",
        "null",
        "0",
        "\"x\"",
        "{}",
        "{\"request_no\":null}",
        "{\"request_no\":123}",
        "{\"holder\":[]}",
        "{\"holder\":{\"name_ar\":{}}}",
        "{\"address\":\"x\"}",
        "{\"documents\":{}}",
        "{\"documents\":[1,2,3]}",
        "{\"documents\":[{\"type\":7}]}",
        "{\"address\":{\"lat\":\"north\",\"lon\":1e999}}",
        "{\"approved_at\":\"2026-13-45T99:99:99Z\"}",
        "{\"terms_accepted_at\":\"\"}",
        "{\"national_id\":\"１٢٣٤٥٦٧٨٩٠\"}",
        "{\"request_no\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
        "{\"kind\":\"national_id\",\"reason\":\"lost\",\"documents\":[{\"type\":\"id_copy\"},{\"type\":\"id_copy\"}]}",
        "{\"request_no\":\"RQ\\u0000X\"}",
        "\xef\xbb\xbf{}",
    };
    struct reply r;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        submit(bodies[i], &r);
        if (r.status >= 500 || r.status < 400)
            fail_msg("body %zu answered %ld", i, r.status);
        reply_free(&r);
        assert_int_equal(http_post_json(&svc, NULL, "/v1/track", bodies[i], &r), 0);
        if (r.status >= 500)
            fail_msg("track body %zu answered %ld", i, r.status);
        reply_free(&r);
    }
    /* Deep nesting. */
    char *deep = malloc(40001);
    for (int i = 0; i < 20000; i++) {
        deep[i] = '[';
        deep[20000 + i] = ']';
    }
    deep[40000] = '\0';
    submit(deep, &r);
    assert_int_equal(r.status, 400);
    reply_free(&r);
    free(deep);
    /* Random bytes. */
    unsigned seed = 7;
    char junk[512];
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (char)(rand_r(&seed) & 0xff);
        const char *h[] = { "Content-Type: application/json", NULL };
        assert_int_equal(http_call(&svc, "POST", "/v1/track", h, junk, sizeof(junk), &r), 0);
        assert_true(r.status >= 400 && r.status < 500);
        reply_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_and_request_id),
        cmocka_unit_test(test_create_idempotent_conflict),
        cmocka_unit_test(test_arabic_round_trip),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_ambiguous_framing),
        cmocka_unit_test(test_every_invalid_field_listed),
        cmocka_unit_test(test_working_days_with_holidays),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_track),
        cmocka_unit_test(test_no_5xx_on_garbage),
        cmocka_unit_test(test_track_rate_limit),
    };
    return cmocka_run_group_tests_name("intake", tests, group_setup, group_teardown);
}
