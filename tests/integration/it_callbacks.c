/* it_callbacks.c — status callbacks to the approval platform, against the
 * platform emulator (emu-platform), the SMS gateway emulator and the real
 * service on PostgreSQL: every status once and in order per request, signed
 * with the platform secret; a platform that is down, refuses one request or
 * hangs, with one and with two instances. */
#include "auth.h"
#include "db.h"
#include "metrics.h"
#include "flow.h"
#include "production.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define OTHER_SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static struct service svc, second; /* second: a second instance, for one test */
static char intake[128], operator_[128], desk[128], courier[128], courier_secret[128];
static char platform_secret[128];
static char dir[64], extra[1024];
static pid_t platform_pid, sms_pid;
static int platform_port, sms_port;

/* ---- the emulators ---- */

static const char *in_dir(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

static void control(const char *name, const char *content)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/control/%s", dir, name);
    if (!content) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int wait_port(const char *portfile, int *port)
{
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", port);
            fclose(f);
            if (ok == 1 && *port > 0)
                return 0;
        }
        usleep(10000);
    }
    return -1;
}

static int emulators_start(void)
{
    char bin[512], out[300], secret[300], ctl[300], portfile[300], sms_out[300], sms_port_f[300];
    snprintf(ctl, sizeof(ctl), "%s/control", dir);
    if (mkdir(ctl, 0700) != 0)
        return -1;
    in_dir("platform.jsonl", out, sizeof(out));
    in_dir("platform.secret", secret, sizeof(secret));
    in_dir("platform.port", portfile, sizeof(portfile));
    harness_bin("emu-platform", bin, sizeof(bin));
    platform_pid = fork();
    if (platform_pid < 0)
        return -1;
    if (platform_pid == 0) {
        execl(bin, "emu-platform", "--out", out, "--secret-file", secret, "--control", ctl,
              "--port-file", portfile, (char *)NULL);
        _exit(127);
    }
    in_dir("sms.jsonl", sms_out, sizeof(sms_out));
    in_dir("sms.port", sms_port_f, sizeof(sms_port_f));
    harness_bin("emu-smsgw", bin, sizeof(bin));
    sms_pid = fork();
    if (sms_pid < 0)
        return -1;
    if (sms_pid == 0) {
        execl(bin, "emu-smsgw", "--out", sms_out, "--port-file", sms_port_f, (char *)NULL);
        _exit(127);
    }
    return wait_port(portfile, &platform_port) || wait_port(sms_port_f, &sms_port) ? -1 : 0;
}

/* Every call the platform got, in the order they came; each has "body"
 * (the raw body parsed) besides the emulator's fields. */
static json_t *platform_calls(void)
{
    char path[300], line[16384];
    json_t *calls = json_array();
    FILE *f = fopen(in_dir("platform.jsonl", path, sizeof(path)), "r");
    if (!f)
        return calls;
    while (fgets(line, sizeof(line), f)) {
        json_t *c = json_loads(line, 0, NULL);
        assert_non_null(c);
        json_t *body = json_loads(flow_str(c, "raw"), 0, NULL);
        json_object_set_new(c, "body", body ? body : json_null());
        json_array_append_new(calls, c);
    }
    fclose(f);
    /* By arrival. */
    size_t n = json_array_size(calls);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(calls, j - 1), *b = json_array_get(calls, j);
            if (json_integer_value(json_object_get(a, "start_ms")) <=
                json_integer_value(json_object_get(b, "start_ms")))
                break;
            json_incref(a);
            json_array_set(calls, j - 1, b);
            json_array_set_new(calls, j, a);
        }
    return calls;
}

static long calls_for(const char *no, long answer)
{
    json_t *calls = platform_calls();
    size_t i;
    json_t *c;
    long n = 0;
    json_array_foreach(calls, i, c)
    {
        if (strcmp(flow_str(json_object_get(c, "body"), "request_no"), no) == 0 &&
            (answer < 0 || json_integer_value(json_object_get(c, "answer")) == answer))
            n++;
    }
    json_decref(calls);
    return n;
}

/* ---- set-up ---- */

