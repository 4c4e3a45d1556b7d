/* it_faults.c — faults of the devices and of the service's own restarts,
 * through the real stacks: a line of two stations (real pcscd + vpcd +
 * emulated cards, real libusb + umockdev + emulated printers) run by one
 * instance of the service.
 *
 * - After a clean restart the stations are `idle` as soon as their devices
 *   answer, not `offline` until their first job.
 * - A printer that hangs (answers nothing) stalls only its own station: the
 *   other station of the host produces from the first seconds after a
 *   restart, and the hung station comes back by itself once the printer
 *   answers again. */
#include "harness.h"
#include "line_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define STATIONS 2
#define CARDS    200

static struct service svc;
static struct line_env line;
static char intake[128], operator_[128];

static int start(void)
{
    line_env_export(&line, 0);
    int rc = harness_start(&svc);
    line_env_unexport();
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    char config[2048];
    if (line_env_start(&line, STATIONS, 100) != 0)
        return -1;
    line_env_config(&line, 0, "fa", config, sizeof(config));
    if (harness_setup(&svc, config) != 0 || line_env_keys(&line, svc.dir, "B-1") != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-1", operator_, sizeof(operator_)))
        return -1;
    if (start() != 0)
        return -1;
    struct reply r;
    char body[200];
    snprintf(body, sizeof(body),
             "{\"batch_no\":\"B-1\",\"first_serial\":\"C00000001\",\"count\":%d}", CARDS);
    if (http_post_json(&svc, operator_, "/v1/stock/batches", body, &r) != 0 || r.status != 201)
        return -1;
    reply_free(&r);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = harness_stop(&svc, false);
    line_env_stop(&line);
    return rc;
}

static long sql_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long sql_long(const char *fmt, ...)
{
    char sql[1024], out[64] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (harness_sql(out, sizeof(out), sql) != 0)
        return -1;
    return atol(out);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The state GET /v1/stations shows for station id ("" when absent). */
static void station_state(const char *id, char *state, size_t len, char *reason, size_t rlen)
{
    struct reply r;
    state[0] = '\0';
    if (reason)
        reason[0] = '\0';
    assert_int_equal(http_get(&svc, operator_, "/v1/stations", &r), 0);
    assert_int_equal(r.status, 200);
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(r.json, "stations"), i, st)
    {
        if (strcmp(json_string_value(json_object_get(st, "id")), id) != 0)
            continue;
        snprintf(state, len, "%s", json_string_value(json_object_get(st, "state")));
        const char *why = json_string_value(json_object_get(st, "reason"));
        if (reason)
            snprintf(reason, rlen, "%s", why ? why : "");
    }
    reply_free(&r);
}

/* Waits until station id shows state; true when it did within seconds. */
static bool wait_state(const char *id, const char *want, double seconds)
{
    char state[32];
    double until = now_s() + seconds;
    do {
        station_state(id, state, sizeof(state), NULL, 0);
        if (strcmp(state, want) == 0)
            return true;
        usleep(100000);
    } while (now_s() < until);
    return false;
}

static void submit(int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        char no[40], nid[11];
        struct reply r;
        harness_fresh_no(prefix, no, sizeof(no));
        harness_fresh_nid(nid);
        char *req = sample_request(no, nid, "national_id", "lost");
        assert_int_equal(http_post_json(&svc, intake, "/v1/requests", req, &r), 0);
        assert_int_equal(r.status, 201);
        reply_free(&r);
        free(req);
    }
}

static long produced(void)
{
    return sql_long("SELECT count(*) FROM requests WHERE status = 'produced'");
}

static bool wait_produced(long want, double seconds)
{
    double until = now_s() + seconds;
    while (produced() < want && now_s() < until)
        usleep(100000);
    return produced() >= want;
}

static void test_restart_shows_idle(void **state)
{
    (void)state;
    assert_true(wait_state("fa1", "idle", 15));
    assert_true(wait_state("fa2", "idle", 15));
    long before = produced();
    submit(4, "RQ-FI");
    assert_true(wait_produced(before + 4, 60));

    /* A clean stop says so; the next start says idle as soon as the
     * devices answer, with nothing queued. */
    assert_int_equal(harness_stop(&svc, false), 0);
    char st[32], why[128];
    assert_int_equal(sql_long("SELECT count(*) FROM stations WHERE state = 'offline'"), STATIONS);
    assert_int_equal(start(), 0);
    assert_true(wait_state("fa1", "idle", 15));
    assert_true(wait_state("fa2", "idle", 15));
    station_state("fa1", st, sizeof(st), why, sizeof(why));
    assert_string_equal(why, "");
}

static void test_hung_printer_stalls_only_its_station(void **state)
{
    (void)state;
    char reply[200];
    assert_int_equal(harness_stop(&svc, false), 0);
    /* fa1's printer takes commands and answers none. */
    assert_int_equal(line_env_printer(&line, 0, "fault hang", reply, sizeof(reply)), 0);
    long before = produced();
    long max_attempt = sql_long("SELECT coalesce(max(id), 0) FROM production_attempts");
    double t0 = now_s();
    assert_int_equal(start(), 0);
    submit(6, "RQ-FH");

    /* fa2 produces from the first seconds, while fa1 cannot open its printer. */
    assert_true(wait_produced(before + 1, 12));
    printf("first card after the restart in %.1f s\n", now_s() - t0);
    assert_true(wait_produced(before + 6, 60));
    assert_int_equal(sql_long("SELECT count(*) FROM production_attempts WHERE id > %ld"
                              " AND station_id <> 'fa2'",
                              max_attempt),
                     0);
    char st[32], why[128];
    station_state("fa1", st, sizeof(st), why, sizeof(why));
    assert_string_not_equal(st, "idle");
    assert_string_not_equal(st, "busy");
    printf("fa1 while its printer hangs: %s (%s)\n", st, why);
    /* No blank was lost to the hung printer. */
    assert_int_equal(sql_long("SELECT count(*) FROM production_attempts WHERE id > %ld"
                              " AND outcome <> 'produced'",
                              max_attempt),
                     0);

    /* The printer answers again: fa1 comes back by itself and produces. */
    assert_int_equal(line_env_printer(&line, 0, "clear", reply, sizeof(reply)), 0);
    assert_true(wait_state("fa1", "idle", 20));
    before = produced();
    assert_int_equal(harness_sql(NULL, 0, "UPDATE stations SET paused = true WHERE id = 'fa2'"), 0);
    submit(2, "RQ-FC");
    assert_true(wait_produced(before + 2, 60));
    assert_int_equal(harness_sql(NULL, 0, "UPDATE stations SET paused = false WHERE id = 'fa2'"),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_shows_idle),
        cmocka_unit_test(test_hung_printer_stalls_only_its_station),
    };
    return cmocka_run_group_tests_name("faults", tests, group_setup, group_teardown);
}
