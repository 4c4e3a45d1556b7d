/* it_notify.c — the notification worker against the SMS gateway emulator:
 * an outage delays notifications but loses none, each arrives once (as the
 * gateway's de-duplication sees it) and in order per request. */
#include "flow.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define REQUESTS 20

static struct service svc;
static char intake[128], operator_[128], courier[128], secret[128];
static pid_t gateway_pid;
static int gateway_port;
static char gateway_dir[64], gateway_out[400], gateway_down[400], gateway_portfile[400];
static char gateway_slow[400], gateway_hang[400], gateway_log[400];

static int gateway_start(const char *dir)
{
    char bin[512];
    snprintf(gateway_dir, sizeof(gateway_dir), "%s", dir);
    snprintf(gateway_portfile, sizeof(gateway_portfile), "%s/sms.port", dir);
    snprintf(gateway_out, sizeof(gateway_out), "%s/sms.jsonl", dir);
    snprintf(gateway_down, sizeof(gateway_down), "%s/sms.down", dir);
    snprintf(gateway_slow, sizeof(gateway_slow), "%s/sms.slow", dir);
    snprintf(gateway_hang, sizeof(gateway_hang), "%s/sms.hang", dir);
    snprintf(gateway_log, sizeof(gateway_log), "%s/sms.log", dir);
    harness_bin("emu-smsgw", bin, sizeof(bin));
    gateway_pid = fork();
    if (gateway_pid < 0)
        return -1;
    if (gateway_pid == 0) {
        execl(bin, "emu-smsgw", "--out", gateway_out, "--port-file", gateway_portfile,
              "--fail-file", gateway_down, "--slow-file", gateway_slow, "--delay-ms", "7000",
              "--hang-file", gateway_hang, "--log", gateway_log, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(gateway_portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &gateway_port);
            fclose(f);
            if (ok == 1 && gateway_port > 0)
                return 0;
        }
        usleep(10000);
    }
    return -1;
}

static void gateway_outage(bool down)
{
    if (down) {
        FILE *f = fopen(gateway_down, "w");
        if (f)
            fclose(f);
    } else {
        unlink(gateway_down);
    }
}