static int group_setup(void **state)
{
    (void)state;
    char path[512], out[256];
    snprintf(dir, sizeof(dir), "/tmp/cardd-cb-XXXXXX");
    if (!mkdtemp(dir) || emulators_start() != 0)
        return -1;
    snprintf(extra, sizeof(extra),
             "platform_callback_url = http://127.0.0.1:%d/callbacks\n"
             "callback_timeout_ms = 2000\ncallback_connect_timeout_ms = 1000\n"
             "callback_max_backoff_s = 2\ncallback_max_in_flight = 4\n"
             "sms_gateway_url = http://127.0.0.1:%d/sms\nnotify_max_backoff_s = 2\n",
             platform_port, sms_port);
    if (harness_setup(&svc, extra) != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "cities", "import",
                    harness_src("../shared/reference/cities.csv", path, sizeof(path)), NULL) != 0 ||
        harness_ctl(&svc, out, sizeof(out), "branches", "import",
                    harness_src("../shared/reference/branches.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher-approvals", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-reem", operator_, sizeof(operator_)) ||
        flow_courier_add(&svc, "naqel", courier, sizeof(courier), courier_secret,
                         sizeof(courier_secret)))
        return -1;
    /* The platform secret: made and shown once, then given to the platform. */
    if (harness_ctl(&svc, out, sizeof(out), "platform", "secret", NULL) != 0 ||
        sscanf(out, "secret: %127s", platform_secret) != 1 ||
        strlen(platform_secret) != AUTH_SECRET_HEX_LEN)
        return -1;
    FILE *f = fopen(in_dir("platform.secret", path, sizeof(path)), "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", platform_secret);
    fclose(f);
    /* Production happens on a station of another host (see produce()). */
    if (flow_sql(NULL, 0,
                 "INSERT INTO stations (id, instance, printer_driver, printer_serial, reader)"
                 " VALUES ('CB-1', 'line-host', 'evolis', 'E1', 'reader')") != 0 ||
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-CB-1", "A00000001", "10",
                    NULL) != 0)
        return -1;
    return harness_start(&svc);
}

