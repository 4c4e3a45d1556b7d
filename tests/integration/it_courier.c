/* it_courier.c — courier events through the real service: signatures,
 * idempotency, forward-only status, the nearest-branch fallback, the
 * courier's view of a parcel, and the same final state whatever the arrival
 * order. Requests are brought to `produced` with SQL, the state the
 * production line leaves them in. */
#include "flow.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "auth.h"
#include "calendar.h"

static struct service svc;
static char intake[128], operator_[128], branch_staff[128], oly_staff[128];
static char courier[128], secret[128], other[128], other_secret[128];
static int next_id = 300;

static void fresh(char no[40], char nid[11])
{
    char nine[16];
    snprintf(nine, sizeof(nine), "1%08d", next_id);
    make_national_id(nine, nid);
    snprintf(no, 40, "RQ-CR-%06d", next_id++);
}

/* A produced request (at the sample address in Al Olaya unless changed),
 * dispatched to fastpost. */
static void parcel(char no[40], char nid[11], char tracking[14], json_t *address_patch)
{
    fresh(no, nid);
    json_t *req = sample_json(no, nid, "national_id", "lost");
    if (address_patch) {
        json_t *addr = json_object_get(req, "address");
        const char *key;
        json_t *v;
        json_object_foreach(address_patch, key, v)
        {
            if (json_is_null(v))
                json_object_del(addr, key);
            else
                json_object_set(addr, key, v);
        }
        json_decref(address_patch);
    }
    assert_int_equal(flow_produced(&svc, intake, req), 0);
    assert_int_equal(flow_dispatch(&svc, operator_, "fastpost", no, tracking), 0);
    /* Set-up: the card was handed to the courier two days ago, so the
     * courier's scans of the last day come after it. */
    assert_int_equal(flow_sql(NULL, 0,
                              "UPDATE parcels SET created_at = created_at - interval '2 days'"
                              " WHERE tracking_no = '%s'",
                              tracking),
                     0);
    assert_int_equal(
        flow_sql(NULL, 0,
                 "UPDATE request_events SET at = at - interval '2 days'"
                 " WHERE request_id = (SELECT id FROM requests WHERE request_no = '%s')",
                 no),
        0);
}

static void post(const char *body, struct reply *r)
{
    assert_int_equal(flow_signed(&svc, "POST", "/v1/courier/events", courier, secret, 0, body, r),
                     0);
}

static void send_event(const char *id, const char *tracking, const char *code, long offset,
                       const char *reason, struct reply *r)
{
    char at[21];
    flow_time(offset, at);
    char *body = flow_event(id, tracking, code, at, reason);
    post(body, r);
    free(body);
}