static int group_setup(void **state)
{
    (void)state;
    char dir[] = "/tmp/cardd-smsgw-XXXXXX", path[512], out[256], extra[256];
    if (!mkdtemp(dir) || gateway_start(dir) != 0)
        return -1;
    gateway_outage(true); /* down from the start */
    snprintf(extra, sizeof(extra),
             "sms_gateway_url = http://127.0.0.1:%d/sms\n"
             "notify_max_backoff_s = 2\nnotify_batch = 25\n",
             gateway_port);
    if (harness_setup(&svc, extra) != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "cities", "import",
                    harness_src("../shared/reference/cities.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher-approvals", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-noura", operator_, sizeof(operator_)) ||
        flow_courier_add(&svc, "aramex", courier, sizeof(courier), secret, sizeof(secret)))
        return -1;
    return harness_start(&svc);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = harness_stop(&svc, false);
    if (gateway_pid > 0) {
        kill(gateway_pid, SIGTERM);
        waitpid(gateway_pid, NULL, 0);
    }
    unlink(gateway_out);
    unlink(gateway_down);
    unlink(gateway_slow);
    unlink(gateway_hang);
    unlink(gateway_log);
    unlink(gateway_portfile);
    rmdir(gateway_dir);
    return rc;
}

static void event(struct service *via, const char *id, const char *tracking, const char *code,
                  long offset)
{
    char at[21];
    flow_time(offset, at);
    char *body = flow_event(id, tracking, code, at, NULL);
    struct reply r;
    assert_int_equal(flow_signed(via, "POST", "/v1/courier/events", courier, secret, 0, body, &r),
                     0);
    free(body);
    if (r.status != 200 || strcmp(flow_str(r.json, "result"), "applied") != 0)
        fail_msg("event %s answered %ld: %s", id, r.status, r.body ? r.body : "");
    reply_free(&r);
}

/* A request taken from intake to delivered: five status changes, so five
 * notifications. Calls alternate between the instances given. */
static void five_changes(struct service *a, struct service *b, int n)
{
    char no[40], nine[16], nid[11], tracking[14], id[40];
    snprintf(nine, sizeof(nine), "1%08d", 700 + n);
    make_national_id(nine, nid);
    snprintf(no, sizeof(no), "RQ-NT-%04d", n);
    assert_int_equal(flow_produced(a, intake, sample_json(no, nid, "national_id", "lost")), 0);
    assert_int_equal(flow_dispatch(b, operator_, "aramex", no, tracking), 0);
    /* Set-up: handed over an hour ago, so the scans below come after it. */
    flow_sql(NULL, 0,
             "UPDATE parcels SET created_at = created_at - interval '1 hour'"
             " WHERE tracking_no = '%s'",
             tracking);
    snprintf(id, sizeof(id), "nt-%d-1", n);
    event(a, id, tracking, "in_transit", -1800);
    snprintf(id, sizeof(id), "nt-%d-2", n);
    event(b, id, tracking, "out_for_delivery", -1200);
    snprintf(id, sizeof(id), "nt-%d-3", n);
    event(a, id, tracking, "delivered", -600);
}

static void wait_all_delivered(void)
{
    char out[64];
    for (int i = 0; i < 600; i++) {
        flow_sql(out, sizeof(out), "SELECT count(*) FROM notifications WHERE delivered_at IS NULL");
        if (strcmp(out, "0") == 0)
            break;
        usleep(100000);
    }
    assert_string_equal(out, "0");
}

/* What the gateway kept: every notification of the database once, in the
 * database's order within each request. */
static void verify_gateway(int expected)
{
    FILE *f = fopen(gateway_out, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0;
    json_t *seen = json_object(), *last_id = json_object();
    while (fgets(line, sizeof(line), f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        const char *id = flow_str(j, "id"), *no = flow_str(j, "request_no");
        assert_null(json_object_get(seen, id));
        json_object_set_new(seen, id, json_true());
        assert_string_equal(flow_str(j, "phone"), "+966501234567");
        assert_true(strlen(flow_str(json_object_get(j, "text"), "ar")) > 0);
        assert_non_null(strstr(flow_str(json_object_get(j, "text"), "en"), no));
        char row[32];
        flow_sql(row, sizeof(row),
                 "SELECT id FROM notifications WHERE notification_id = '%s'"
                 " AND status = '%s'",
                 id, flow_str(j, "status"));
        assert_true(row[0] != '\0');
        json_int_t n = strtoll(row, NULL, 10);
        json_t *prev = json_object_get(last_id, no);
        if (prev && json_integer_value(prev) >= n)
            fail_msg("%s: notification %s arrived out of order", no, id);
        json_object_set_new(last_id, no, json_integer(n));
        json_decref(j);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, expected);
    char out[32];
    flow_sql(out, sizeof(out), "SELECT count(*) FROM notifications");
    assert_int_equal(atoi(out), expected);
    json_decref(seen);
    json_decref(last_id);
}

/* 100 status changes while the gateway is down, then it comes back. */
static void test_outage_loses_nothing(void **state)
{
    (void)state;
    time_t started = time(NULL);
    for (int i = 0; i < REQUESTS; i++)
        five_changes(&svc, &svc, i);
    char out[64];
    flow_sql(out, sizeof(out), "SELECT count(*) FROM notifications");
    assert_string_equal(out, "100");
    /* The handlers were never held up by the gateway. */
    assert_true(time(NULL) - started < 60);

    /* The worker tried, and nothing reached the gateway. */
    for (int i = 0; i < 100; i++) {
        flow_sql(out, sizeof(out),
                 "SELECT count(*) FROM notifications WHERE last_error IS NOT NULL");
        if (atoi(out) > 0)
            break;
        usleep(100000);
    }
    assert_true(atoi(out) > 0);
    flow_sql(out, sizeof(out), "SELECT count(*) FROM notifications WHERE delivered_at IS NOT NULL");
    assert_string_equal(out, "0");
    FILE *f = fopen(gateway_out, "r");
    if (f) {
        assert_int_equal(fgetc(f), EOF);
        fclose(f);
    }

    gateway_outage(false);
    wait_all_delivered();
    verify_gateway(100);
}

/* Two instances share the database: their workers split the rows between
 * them and still deliver each once, in order per request. */
static void test_two_instances(void **state)
{
    (void)state;
    struct service second = svc;
    second.pid = 0;
    assert_int_equal(harness_start(&second), 0);
    gateway_outage(true);
    for (int i = REQUESTS; i < REQUESTS + 10; i++)
        five_changes(&svc, &second, i);
    usleep(500000);
    gateway_outage(false);
    wait_all_delivered();
    verify_gateway(150);
    assert_int_equal(harness_stop(&second, false), 0);
}

/* A gateway slower than the worker's time-out: the calls to the service
 * stay fast, the notifications wait and then arrive. */
static void test_slow_gateway(void **state)
{
    (void)state;
    FILE *f = fopen(gateway_slow, "w");
    assert_non_null(f);
    fclose(f);
    for (int i = REQUESTS + 10; i < REQUESTS + 13; i++)
        five_changes(&svc, &svc, i);
    /* Wait until the worker has given up on a send: it timed out. */
    char out[64] = "";
    for (int i = 0; i < 150; i++) {
        flow_sql(out, sizeof(out),
                 "SELECT count(*) FROM notifications WHERE delivered_at IS NULL"
                 " AND last_error ILIKE '%%time%%'");
        if (atoi(out) > 0)
            break;
        usleep(100000);
    }
    assert_true(atoi(out) > 0);
    /* The worker is (again) waiting on the gateway; the service answers at once. */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    five_changes(&svc, &svc, REQUESTS + 13);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true(b.tv_sec - a.tv_sec < 3);
    unlink(gateway_slow);
    wait_all_delivered();
    verify_gateway(170);
}

/* Two instances and a gateway that accepts connections and never answers:
 * each notification is sent by one instance at a time (a send holds its
 * lease until it times out), and every one arrives, once, when the gateway
 * answers again. The gateway logs every request it receives, repeats
 * included. */
static void test_hanging_gateway_two_instances(void **state)
{
    (void)state;
    struct service second = svc;
    second.pid = 0;
    assert_int_equal(harness_start(&second), 0);
    unlink(gateway_log);
    FILE *f = fopen(gateway_hang, "w");
    assert_non_null(f);
    fclose(f);
    for (int i = REQUESTS + 14; i < REQUESTS + 18; i++)
        five_changes(&svc, &second, i);
    sleep(20); /* several sends time out on both instances */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long hang_end = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    unlink(gateway_hang);
    wait_all_delivered();
    verify_gateway(190);
    assert_int_equal(harness_stop(&second, false), 0);

    /* No id was received again while an earlier send of it was in flight:
     * while the gateway hung, a send ended only at its time-out, so two
     * receipts of one id are at least that far apart. */
    f = fopen(gateway_log, "r");
    assert_non_null(f);
    json_t *last = json_object();
    long long ms;
    char id[100];
    int receipts = 0, repeats = 0;
    long long closest = -1;
    while (fscanf(f, "%lld %99s", &ms, id) == 2) {
        if (ms >= hang_end)
            continue; /* answered now: a retry may follow at once */
        receipts++;
        json_t *prev = json_object_get(last, id);
        if (prev) {
            long long gap = ms - json_integer_value(prev);
            repeats++;
            if (closest < 0 || gap < closest)
                closest = gap;
            if (gap < 4900)
                fail_msg("notification %s received twice %lld ms apart", id, gap);
        }
        json_object_set_new(last, id, json_integer(ms));
    }
    fclose(f);
    json_decref(last);
    printf("%d receipts, %d repeats after a time-out (closest %lld ms apart)\n", receipts, repeats,
           closest);
    assert_true(receipts >= 4);
}

/* The emulator keeps one line per id, as a gateway that de-duplicates. */
static void test_gateway_deduplicates(void **state)
{
    (void)state;
    struct service gw = { 0 };
    snprintf(gw.base, sizeof(gw.base), "http://127.0.0.1:%d", gateway_port);
    const char *body =
        "{\"id\":\"00000000-0000-4000-8000-00000000abcd\",\"phone\":\"+966500000000\","
        "\"text\":{\"ar\":\"x\",\"en\":\"x\"},\"request_no\":\"RQ-GW\",\"status\":\"queued\"}";
    struct reply r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(http_post_json(&gw, NULL, "/sms", body, &r), 0);
        assert_int_equal(r.status, 200);
        reply_free(&r);
    }
    char cmd[600], out[64];
    snprintf(cmd, sizeof(cmd), "grep -c 00000000abcd %s", gateway_out);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof(out), p));
    pclose(p);
    assert_int_equal(atoi(out), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outage_loses_nothing),
        cmocka_unit_test(test_two_instances),
        cmocka_unit_test(test_slow_gateway),
        cmocka_unit_test(test_hanging_gateway_two_instances),
        cmocka_unit_test(test_gateway_deduplicates),
    };
    return cmocka_run_group_tests_name("notify", tests, group_setup, group_teardown);
}