/* Each test starts with a platform that answers well. */
static int platform_fine(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -f %s/control/*", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = harness_stop(&svc, false);
    if (second.pid > 0 && harness_stop(&second, false) != 0)
        rc = -1;
    pid_t pids[] = { platform_pid, sms_pid };
    for (int i = 0; i < 2; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (getenv("CB_KEEP") == NULL && system(cmd) != 0)
        rc = -1;
    return rc;
}

/* ---- driving requests ---- */

static void intake_request(const char *no, char nid[11])
{
    harness_fresh_nid(nid);
    char *text = sample_request(no, nid, "national_id", "lost");
    struct reply r;
    assert_int_equal(http_post_json(&svc, intake, "/v1/requests", text, &r), 0);
    free(text);
    if (r.status != 201)
        fail_msg("intake of %s answered %ld: %s", no, r.status, r.body ? r.body : "");
    reply_free(&r);
}

/* The production line's bookkeeping for one card, as a station on another
 * host does it: in_production, then produced. */
static void produce(const char *no)
{
    struct db *db = NULL;
    char msg[256];
    struct job job;
    assert_int_equal(db_connect(&db, "", msg, sizeof(msg)), 0);
    assert_int_equal(production_claim(db, "CB-1", "line-host", &job), 0);
    assert_string_equal(job.request_no, no);
    struct job_result done = { .outcome = JOB_PRODUCED, .step = "eject" };
    assert_int_equal(production_finish(db, &job, &done, 3), 0);
    db_close(db);
}

static void dispatch(struct service *via, const char *no, char tracking[14])
{
    assert_int_equal(flow_dispatch(via, operator_, "naqel", no, tracking), 0);
    /* Set-up: handed over two hours ago, so the scans below come after it. */
    flow_sql(NULL, 0,
             "UPDATE parcels SET created_at = created_at - interval '2 hours'"
             " WHERE tracking_no = '%s'",
             tracking);
}

static void event(struct service *via, const char *tracking, const char *code, long offset,
                  const char *expect_status)
{
    static int next;
    char id[40], at[21];
    snprintf(id, sizeof(id), "cb-%d", next++);
    flow_time(offset, at);
    char *body = flow_event(id, tracking, code, at,
                            strcmp(code, "delivery_failed") == 0 ? "no_one_home" : NULL);
    struct reply r;
    assert_int_equal(
        flow_signed(via, "POST", "/v1/courier/events", courier, courier_secret, 0, body, &r), 0);
    free(body);
    if (r.status != 200 || strcmp(flow_str(r.json, "status"), expect_status) != 0)
        fail_msg("event %s %s answered %ld: %s", code, tracking, r.status, r.body ? r.body : "");
    reply_free(&r);
}

/* ---- waiting and checking ---- */

static long count_sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long count_sql(const char *fmt, ...)
{
    char sql[1024], out[64] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    assert_int_equal(harness_sql(out, sizeof(out), sql), 0);
    return strtol(out, NULL, 10);
}

/* Waits up to seconds for a count to reach want. */
static void wait_count(long want, int seconds, const char *fmt, const char *no)
{
    long got = -1;
    for (int i = 0; i < seconds * 10; i++) {
        got = count_sql(fmt, no);
        if (got == want)
            return;
        usleep(100000);
    }
    fail_msg("waited %d s for %ld, got %ld: %s (%s)", seconds, want, got, fmt, no);
}

static void wait_all_sent(const char *no)
{
    wait_count(0, 60,
               "SELECT count(*) FROM callbacks c JOIN requests r ON r.id = c.request_id"
               " WHERE r.request_no = '%s' AND c.state <> 'sent'",
               no);
}

/* What the platform acknowledged for one request equals the request's
 * callbacks in the database: each once (a repeat only with the same
 * callback_id and the same body), in sequence, each sent only after the one
 * before was answered, each signature valid under the platform secret and
 * invalid under another. statuses, when given, is the expected chain.
 * Returns how many callbacks there were. */
static size_t verify_request(const char *no, const char *const *statuses)
{
    json_t *calls = platform_calls();
    json_t *seen = json_object();
    json_t *got = json_array();
    long prev_answer_ms = 0;
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        json_t *body = json_object_get(c, "body");
        if (strcmp(flow_str(body, "request_no"), no) != 0)
            continue;
        long answer = (long)json_integer_value(json_object_get(c, "answer"));
        if (answer < 200 || answer > 299)
            continue;
        const char *raw = flow_str(c, "raw"), *sig = flow_str(c, "x_signature");
        assert_string_equal(flow_str(c, "signature"), "valid");
        assert_int_equal(auth_verify_signature(sig, raw, strlen(raw), platform_secret, time(NULL)),
                         0);
        assert_int_equal(auth_verify_signature(sig, raw, strlen(raw), OTHER_SECRET, time(NULL)),
                         -EACCES);
        const char *id = flow_str(body, "callback_id");
        json_t *before = json_object_get(seen, id);
        if (before) {
            assert_string_equal(json_string_value(before), raw); /* a repeat, the same */
            continue;
        }
        json_object_set_new(seen, id, json_string(raw));
        /* Sent only once the one before was acknowledged. */
        long start = (long)json_integer_value(json_object_get(c, "start_ms"));
        assert_true(start >= prev_answer_ms);
        prev_answer_ms = (long)json_integer_value(json_object_get(c, "answer_ms"));
        json_array_append(got, body);
    }
    char sql[512], db_chain[4096] = "";
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(c.callback_id || ' ' || c.sequence || ' ' || c.status, ','"
             " ORDER BY c.sequence) FROM callbacks c JOIN requests r ON r.id = c.request_id"
             " WHERE r.request_no = '%s'",
             no);
    assert_int_equal(harness_sql(db_chain, sizeof(db_chain), sql), 0);
    char chain[4096] = "";
    size_t n = json_array_size(got);
    json_array_foreach(got, i, c)
    {
        char item[160];
        snprintf(item, sizeof(item), "%s%s %lld %s", i ? "," : "", flow_str(c, "callback_id"),
                 (long long)json_integer_value(json_object_get(c, "sequence")),
                 flow_str(c, "status"));
        strncat(chain, item, sizeof(chain) - strlen(chain) - 1);
        assert_int_equal(json_integer_value(json_object_get(c, "sequence")), (json_int_t)i + 1);
        if (statuses) {
            assert_non_null(statuses[i]);
            assert_string_equal(flow_str(c, "status"), statuses[i]);
        }
    }
    if (statuses)
        assert_null(statuses[n]);
    if (strcmp(chain, db_chain) != 0)
        fail_msg("%s: the platform got\n  %s\nthe database has\n  %s", no, chain, db_chain);
    json_decref(got);
    json_decref(seen);
    json_decref(calls);
    return n;
}

