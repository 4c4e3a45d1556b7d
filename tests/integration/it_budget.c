/* it_budget.c — connection budgets: a flood of anonymous tracking from one
 * address, while intake submits and two emulated stations produce. Every
 * intake call is answered 201 and the stations keep producing; the flood is
 * held to its address's rate (public_rate: 429 with Retry-After and problem
 * details, never a 5xx) and connections (per_ip_connections served,
 * per_ip_held_connections answered 429 and closed, the rest closed at
 * once); another
 * address's look-up is answered meanwhile. Intake's latency with and
 * without the flood is printed, not asserted: `make bench` (bench_flood)
 * measures it as a ratio. */
#include "flood.h"
#include "harness.h"
#include "line_env.h"

#include <curl/curl.h>
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

/* More than one address may hold connections and the held ones together. */
#define FLOODERS   40
#define FLOOD_ADDR "127.0.0.41"
#define OTHER_ADDR "127.0.0.42"
#define INTAKES    150
#define RATE       10 /* the defaults of public_rate and public_burst */
#define BURST      30

static struct service svc;
static struct line_env line;
static char intake[128], operator_[128];

static int group_setup(void **state)
{
    (void)state;
    char config[4096];
    if (line_env_start(&line, 2, 0) != 0)
        return -1;
    line_env_config(&line, 0, "st", config, sizeof(config));
    if (harness_setup(&svc, config) != 0 || line_env_keys(&line, svc.dir, "B-BUD") != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-1", operator_, sizeof(operator_)))
        return -1;
    line_env_export(&line, 0);
    int rc = harness_start(&svc);
    line_env_unexport();
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = harness_stop(&svc, false);
    line_env_stop(&line);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One look-up from address: its status. */
static long track_from(const char *address, const char *body)
{
    struct reply r;
    harness_source_ip = address;
    int rc = http_post_json(&svc, NULL, "/v1/track", body, &r);
    harness_source_ip = NULL;
    assert_int_equal(rc, 0);
    long status = r.status;
    reply_free(&r);
    return status;
}

static void test_anonymous_flood_leaves_intake_and_stations(void **state)
{
    (void)state;
    struct reply r;
    assert_int_equal(
        http_post_json(&svc, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"B-BUD\",\"first_serial\":\"A00000001\",\"count\":400}", &r),
        0);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    /* The request the flood looks up, and one another address looks up. */
    char flood_body[160], other_body[160];
    assert_int_equal(flood_target(&svc, intake, flood_body, sizeof(flood_body)), 0);
    assert_int_equal(flood_target(&svc, intake, other_body, sizeof(other_body)), 0);

    /* The same intake without a flood, on this machine now. */
    double base[INTAKES / 3];
    assert_int_equal(intake_run(&svc, intake, base, INTAKES / 3, 20), 0);

    struct flood *f = NULL;
    double t0 = now_s();
    assert_int_equal(flood_start(&f, &svc, FLOOD_ADDR, flood_body, FLOODERS), 0);
    usleep(500000); /* the flood is under way */
    long produced_before = cards_produced();

    /* Intake, from its own address, while the flood goes on: every call 201. */
    double lat[INTAKES];
    int bad = intake_run(&svc, intake, lat, INTAKES, 20);
    long produced_during = cards_produced() - produced_before;
    /* Another address is answered meanwhile. */
    long other_status = track_from(OTHER_ADDR, other_body);
    struct flood_stats st;
    flood_stop(f, &st);
    double elapsed = now_s() - t0;

    printf("# intake without a flood: p50 %.1f ms, p99 %.1f ms\n",
           percentile(base, INTAKES / 3, 0.5) * 1000, percentile(base, INTAKES / 3, 0.99) * 1000);
    printf("# flood from one address for %.1f s: %ld answered, %ld limited (429), %ld past its "
           "connections (429, closed), %ld busy (503), %ld other, %ld connections closed at once\n",
           elapsed, st.ok, st.limited, st.held, st.busy, st.other, st.failed);
    printf("# intake under the flood: p50 %.1f ms, p99 %.1f ms; cards produced meanwhile: %ld\n",
           percentile(lat, INTAKES, 0.5) * 1000, percentile(lat, INTAKES, 0.99) * 1000,
           produced_during);
    assert_int_equal(bad, 0);
    assert_true(produced_during > 0);
    assert_true(st.ok > 0); /* the flood was served, within its share */
    /* Past its rate: 429 with Retry-After and problem details, nothing else. */
    assert_true(st.limited > 0);
    assert_int_equal(st.other, 0);
    /* Held to its address's connections: 16 served, 16 more answered 429
     * and closed, any further one closed at once. */
    assert_true(st.held > 0);
    assert_true(st.failed > 0);
    /* The rate holds: a burst, then RATE a second (a second's slack). */
    assert_true(st.ok <= BURST + (long)((elapsed + 1.0) * RATE));
    assert_int_equal(other_status, 200);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anonymous_flood_leaves_intake_and_stations),
    };
    int rc = cmocka_run_group_tests_name("budget", tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