static const char *request_status(const char *no, char out[64])
{
    flow_sql(out, 64, "SELECT status FROM requests WHERE request_no = '%s'", no);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    char path[512], out[256];
    /* test_arrival_order_does_not_matter reads 200 timelines through
     * tracking from one address at once: past the per-address rate of calls
     * without a token, which it_budget shows. */
    if (harness_setup(&svc, "public_rate = 0\n") != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "cities", "import",
                    harness_src("../shared/reference/cities.csv", path, sizeof(path)), NULL) != 0 ||
        harness_ctl(&svc, out, sizeof(out), "branches", "import",
                    harness_src("../shared/reference/branches.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher-approvals", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-fatimah", operator_, sizeof(operator_)) ||
        harness_branch_token(&svc, "RUH-SHF", "ruh-shf-desk", branch_staff, sizeof(branch_staff)) ||
        harness_branch_token(&svc, "RUH-OLY", "ruh-oly-desk", oly_staff, sizeof(oly_staff)) ||
        flow_courier_add(&svc, "fastpost", courier, sizeof(courier), secret, sizeof(secret)) ||
        flow_courier_add(&svc, "slowpost", other, sizeof(other), other_secret,
                         sizeof(other_secret)))
        return -1;
    return harness_start(&svc);
}

static int group_teardown(void **state)
{
    (void)state;
    return harness_stop(&svc, false);
}

static void test_courier_add(void **state)
{
    (void)state;
    char t[128], s[128], out[256];
    /* The secret is derived, never stored: the table holds only a salt. */
    flow_sql(out, sizeof(out),
             "SELECT count(*) FROM couriers WHERE name = 'fastpost'"
             " AND length(secret_salt) = 16");
    assert_string_equal(out, "1");
    assert_int_equal(strlen(secret), 64);
    /* A name is taken once. */
    assert_int_not_equal(flow_courier_add(&svc, "fastpost", t, sizeof(t), s, sizeof(s)), 0);
    /* A token of role courier without a courier record cannot sign. */
    char plain[128];
    assert_int_equal(harness_token(&svc, "courier", "not-a-courier", plain, sizeof(plain)), 0);
    struct reply r;
    assert_int_equal(flow_signed(&svc, "POST", "/v1/courier/events", plain, secret, 0, "{}", &r),
                     0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
}

static void test_signatures(void **state)
{
    (void)state;
    char no[40], nid[11], tracking[14], at[21], st[64];
    parcel(no, nid, tracking, NULL);
    flow_time(-60, at);
    char *body = flow_event("sig-1", tracking, "picked_up", at, NULL);
    struct reply r;

    /* Missing. */
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", courier);
    const char *h[] = { auth, "Content-Type: application/json", NULL };
    assert_int_equal(http_call(&svc, "POST", "/v1/courier/events", h, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.content_type, "application/problem+json");
    reply_free(&r);
    /* Malformed. */
    const char *h2[] = { auth, "Content-Type: application/json", "X-Signature: v1=abc", NULL };
    assert_int_equal(http_call(&svc, "POST", "/v1/courier/events", h2, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    /* Wrong: another courier's secret. */
    assert_int_equal(
        flow_signed(&svc, "POST", "/v1/courier/events", courier, other_secret, 0, body, &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    /* Expired and from the future: more than 300 s of skew. */
    assert_int_equal(flow_signed(&svc, "POST", "/v1/courier/events", courier, secret,
                                 (long)time(NULL) - 400, body, &r),
                     0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    assert_int_equal(flow_signed(&svc, "POST", "/v1/courier/events", courier, secret,
                                 (long)time(NULL) + 400, body, &r),
                     0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    /* Signed over another body. */
    char sig[256], sig_header[300];
    {
        auth_sign(secret, (long)time(NULL), "{}", 2, sig, sizeof(sig));
        snprintf(sig_header, sizeof(sig_header), "X-Signature: %s", sig);
        const char *h3[] = { auth, "Content-Type: application/json", sig_header, NULL };
        assert_int_equal(http_call(&svc, "POST", "/v1/courier/events", h3, body, strlen(body), &r),
                         0);
        assert_int_equal(r.status, 401);
        reply_free(&r);
    }
    /* None of these changed anything. */
    assert_string_equal(request_status(no, st), "dispatched");
    char out[64];
    flow_sql(out, sizeof(out), "SELECT count(*) FROM courier_events WHERE event_id = 'sig-1'");
    assert_string_equal(out, "0");

    /* Right: applied. The same signed call again (a replay): a duplicate. */
    long t = (long)time(NULL);
    assert_int_equal(flow_signed(&svc, "POST", "/v1/courier/events", courier, secret, t, body, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(flow_str(r.json, "result"), "applied");
    assert_string_equal(flow_str(r.json, "status"), "in_transit");
    reply_free(&r);
    assert_int_equal(flow_signed(&svc, "POST", "/v1/courier/events", courier, secret, t, body, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(flow_str(r.json, "result"), "duplicate");
    assert_string_equal(flow_str(r.json, "status"), "in_transit");
    reply_free(&r);
    flow_sql(out, sizeof(out), "SELECT count(*) FROM courier_events WHERE event_id = 'sig-1'");
    assert_string_equal(out, "1");
    flow_sql(out, sizeof(out),
             "SELECT count(*) FROM request_events e JOIN requests q ON q.id = e.request_id"
             " WHERE q.request_no = '%s' AND e.status = 'in_transit'",
             no);
    assert_string_equal(out, "1");
    free(body);

    /* The parcel view is signed too. */
    char path[96];
    snprintf(path, sizeof(path), "/v1/courier/parcels/%s", tracking);
    assert_int_equal(http_get(&svc, courier, path, &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    assert_int_equal(flow_signed(&svc, "GET", path, courier, secret, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(flow_str(r.json, "status"), "in_transit");
    assert_string_equal(flow_str(r.json, "action"), "deliver");
    reply_free(&r);
    /* Another role: 403. */
    assert_int_equal(flow_signed(&svc, "GET", path, operator_, secret, 0, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    /* A GET signs "<t>.GET <path>": a signature is good for that one parcel
     * only, and the old form over an empty body is refused. */
    char other_no[40], other_nid[11], other_tracking[14], other_path[96];
    parcel(other_no, other_nid, other_tracking, NULL);
    snprintf(other_path, sizeof(other_path), "/v1/courier/parcels/%s", other_tracking);
    char signed_get[128];
    snprintf(signed_get, sizeof(signed_get), "GET %s", path);
    const char *h4[] = { auth, sig_header, NULL };
    auth_sign(secret, (long)time(NULL), signed_get, strlen(signed_get), sig, sizeof(sig));
    snprintf(sig_header, sizeof(sig_header), "X-Signature: %s", sig);
    assert_int_equal(http_call(&svc, "GET", path, h4, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(http_call(&svc, "GET", other_path, h4, NULL, 0, &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    auth_sign(secret, (long)time(NULL), "", 0, sig, sizeof(sig));
    snprintf(sig_header, sizeof(sig_header), "X-Signature: %s", sig);
    assert_int_equal(http_call(&svc, "GET", path, h4, NULL, 0, &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
}

static void test_events_basics(void **state)
{
    (void)state;
    char no[40], nid[11], tracking[14], st[64];
    parcel(no, nid, tracking, NULL);
    struct reply r;

    /* Unknown tracking number (valid check digit): 404 for that event. */
    send_event("b-unknown", "RR999999995SA", "picked_up", -60, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "application/problem+json");
    reply_free(&r);
    /* Another courier's parcel: 404, and it changes nothing. */
    char at[21];
    flow_time(-60, at);
    char *body = flow_event("b-other", tracking, "delivered", at, NULL);
    assert_int_equal(
        flow_signed(&svc, "POST", "/v1/courier/events", other, other_secret, 0, body, &r), 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    free(body);
    char path[96];
    snprintf(path, sizeof(path), "/v1/courier/parcels/%s", tracking);
    assert_int_equal(flow_signed(&svc, "GET", path, other, other_secret, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    assert_int_equal(
        flow_signed(&svc, "GET", "/v1/courier/parcels/NOT-A-NUMBER", courier, secret, 0, NULL, &r),
        0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    assert_string_equal(request_status(no, st), "dispatched");

    /* Every failing field is listed. */
    post("{\"event_id\":\"\",\"tracking_no\":\"RR123456784SA\",\"code\":\"lost\","
         "\"at\":\"2026-13-01T00:00:00Z\",\"reason\":\"dog\",\"location\":7}",
         &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "event_id"), "required");
    assert_string_equal(problem_code_for(&r, "tracking_no"), "format");
    assert_string_equal(problem_code_for(&r, "code"), "enum");
    assert_string_equal(problem_code_for(&r, "at"), "format");
    assert_string_equal(problem_code_for(&r, "reason"), "enum");
    assert_string_equal(problem_code_for(&r, "location"), "type");
    reply_free(&r);
    send_event("b-early", tracking, "picked_up", -3 * 86400, NULL, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "at"), "before_dispatch");
    reply_free(&r);
    send_event("b-future", tracking, "picked_up", 3600, NULL, &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "at"), "future");
    reply_free(&r);
    post("{}", &r);
    assert_int_equal(r.status, 422);
    reply_free(&r);
    post("{\"events\":7}", &r);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "events"), "type");
    reply_free(&r);
    post("{\"events\":[]}", &r);
    assert_int_equal(r.status, 422);
    reply_free(&r);

    /* More than 500 in one call. */
    json_t *many = json_array();
    for (int i = 0; i < 501; i++)
        json_array_append_new(many, json_integer(i));
    json_t *wrap = json_pack("{s:o}", "events", many);
    char *text = json_dumps(wrap, JSON_COMPACT);
    json_decref(wrap);
    post(text, &r);
    free(text);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "events"), "too_many");
    reply_free(&r);

    /* A batch is answered per event, in order. */
    char a1[21], a2[21];
    flow_time(-300, a1);
    flow_time(-200, a2);
    char *e1 = flow_event("bb-1", tracking, "in_transit", a1, NULL);
    char *e2 = flow_event("bb-2", tracking, "out_for_delivery", a2, NULL);
    char batch[2048];
    snprintf(
        batch, sizeof(batch),
        "{\"events\":[%s,%s,%s,{\"event_id\":\"bb-4\",\"code\":\"x\"},"
        "{\"event_id\":\"bb-5\",\"tracking_no\":\"RR999999995SA\",\"code\":\"picked_up\",\"at\":\"%s\"},7]}",
        e1, e2, e1, a1);
    free(e1);
    free(e2);
    post(batch, &r);
    assert_int_equal(r.status, 200);
    json_t *results = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(results), 6);
    assert_string_equal(flow_str(json_array_get(results, 0), "result"), "applied");
    assert_string_equal(flow_str(json_array_get(results, 0), "status"), "in_transit");
    assert_string_equal(flow_str(json_array_get(results, 1), "result"), "applied");
    assert_string_equal(flow_str(json_array_get(results, 1), "status"), "out_for_delivery");
    assert_string_equal(flow_str(json_array_get(results, 2), "result"), "duplicate");
    assert_string_equal(flow_str(json_array_get(results, 3), "result"), "invalid");
    assert_string_equal(flow_str(json_array_get(results, 3), "event_id"), "bb-4");
    assert_string_equal(flow_str(json_array_get(results, 4), "result"), "not_found");
    assert_string_equal(flow_str(json_array_get(results, 5), "result"), "invalid");
    reply_free(&r);
    assert_string_equal(request_status(no, st), "out_for_delivery");
}

static void test_forward_only(void **state)
{
    (void)state;
    char no[40], nid[11], tracking[14], st[64];
    parcel(no, nid, tracking, NULL);
    struct reply r;
    send_event("fw-1", tracking, "out_for_delivery", -600, NULL, &r);
    assert_string_equal(flow_str(r.json, "result"), "applied");
    reply_free(&r);
    /* The holder sees the first attempt under way. */
    char tb[256];
    snprintf(tb, sizeof(tb), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    assert_int_equal(http_post_json(&svc, NULL, "/v1/track", tb, &r), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "delivery"), "attempts")), 1);
    reply_free(&r);
    /* A late scan from before: joins the history, does not move the status. */
    send_event("fw-0", tracking, "in_transit", -900, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(flow_str(r.json, "result"), "recorded");
    assert_string_equal(flow_str(r.json, "status"), "out_for_delivery");
    reply_free(&r);
    /* Newer but lower: no move either. */
    send_event("fw-2", tracking, "in_transit", -500, NULL, &r);
    assert_string_equal(flow_str(r.json, "result"), "recorded");
    reply_free(&r);
    send_event("fw-3", tracking, "delivered", -400, NULL, &r);
    assert_string_equal(flow_str(r.json, "result"), "applied");
    assert_string_equal(flow_str(r.json, "status"), "delivered");
    assert_string_equal(flow_str(r.json, "action"), "none");
    reply_free(&r);
    /* Nothing follows delivered. */
    send_event("fw-4", tracking, "delivery_failed", -300, "refused", &r);
    assert_string_equal(flow_str(r.json, "result"), "recorded");
    reply_free(&r);
    send_event("fw-5", tracking, "delivery_failed", -200, "refused", &r);
    reply_free(&r);
    send_event("fw-6", tracking, "arrived_at_branch", -100, NULL, &r);
    assert_string_equal(flow_str(r.json, "status"), "delivered");
    reply_free(&r);
    assert_string_equal(request_status(no, st), "delivered");
    /* Every event is in the history. */
    char out[64];
    flow_sql(out, sizeof(out),
             "SELECT count(*) FROM request_events e JOIN requests q ON q.id = e.request_id"
             " WHERE q.request_no = '%s' AND e.detail ? 'event_id' AND e.status IS NULL",
             no);
    assert_string_equal(out, "7");
}

static void check_branch(json_t *b, const char *id)
{
    assert_non_null(b);
    assert_string_equal(flow_str(b, "branch_id"), id);
    assert_true(strlen(flow_str(json_object_get(b, "name"), "ar")) > 0);
    assert_true(strlen(flow_str(json_object_get(b, "name"), "en")) > 0);
    assert_true(json_is_number(json_object_get(b, "lat")));
}

/* Two failed attempts, then the nearest branch that hands over cards. */
static void test_redirect_and_collection(void **state)
{
    (void)state;
    char no[40], nid[11], tracking[14], st[64];
    /* An address exactly at Al Suwaidi, which does not hand over cards, and
     * an inactive branch next to it: Al Shifa (7 km) is the answer. */
    flow_sql(NULL, 0,
             "INSERT INTO branches VALUES ('RUH-TST', 'Closed test branch', 'فرع مغلق',"
             " 'Riyadh', 24.6001, 46.6501, true, false)");
    parcel(no, nid, tracking, json_pack("{s:f, s:f}", "lat", 24.6000, "lon", 46.6500));
    struct reply r;
    send_event("rd-1", tracking, "out_for_delivery", -7200, NULL, &r);
    reply_free(&r);
    send_event("rd-2", tracking, "delivery_failed", -7000, "no_one_home", &r);
    assert_string_equal(flow_str(r.json, "status"), "delivery_failed");
    assert_int_equal(json_integer_value(json_object_get(r.json, "failed_attempts")), 1);
    assert_string_equal(flow_str(r.json, "action"), "deliver");
    reply_free(&r);
    send_event("rd-3", tracking, "out_for_delivery", -3600, NULL, &r);
    assert_string_equal(flow_str(r.json, "status"), "out_for_delivery");
    reply_free(&r);
    send_event("rd-4", tracking, "delivery_failed", -3500, "address_not_found", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(flow_str(r.json, "status"), "redirected_to_branch");
    assert_string_equal(flow_str(r.json, "action"), "return_to_branch");
    check_branch(json_object_get(r.json, "branch"), "RUH-SHF");
    reply_free(&r);
    /* The courier's view says the same. */
    char path[96];
    snprintf(path, sizeof(path), "/v1/courier/parcels/%s", tracking);
    assert_int_equal(flow_signed(&svc, "GET", path, courier, secret, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(flow_str(r.json, "action"), "return_to_branch");
    check_branch(json_object_get(r.json, "branch"), "RUH-SHF");
    reply_free(&r);
    /* A third attempt no longer counts. */
    send_event("rd-5", tracking, "delivery_failed", -3000, "other", &r);
    assert_string_equal(flow_str(r.json, "result"), "recorded");
    assert_int_equal(json_integer_value(json_object_get(r.json, "failed_attempts")), 2);
    reply_free(&r);

    /* Handover is refused until the card is at the branch. */
    char hb[256];
    snprintf(hb, sizeof(hb), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    assert_int_equal(http_post_json(&svc, branch_staff, "/v1/branches/RUH-SHF/handover", hb, &r),
                     0);
    assert_int_equal(r.status, 409);
    reply_free(&r);

    send_event("rd-6", tracking, "arrived_at_branch", -1800, NULL, &r);
    assert_string_equal(flow_str(r.json, "status"), "ready_for_collection");
    assert_string_equal(flow_str(r.json, "action"), "none");
    char at[21];
    flow_time(-1800, at);
    time_t t;
    timestamp_parse(at, &t);
    char want[11];
    date_format(add_working_days(riyadh_day(t), 10, NULL, 0), want);
    assert_string_equal(flow_str(r.json, "collect_by"), want);
    reply_free(&r);

    /* The citizen sees the whole story. */
    char tb[256];
    snprintf(tb, sizeof(tb), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    assert_int_equal(http_post_json(&svc, NULL, "/v1/track", tb, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(flow_str(r.json, "status"), "ready_for_collection");
    json_t *d = json_object_get(r.json, "delivery");
    assert_string_equal(flow_str(d, "method"), "branch");
    assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 2);
    assert_string_equal(flow_str(d, "collect_by"), want);
    check_branch(json_object_get(d, "branch"), "RUH-SHF");
    assert_string_equal(flow_str(json_object_get(d, "branch"), "city"), "Riyadh");
    json_t *timeline = json_object_get(r.json, "timeline");
    /* The third failure, which counted for nothing, is there too. */
    const char *expect[] = { "queued",          "dispatched",          "out_for_delivery",
                             "delivery_failed", "out_for_delivery",    "redirected_to_branch",
                             "delivery_failed", "ready_for_collection" };
    assert_int_equal(json_array_size(timeline), 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(flow_str(json_array_get(timeline, i), "status"), expect[i]);
    reply_free(&r);

    /* Handover: wrong national ID (404, as for an unknown request), a card held at
     * another branch (409), another branch's path (403). */
    char wrong_nid[11];
    make_national_id("100000999", wrong_nid);
    snprintf(hb, sizeof(hb), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, wrong_nid);
    assert_int_equal(http_post_json(&svc, branch_staff, "/v1/branches/RUH-SHF/handover", hb, &r),
                     0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    snprintf(hb, sizeof(hb), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    assert_int_equal(http_post_json(&svc, oly_staff, "/v1/branches/RUH-OLY/handover", hb, &r), 0);
    assert_int_equal(r.status, 409);
    assert_non_null(strstr(flow_str(r.json, "type"), "not_at_branch"));
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, branch_staff, "/v1/branches/RUH-OLY/handover", hb, &r),
                     0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, branch_staff, "/v1/branches/NOPE-1/handover", hb, &r), 0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, branch_staff, "/v1/branches/RUH-SHF/handover",
                                    "{\"request_no\":\"bad no\",\"national_id\":\"123\"}", &r),
                     0);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "request_no"), "format");
    assert_string_equal(problem_code_for(&r, "national_id"), "format");
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, operator_, "/v1/branches/RUH-SHF/handover", hb, &r), 0);
    assert_int_equal(r.status, 403);
    reply_free(&r);
    assert_string_equal(request_status(no, st), "ready_for_collection");

    /* Right branch, right holder: collected; again: the same answer. */
    assert_int_equal(http_post_json(&svc, branch_staff, "/v1/branches/RUH-SHF/handover", hb, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(flow_str(r.json, "status"), "collected");
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, branch_staff, "/v1/branches/RUH-SHF/handover", hb, &r),
                     0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_string_equal(request_status(no, st), "collected");
    /* Nothing follows collected. */
    send_event("rd-7", tracking, "delivered", -60, NULL, &r);
    assert_string_equal(flow_str(r.json, "result"), "recorded");
    assert_string_equal(flow_str(r.json, "status"), "collected");
    reply_free(&r);
}

/* An address without coordinates is placed at its city's centre. */
static void test_redirect_without_coordinates(void **state)
{
    (void)state;
    char no[40], nid[11], tracking[14];
    parcel(no, nid, tracking,
           json_pack("{s:s, s:s, s:n, s:n, s:n}", "city", "Jeddah", "district", "Al Balad", "lat",
                     "lon", "short_address"));
    char out[64];
    flow_sql(out, sizeof(out),
             "SELECT count(*) FROM request_addresses a JOIN requests q"
             " ON q.id = a.request_id WHERE q.request_no = '%s' AND a.lat IS NULL",
             no);
    assert_string_equal(out, "1");
    struct reply r;
    send_event("nc-1", tracking, "delivery_failed", -600, "no_one_home", &r);
    reply_free(&r);
    send_event("nc-2", tracking, "delivery_failed", -500, "no_one_home", &r);
    assert_string_equal(flow_str(r.json, "action"), "return_to_branch");
    check_branch(json_object_get(r.json, "branch"), "JED-BLD");
    reply_free(&r);
}

/* ---- the same events in any order ---- */

#define PARCELS    100
#define EVENTS_PER 10

struct scripted {
    char code[24];
    long offset;
    const char *reason;
};

/* Ten events per parcel from one of four stories, with times that make a
 * canonical order: deliveries, failures and the branch, stale scans. */
static void script_for(int p, struct scripted ev[EVENTS_PER])
{
    static const char *const stories[4][EVENTS_PER] = {
        { "picked_up", "in_transit", "in_transit", "out_for_delivery", "delivery_failed",
          "in_transit", "out_for_delivery", "delivered", "in_transit", "delivery_failed" },
        { "picked_up", "in_transit", "out_for_delivery", "delivery_failed", "out_for_delivery",
          "delivery_failed", "out_for_delivery", "in_transit", "arrived_at_branch", "in_transit" },
        { "picked_up", "in_transit", "out_for_delivery", "delivery_failed", "in_transit",
          "in_transit", "out_for_delivery", "in_transit", "picked_up", "in_transit" },
        { "picked_up", "out_for_delivery", "delivery_failed", "delivery_failed", "delivery_failed",
          "in_transit", "out_for_delivery", "delivered", "arrived_at_branch", "in_transit" },
    };
    for (int i = 0; i < EVENTS_PER; i++) {
        snprintf(ev[i].code, sizeof(ev[i].code), "%s", stories[p % 4][i]);
        /* Some share a second, so ties are ordered too. */
        ev[i].offset = -86400 + (long)p * 60 + i * 300 - (i == 5 ? 300 : 0);
        ev[i].reason = strcmp(ev[i].code, "delivery_failed") == 0 ? "no_one_home" : NULL;
    }
}

static void send_batches(json_t *all, size_t per_call)
{
    size_t n = json_array_size(all);
    for (size_t from = 0; from < n; from += per_call) {
        json_t *events = json_array();
        for (size_t i = from; i < n && i < from + per_call; i++)
            json_array_append(events, json_array_get(all, i));
        json_t *wrap = json_pack("{s:o}", "events", events);
        char *text = json_dumps(wrap, JSON_COMPACT);
        json_decref(wrap);
        struct reply r;
        post(text, &r);
        free(text);
        if (r.status != 200)
            fail_msg("batch answered %ld: %s", r.status, r.body ? r.body : "");
        size_t i;
        json_t *res;
        json_array_foreach(json_object_get(r.json, "results"), i, res)
        {
            const char *o = flow_str(res, "result");
            if (strcmp(o, "applied") && strcmp(o, "recorded") && strcmp(o, "duplicate"))
                fail_msg("event %s: %s", flow_str(res, "event_id"), o);
        }
        reply_free(&r);
    }
}

static void test_arrival_order_does_not_matter(void **state)
{
    (void)state;
    static char nos[2][PARCELS][40], tracking[2][PARCELS][14], nids[2][PARCELS][11];
    for (int set = 0; set < 2; set++)
        for (int p = 0; p < PARCELS; p++)
            parcel(nos[set][p], nids[set][p], tracking[set][p], NULL);

    json_t *in_order = json_array(), *shuffled = json_array();
    for (int p = 0; p < PARCELS; p++) {
        struct scripted ev[EVENTS_PER];
        script_for(p, ev);
        for (int i = 0; i < EVENTS_PER; i++) {
            char at[21], id0[40], id1[40];
            flow_time(ev[i].offset, at);
            snprintf(id0, sizeof(id0), "ord-%d-%d", p, i);
            snprintf(id1, sizeof(id1), "shf-%d-%d", p, i);
            json_array_append_new(in_order,
                                  json_pack("{s:s, s:s, s:s, s:s, s:s?}", "event_id", id0,
                                            "tracking_no", tracking[0][p], "code", ev[i].code, "at",
                                            at, "reason", ev[i].reason));
            json_array_append_new(shuffled,
                                  json_pack("{s:s, s:s, s:s, s:s, s:s?}", "event_id", id1,
                                            "tracking_no", tracking[1][p], "code", ev[i].code, "at",
                                            at, "reason", ev[i].reason));
        }
    }
    /* The canonical order is by time: sort the first set that way. */
    size_t n = json_array_size(in_order);
    assert_int_equal(n, PARCELS * EVENTS_PER);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            const char *a = flow_str(json_array_get(in_order, j - 1), "at");
            const char *b = flow_str(json_array_get(in_order, j), "at");
            if (strcmp(a, b) <= 0)
                break;
            json_t *tmp = json_incref(json_array_get(in_order, j - 1));
            json_array_set(in_order, j - 1, json_array_get(in_order, j));
            json_array_set_new(in_order, j, tmp);
        }
    /* The second set: shuffled, with one in five sent twice. */
    unsigned seed = 2026;
    for (size_t i = 0; i < n; i += 5)
        json_array_append(shuffled, json_array_get(shuffled, (size_t)rand_r(&seed) % n));
    size_t m = json_array_size(shuffled);
    for (size_t i = m - 1; i > 0; i--) {
        size_t j = (size_t)rand_r(&seed) % (i + 1);
        json_t *a = json_incref(json_array_get(shuffled, i));
        json_array_set(shuffled, i, json_array_get(shuffled, j));
        json_array_set_new(shuffled, j, a);
    }
    send_batches(in_order, 100);
    send_batches(shuffled, 37);
    json_decref(in_order);
    json_decref(shuffled);

    for (int p = 0; p < PARCELS; p++) {
        char a[256], b[256];
        const char *q =
            "SELECT r.status || '|' || pa.failed_attempts || '|' || coalesce(pa.branch_id, '-')"
            " || '|' || coalesce(pa.collect_by::text, '-') FROM parcels pa"
            " JOIN requests r ON r.id = pa.request_id WHERE pa.tracking_no = '%s'";
        flow_sql(a, sizeof(a), q, tracking[0][p]);
        flow_sql(b, sizeof(b), q, tracking[1][p]);
        if (strcmp(a, b) != 0)
            fail_msg("parcel %d: in order %s, shuffled %s", p, a, b);
    }
    /* The citizen's timelines are the same too: every event once, at its
     * time, whatever order and however often it arrived. */
    for (int p = 0; p < PARCELS; p++) {
        char got[2][2048];
        for (int set = 0; set < 2; set++) {
            char tb[256];
            struct reply r;
            snprintf(tb, sizeof(tb), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", nos[set][p],
                     nids[set][p]);
            assert_int_equal(http_post_json(&svc, NULL, "/v1/track", tb, &r), 0);
            assert_int_equal(r.status, 200);
            json_t *timeline = json_object_get(r.json, "timeline");
            /* queued, dispatched, then one entry for each of the events */
            if (json_array_size(timeline) != 2 + EVENTS_PER)
                fail_msg("parcel %d set %d: %zu timeline entries: %s", p, set,
                         json_array_size(timeline), r.body);
            size_t used = 0, i;
            json_t *e;
            json_array_foreach(timeline, i, e)
            {
                const char *st = flow_str(e, "status");
                bool own = strcmp(st, "queued") == 0 || strcmp(st, "dispatched") == 0;
                used += (size_t)snprintf(got[set] + used, sizeof(got[set]) - used, "%s%s%s;", st,
                                         own ? "" : "@", own ? "" : flow_str(e, "at"));
            }
            reply_free(&r);
        }
        if (strcmp(got[0], got[1]) != 0)
            fail_msg("parcel %d timeline: in order %s, shuffled %s", p, got[0], got[1]);
    }

    /* The stories end where they should. */
    char out[256];
    flow_sql(
        out, sizeof(out),
        "SELECT string_agg(DISTINCT r.status, ',' ORDER BY r.status) FROM parcels pa"
        " JOIN requests r ON r.id = pa.request_id WHERE pa.tracking_no IN ('%s','%s','%s','%s')",
        tracking[1][0], tracking[1][1], tracking[1][2], tracking[1][3]);
    assert_string_equal(out, "delivered,out_for_delivery,ready_for_collection");
    flow_sql(out, sizeof(out), "SELECT count(*) FROM courier_events WHERE event_id LIKE 'shf-%%'");
    assert_string_equal(out, "1000");
}

/* Whatever a courier or a branch sends, the answer is never a 5xx. */
static void test_no_5xx_on_garbage(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{}",
        "{\"events\":null}",
        "{\"events\":[null,[],\"x\",{}]}",
        "{\"event_id\":[]}",
        "{\"event_id\":\"a\",\"tracking_no\":\"RR123456785SA\",\"code\":\"picked_up\",\"at\":\"1900-01-01T00:00:00Z\"}",
        "{\"event_id\":\"\\u0000\",\"tracking_no\":\"RR\\u0000\",\"code\":{},\"at\":7,\"reason\":[],\"location\":\"\\u0000\"}",
        "{\"event_id\":\"Ø§\",\"tracking_no\":\"Ø§Ø§Ø§Ø§Ø§Ø§\",\"code\":\"delivered\",\"at\":\"9999-12-31T23:59:59Z\"}",
        "{\"events\":[{\"event_id\":\"x\",\"tracking_no\":\"RR123456785SA\",\"code\":\"delivered\",\"at\":\"2026-01-01T00:00:00+14:00\",\"reason\":\"other\",\"location\":\"Ø§ÙØ±ÙØ§Ø¶\"}]}",
    };
    struct reply r;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        post(bodies[i], &r);
        if (r.status >= 500)
            fail_msg("event body %zu answered %ld: %s", i, r.status, r.body ? r.body : "");
        reply_free(&r);
        assert_int_equal(
            http_post_json(&svc, oly_staff, "/v1/branches/RUH-OLY/handover", bodies[i], &r), 0);
        if (r.status >= 500)
            fail_msg("handover body %zu answered %ld", i, r.status);
        reply_free(&r);
    }
    static const char *const paths[] = {
        "/v1/courier/parcels/%00",
        "/v1/courier/parcels/RR123456785SA",
        "/v1/courier/parcels/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(flow_signed(&svc, "GET", paths[i], courier, secret, 0, NULL, &r), 0);
        if (r.status != 404)
            fail_msg("path %zu answered %ld", i, r.status);
        reply_free(&r);
    }
    unsigned seed = 11;
    char junk[300];
    for (int round = 0; round < 30; round++) {
        for (size_t i = 0; i < sizeof(junk) - 1; i++)
            junk[i] = (char)(1 + rand_r(&seed) % 255);
        junk[sizeof(junk) - 1] = '\0';
        post(junk, &r);
        assert_true(r.status >= 400 && r.status < 500);
        reply_free(&r);
    }
}

/* The whole chain ran through this service (intake, dispatch, courier
 * events, redirection, handover, tracking): its log holds none of the
 * holders' personal data. */
static void test_log_holds_no_personal_data(void **state)
{
    (void)state;
    char found[128];
    if (harness_log_personal_data(&svc, found, sizeof(found)) != 0)
        fail_msg("the service's log holds personal data: %s", found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_courier_add),
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_events_basics),
        cmocka_unit_test(test_forward_only),
        cmocka_unit_test(test_redirect_and_collection),
        cmocka_unit_test(test_redirect_without_coordinates),
        cmocka_unit_test(test_arrival_order_does_not_matter),
        cmocka_unit_test(test_no_5xx_on_garbage),
        cmocka_unit_test(test_log_holds_no_personal_data),
    };
    return cmocka_run_group_tests_name("courier", tests, group_setup, group_teardown);
}