/* The acknowledged callback of request no with this sequence. */
static json_t *received(const char *no, int sequence)
{
    json_t *calls = platform_calls(), *found = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        json_t *body = json_object_get(c, "body");
        if (strcmp(flow_str(body, "request_no"), no) == 0 &&
            json_integer_value(json_object_get(body, "sequence")) == sequence &&
            json_integer_value(json_object_get(c, "answer")) == 200) {
            found = json_incref(body);
            break;
        }
    }
    json_decref(calls);
    assert_non_null(found);
    return found;
}

/* ---- the tests ---- */

/* One request delivered home after a failed delivery attempt — its first
 * callback refused once with 503 — and one sent to a branch and collected. */
static void test_whole_chain(void **state)
{
    (void)state;
    char home[40], branch[40], nid_home[11], nid_branch[11], t_home[14], t_branch[14], per[64];
    harness_fresh_no("RQ-CB-H", home, sizeof(home));
    harness_fresh_no("RQ-CB-B", branch, sizeof(branch));
    snprintf(per, sizeof(per), "status.%s", home);
    control(per, "503\n");

    intake_request(home, nid_home);
    /* The platform refused the first try; then it is fixed. */
    wait_count(1, 20,
               "SELECT count(*) FROM callbacks c JOIN requests r ON r.id = c.request_id"
               " WHERE r.request_no = '%s' AND c.last_status = 503",
               home);
    assert_true(calls_for(home, 503) >= 1);
    control(per, NULL);
    produce(home);
    dispatch(&svc, home, t_home);
    event(&svc, t_home, "in_transit", -6000, "in_transit");
    event(&svc, t_home, "out_for_delivery", -5000, "out_for_delivery");
    event(&svc, t_home, "delivery_failed", -4000, "delivery_failed");
    event(&svc, t_home, "out_for_delivery", -3000, "out_for_delivery");
    event(&svc, t_home, "delivered", -2000, "delivered");

    intake_request(branch, nid_branch);
    produce(branch);
    dispatch(&svc, branch, t_branch);
    event(&svc, t_branch, "out_for_delivery", -6000, "out_for_delivery");
    event(&svc, t_branch, "delivery_failed", -5000, "delivery_failed");
    event(&svc, t_branch, "out_for_delivery", -4000, "out_for_delivery");
    event(&svc, t_branch, "delivery_failed", -3000, "redirected_to_branch");
    event(&svc, t_branch, "arrived_at_branch", -2000, "ready_for_collection");
    char branch_id[40] = "", path[96], body[128];
    flow_sql(branch_id, sizeof(branch_id), "SELECT branch_id FROM parcels WHERE tracking_no = '%s'",
             t_branch);
    assert_int_equal(harness_branch_token(&svc, branch_id, "desk-cb", desk, sizeof(desk)), 0);
    snprintf(path, sizeof(path), "/v1/branches/%s/handover", branch_id);
    snprintf(body, sizeof(body), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", branch,
             nid_branch);
    struct reply r;
    assert_int_equal(http_post_json(&svc, desk, path, body, &r), 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);

    wait_all_sent(home);
    wait_all_sent(branch);
    static const char *const home_chain[] = {
        "queued",           "in_production",   "produced",         "dispatched", "in_transit",
        "out_for_delivery", "delivery_failed", "out_for_delivery", "delivered",  NULL,
    };
    static const char *const branch_chain[] = {
        "queued",
        "in_production",
        "produced",
        "dispatched",
        "out_for_delivery",
        "delivery_failed",
        "out_for_delivery",
        "redirected_to_branch",
        "ready_for_collection",
        "collected",
        NULL,
    };
    assert_int_equal(verify_request(home, home_chain), 9);
    assert_int_equal(verify_request(branch, branch_chain), 10);

    /* What a callback says: API.md's payload. */
    json_t *first = received(home, 1);
    assert_string_equal(flow_str(first, "national_id"), nid_home);
    assert_string_equal(flow_str(first, "status"), "queued");
    assert_string_equal(flow_str(json_object_get(first, "status_label"), "en"), "Request received");
    assert_string_equal(flow_str(json_object_get(first, "status_label"), "ar"), "تم استلام الطلب");
    assert_int_equal(strlen(flow_str(first, "at")), 20);
    json_decref(first);
    json_t *done = received(home, 9);
    json_t *d = json_object_get(done, "delivery");
    assert_string_equal(flow_str(d, "method"), "home");
    assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 2);
    assert_true(json_is_null(json_object_get(d, "branch")));
    assert_true(json_is_null(json_object_get(d, "collect_by")));
    json_decref(done);
    json_t *ready = received(branch, 9);
    d = json_object_get(ready, "delivery");
    assert_string_equal(flow_str(ready, "status"), "ready_for_collection");
    assert_string_equal(flow_str(d, "method"), "branch");
    assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 2);
    assert_string_equal(flow_str(json_object_get(d, "branch"), "branch_id"), branch_id);
    assert_true(strlen(flow_str(json_object_get(json_object_get(d, "branch"), "name"), "ar")) > 0);
    assert_int_equal(strlen(flow_str(d, "collect_by")), 10);
    json_decref(ready);
    json_t *redirected = received(branch, 8);
    assert_string_equal(
        flow_str(json_object_get(json_object_get(redirected, "delivery"), "branch"), "branch_id"),
        branch_id);
    json_decref(redirected);
}

/* A platform that answers 429 with Retry-After: the next try waits as long
 * as it asked, longer than the backoff's cap (2 s here); a 503 without it
 * is tried again within the cap. */
static void test_retry_after(void **state)
{
    (void)state;
    char no[40], nid[11], per[64];
    harness_fresh_no("RQ-CB-R", no, sizeof(no));
    snprintf(per, sizeof(per), "status.%s", no);
    control(per, "429 4\n");
    intake_request(no, nid);
    wait_count(1, 20,
               "SELECT count(*) FROM callbacks c JOIN requests r ON r.id = c.request_id"
               " WHERE r.request_no = '%s' AND c.last_status = 429",
               no);
    control(per, "503\n");
    wait_count(1, 20,
               "SELECT count(*) FROM callbacks c JOIN requests r ON r.id = c.request_id"
               " WHERE r.request_no = '%s' AND c.last_status = 503",
               no);
    control(per, NULL);
    wait_all_sent(no);
    assert_int_equal(verify_request(no, NULL), 1);
    /* The gaps between the calls: after the 429, at least the 4 s asked
     * for; after a 503, no more than the cap and a poll. */
    json_t *calls = platform_calls();
    long prev_answer = 0, prev_ms = 0, n = 0;
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        if (strcmp(flow_str(json_object_get(c, "body"), "request_no"), no) != 0)
            continue;
        long start = (long)json_integer_value(json_object_get(c, "start_ms"));
        if (prev_answer == 429)
            assert_true(start - prev_ms >= 3900);
        if (prev_answer == 503)
            assert_true(start - prev_ms <= 2000 + 1000);
        prev_answer = (long)json_integer_value(json_object_get(c, "answer"));
        prev_ms = (long)json_integer_value(json_object_get(c, "answer_ms"));
        n++;
    }
    json_decref(calls);
    assert_true(n >= 3);
}

/* A request taken from intake to delivered through one instance or
 * another: queued, dispatched, in_transit, out_for_delivery, delivered. */
static void five_changes(struct service *a, struct service *b, const char *no)
{
    char nid[11], tracking[14];
    intake_request(no, nid);
    flow_sql(NULL, 0, "UPDATE requests SET status = 'produced' WHERE request_no = '%s'", no);
    dispatch(b, no, tracking);
    event(a, tracking, "in_transit", -3000, "in_transit");
    event(b, tracking, "out_for_delivery", -2000, "out_for_delivery");
    event(a, tracking, "delivered", -1000, "delivered");
}

/* The value of one sample line of /metrics ("name{labels} " given). */
static long metric(const char *name)
{
    struct reply r;
    char line[160];
    assert_int_equal(http_get(&svc, operator_, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    snprintf(line, sizeof(line), "\n%s", name);
    char *p = strstr(r.body, line);
    assert_non_null(p);
    long v = strtol(p + strlen(line), NULL, 10);
    reply_free(&r);
    return v;
}

/* Whether the metric reaches at_least: /metrics keeps its database gauges
 * for METRICS_GAUGE_MAX_AGE_S, so a change shows at a later read at the latest. */
static bool metric_at_least(const char *name, long at_least)
{
    for (int i = 0; i < (METRICS_GAUGE_MAX_AGE_S + 2) * 10; i++) {
        if (metric(name) >= at_least)
            return true;
        usleep(100000);
    }
    return false;
}

/* The platform down for a while: the SMS go out meanwhile, the callbacks
 * wait, and once it is back every one arrives, in order. */
static void test_platform_down(void **state)
{
    (void)state;
    char no[5][40];
    control("down", "");
    for (int i = 0; i < 5; i++) {
        harness_fresh_no("RQ-CB-D", no[i], sizeof(no[i]));
        five_changes(&svc, &svc, no[i]);
    }
    /* Every SMS is delivered while the platform is down. */
    for (int i = 0; i < 5; i++)
        wait_count(0, 30,
                   "SELECT count(*) FROM notifications n JOIN requests r ON r.id = n.request_id"
                   " WHERE r.request_no = '%s' AND n.delivered_at IS NULL",
                   no[i]);
    /* The callbacks were tried and wait. */
    for (int i = 0; i < 5; i++) {
        wait_count(1, 20,
                   "SELECT count(*) FROM callbacks c JOIN requests r ON r.id = c.request_id"
                   " WHERE r.request_no = '%s' AND c.sequence = 1 AND c.attempts > 0"
                   " AND c.state = 'waiting' AND c.last_error IS NOT NULL",
                   no[i]);
        assert_int_equal(count_sql("SELECT count(*) FROM callbacks c JOIN requests r ON"
                                   " r.id = c.request_id WHERE r.request_no = '%s'"
                                   " AND c.state = 'sent'",
                                   no[i]),
                         0);
    }
    assert_true(metric_at_least("cardd_callbacks{state=\"waiting\"} ", 25));
    sleep(1);
    assert_true(metric_at_least("cardd_callback_oldest_waiting_seconds ", 1));

    control("down", NULL);
    for (int i = 0; i < 5; i++)
        wait_all_sent(no[i]);
    for (int i = 0; i < 5; i++)
        assert_int_equal(verify_request(no[i], NULL), 5);
}

/* The platform answers 422 for one request: its callbacks stop as failed,
 * the others go on, and a retry after the fix delivers the rest in order. */
static void test_refused_request(void **state)
{
    (void)state;
    char bad[40], good[40], nid[11], t_bad[14], t_good[14], per[64], out[4096];
    harness_fresh_no("RQ-CB-X", bad, sizeof(bad));
    harness_fresh_no("RQ-CB-G", good, sizeof(good));
    snprintf(per, sizeof(per), "status.%s", bad);
    control(per, "422\n");
    const char *both[] = { bad, good };
    char *tracking[] = { t_bad, t_good };
    for (int i = 0; i < 2; i++) {
        intake_request(both[i], nid);
        flow_sql(NULL, 0, "UPDATE requests SET status = 'produced' WHERE request_no = '%s'",
                 both[i]);
        dispatch(&svc, both[i], tracking[i]);
        event(&svc, tracking[i], "in_transit", -3000, "in_transit");
    }
    wait_count(1, 20,
               "SELECT count(*) FROM callbacks c JOIN requests r ON r.id = c.request_id"
               " WHERE r.request_no = '%s' AND c.state = 'failed'",
               bad);
    wait_all_sent(good);
    /* The others go on while it is failed. */
    event(&svc, t_good, "out_for_delivery", -2000, "out_for_delivery");
    event(&svc, t_bad, "out_for_delivery", -2000, "out_for_delivery");
    wait_all_sent(good);
    assert_int_equal(verify_request(good, NULL), 4);
    sleep(1);
    /* Refused once, never tried again, nothing after it sent. */
    assert_int_equal(calls_for(bad, -1), 1);
    assert_int_equal(calls_for(bad, 422), 1);
    assert_int_equal(count_sql("SELECT count(*) FROM callbacks c JOIN requests r ON"
                               " r.id = c.request_id WHERE r.request_no = '%s'"
                               " AND c.state = 'waiting'",
                               bad),
                     3);
    assert_true(metric_at_least("cardd_callbacks{state=\"failed\"} ", 1));

    /* The operator sees it. */
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "callbacks", "--failed", NULL), 0);
    assert_non_null(strstr(out, bad));
    assert_non_null(strstr(out, "platform answered 422"));
    assert_null(strstr(out, good));
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "callbacks", NULL), 0);
    assert_non_null(strstr(out, bad));
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "callbacks", "retry", "RQ-NO-SUCH", NULL),
                     1);

    /* Fixed; retried: the rest arrive in order. */
    control(per, NULL);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "callbacks", "retry", bad, NULL), 0);
    assert_non_null(strstr(out, "1 failed callback(s) waiting again"));
    wait_all_sent(bad);
    static const char *const chain[] = { "queued", "dispatched", "in_transit", "out_for_delivery",
                                         NULL };
    assert_int_equal(verify_request(bad, chain), 4);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "callbacks", "--failed", NULL), 0);
    assert_string_equal(out, "no failed callbacks");
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "callbacks", "retry", "--all-failed", NULL), 0);
    assert_non_null(strstr(out, "0 failed callback(s)"));
}

/* Two instances and a platform that hangs longer than a send may take:
 * both claim callbacks, sends time out and are tried again, and no
 * callback is ever being sent twice at once; none is lost. */
static void test_two_instances_hanging_platform(void **state)
{
    (void)state;
    char extra2[1200];
    snprintf(extra2, sizeof(extra2), "%sinstance = second\n", extra);
    assert_int_equal(harness_clone(&svc, &second, extra2), 0);
    assert_int_equal(harness_start(&second), 0);
    json_t *before = platform_calls();
    long calls_before = (long)json_array_size(before);
    json_decref(before);

    control("hang", "");
    char no[10][40];
    for (int i = 0; i < 10; i++) {
        harness_fresh_no("RQ-CB-T", no[i], sizeof(no[i]));
        five_changes(i % 2 ? &svc : &second, i % 2 ? &second : &svc, no[i]);
    }
    /* Both instances hold claims on hanging sends. */
    wait_count(2, 20,
               "SELECT count(DISTINCT split_part(claimed_by, '/', 1)) FROM callbacks"
               " WHERE claim_until > now()",
               "");
    sleep(5); /* several time-outs and retries */
    control("hang", NULL);
    for (int i = 0; i < 10; i++)
        wait_all_sent(no[i]);

    json_t *calls = platform_calls();
    size_t i;
    json_t *c;
    long hung = 0;
    bool by_second = false, by_first = false;
    json_array_foreach(calls, i, c)
    {
        if ((long)i < calls_before)
            continue;
        if (json_is_true(json_object_get(c, "overlap")))
            fail_msg("callback %s was sent while a send of it was still open",
                     flow_str(json_object_get(c, "body"), "callback_id"));
        if (json_integer_value(json_object_get(c, "answer")) == 0)
            hung++;
        const char *ua = flow_str(c, "user_agent");
        by_second |= strstr(ua, "(second)") != NULL;
        by_first |= strstr(ua, "(cardd)") != NULL;
    }
    json_decref(calls);
    assert_true(hung >= 4); /* the platform did hang them */
    assert_true(by_first && by_second);
    for (int k = 0; k < 10; k++)
        assert_int_equal(verify_request(no[k], NULL), 5);
    assert_int_equal(harness_stop(&second, false), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_whole_chain, platform_fine),
        cmocka_unit_test_setup(test_retry_after, platform_fine),
        cmocka_unit_test_setup(test_platform_down, platform_fine),
        cmocka_unit_test_setup(test_refused_request, platform_fine),
        cmocka_unit_test_setup(test_two_instances_hanging_platform, platform_fine),
    };
    return cmocka_run_group_tests_name("callbacks", tests, group_setup, group_teardown);
}
