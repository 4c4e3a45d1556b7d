/* test_metrics.c — request counters, latency histograms and database gauges
 * in the Prometheus text format. The database is replaced at link time
 * (test_metrics.wrap) by a table of canned results. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"
#include "metrics.h"

/* ---- a database of canned gauge results ---- */

struct db_res {
    size_t rows;
    const char *cells[4][2];
};

static struct {
    const char *sql_part; /* the gauge query this answers */
    int rc;
    struct db_res res;
} canned[8];
static size_t ncanned;
static int live_results;

int __wrap_db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
                   const char *const *params);
size_t __wrap_db_rows(const struct db_res *res);
const char *__wrap_db_get(const struct db_res *res, size_t row, int col);
void __wrap_db_res_free(struct db_res *res);

int __wrap_db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
                   const char *const *params)
{
    (void)db;
    (void)params;
    assert_int_equal(nparams, 0);
    *res = NULL;
    for (size_t i = 0; i < ncanned; i++) {
        if (!strstr(sql, canned[i].sql_part))
            continue;
        if (canned[i].rc)
            return canned[i].rc;
        *res = malloc(sizeof(**res));
        assert_non_null(*res);
        **res = canned[i].res;
        live_results++;
        return 0;
    }
    return DB_EOTHER;
}

size_t __wrap_db_rows(const struct db_res *res)
{
    return res ? res->rows : 0;
}

const char *__wrap_db_get(const struct db_res *res, size_t row, int col)
{
    if (!res || row >= res->rows || col < 0 || col > 1)
        return NULL;
    return res->cells[row][col];
}

void __wrap_db_res_free(struct db_res *res)
{
    if (res)
        live_results--;
    free(res);
}

/* ---- fixtures ---- */

static int setup(void **state)
{
    struct metrics *m = NULL;
    if (metrics_new(&m) != 0)
        return -1;
    ncanned = 0;
    live_results = 0;
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    metrics_free(*state);
    return 0;
}

/* The value of the sample line that starts with prefix, or -1. */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static const char *const TRACK = "/v1/track";
static const char *const REQUESTS = "/v1/requests";

static void empty_render_has_the_headers(void **state)
{
    char *text = metrics_render(*state, NULL);
    assert_non_null(text);
    assert_string_equal(text,
                        "# HELP cardd_http_requests_total HTTP requests by route and status.\n"
                        "# TYPE cardd_http_requests_total counter\n"
                        "# HELP cardd_http_request_duration_seconds Time to answer, by route.\n"
                        "# TYPE cardd_http_request_duration_seconds histogram\n");
    free(text);
}

static void requests_are_counted_by_route_and_status(void **state)
{
    struct metrics *m = *state;
    metrics_observe_request(m, "POST", TRACK, 200, 0.002);
    metrics_observe_request(m, "POST", TRACK, 200, 0.002);
    metrics_observe_request(m, "POST", TRACK, 404, 0.002);
    metrics_observe_request(m, "POST", REQUESTS, 201, 0.002);
    metrics_observe_request(m, "GET", REQUESTS, 200, 0.002);
    char *text = metrics_render(m, NULL);
    assert_non_null(text);
    assert_true(
        sample(text,
               "cardd_http_requests_total{method=\"POST\",route=\"/v1/track\",status=\"200\"}") ==
        2);
    assert_true(
        sample(text,
               "cardd_http_requests_total{method=\"POST\",route=\"/v1/track\",status=\"404\"}") ==
        1);
    assert_true(
        sample(
            text,
            "cardd_http_requests_total{method=\"POST\",route=\"/v1/requests\",status=\"201\"}") ==
        1);
    assert_true(
        sample(text,
               "cardd_http_requests_total{method=\"GET\",route=\"/v1/requests\",status=\"200\"}") ==
        1);
    assert_true(
        sample(text,
               "cardd_http_requests_total{method=\"GET\",route=\"/v1/track\",status=\"200\"}") ==
        -1);
    free(text);
}

/* Latencies 0.0005, 0.001 (on a bound: counts in it), 0.003, 0.3 and 7 s. */
static void latency_histogram_is_cumulative(void **state)
{
    struct metrics *m = *state;
    static const double lat[] = { 0.0005, 0.001, 0.003, 0.3, 7 };
    for (size_t i = 0; i < 5; i++)
        metrics_observe_request(m, "POST", TRACK, 200, lat[i]);
    char *text = metrics_render(m, NULL);
    assert_non_null(text);
#define B(le)                                                                                     \
    sample(                                                                                       \
        text,                                                                                     \
        "cardd_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/track\",le=\"" le \
        "\"}")
    assert_true(B("0.001") == 2);
    assert_true(B("0.0025") == 2);
    assert_true(B("0.005") == 3);
    assert_true(B("0.01") == 3);
    assert_true(B("0.25") == 3);
    assert_true(B("0.5") == 4);
    assert_true(B("1") == 4);
    assert_true(B("5") == 4);
    assert_true(B("+Inf") == 5);
#undef B
    assert_true(
        sample(text,
               "cardd_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/track\"}") ==
        5);
    assert_non_null(strstr(
        text,
        "cardd_http_request_duration_seconds_sum{method=\"POST\",route=\"/v1/track\"} 7.304500\n"));
    free(text);
}

/* Far more series than the table holds: no crash, and what is kept adds up. */
static void series_table_overflow(void **state)
{
    struct metrics *m = *state;
    for (int status = 100; status < 700; status++)
        metrics_observe_request(m, "GET", TRACK, status, 0.01);
    char *text = metrics_render(m, NULL);
    assert_non_null(text);
    size_t lines = 0;
    for (const char *p = text; (p = strstr(p, "cardd_http_requests_total{")); p++)
        lines++;
    assert_int_equal(lines, 256);
    assert_true(
        sample(text,
               "cardd_http_requests_total{method=\"GET\",route=\"/v1/track\",status=\"100\"}") ==
        1);
    assert_true(
        sample(text,
               "cardd_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/track\"}") ==
        600);
    free(text);
}

static void observe_is_null_safe(void **state)
{
    (void)state;
    metrics_observe_request(NULL, "GET", TRACK, 200, 0.1);
    metrics_free(NULL);
}

/* Every line is a comment or "name{labels} value" / "name value". */
static void every_line_is_well_formed(void **state)
{
    struct metrics *m = *state;
    metrics_observe_request(m, "GET", TRACK, 200, 0.02);
    metrics_observe_request(m, "POST", REQUESTS, 422, 0.2);
    char *text = metrics_render(m, NULL);
    assert_non_null(text);
    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    char *copy = strdup(text);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            assert_true(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0);
            continue;
        }
        assert_true(strncmp(line, "cardd_", 6) == 0);
        char *space = strrchr(line, ' ');
        assert_non_null(space);
        char *end = NULL;
        strtod(space + 1, &end);
        assert_true(end > space + 1 && *end == '\0');
    }
    free(copy);
    free(text);
}

static void gauges_come_from_the_database(void **state)
{
    struct metrics *m = *state;
    canned[ncanned++] = (typeof(canned[0])){ "hold_reason IS NULL AND production_station IS NULL",
                                             0,
                                             { 1, { { NULL, "3" } } } };
    canned[ncanned++] = (typeof(canned[0])){ "FROM requests GROUP BY status",
                                             0,
                                             { 2, { { "queued", "5" }, { "delivered", "2" } } } };
    canned[ncanned++] =
        (typeof(canned[0])){ "FROM stations", 0, { 2, { { "idle", "1" }, { "error", "1" } } } };
    canned[ncanned++] = (typeof(canned[0])){ "FROM cards", DB_EDOWN, { 0, { { NULL, NULL } } } };
    canned[ncanned++] = (typeof(canned[0])){ "FROM notifications", 0, { 1, { { NULL, "0" } } } };
    char *text = metrics_render(m, (struct db *)canned);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE cardd_queue_depth gauge\ncardd_queue_depth 3\n"));
    assert_non_null(strstr(text, "cardd_requests{status=\"queued\"} 5\n"
                                 "cardd_requests{status=\"delivered\"} 2\n"));
    assert_non_null(strstr(text, "cardd_stations{state=\"error\"} 1\n"));
    assert_non_null(strstr(text, "cardd_notification_backlog 0\n"));
    /* a gauge whose query failed is left out, not shown as zero */
    assert_null(strstr(text, "cardd_cards"));
    /* courier events had no canned answer (an error): left out too */
    assert_null(strstr(text, "cardd_courier_events_total"));
    assert_int_equal(live_results, 0); /* every result freed */
    free(text);
    /* A scrape right after reads the kept gauges: the database is not asked
     * again (its answers are gone, yet the gauges stay). */
    assert_false(metrics_gauges_stale(m));
    ncanned = 0;
    text = metrics_render(m, (struct db *)canned);
    assert_non_null(strstr(text, "cardd_queue_depth 3\n"));
    assert_non_null(strstr(text, "cardd_requests{status=\"queued\"} 5\n"));
    free(text);
    text = metrics_render(m, NULL);
    assert_non_null(strstr(text, "cardd_notification_backlog 0\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(empty_render_has_the_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(requests_are_counted_by_route_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(latency_histogram_is_cumulative, setup, teardown),
        cmocka_unit_test_setup_teardown(series_table_overflow, setup, teardown),
        cmocka_unit_test(observe_is_null_safe),
        cmocka_unit_test_setup_teardown(every_line_is_well_formed, setup, teardown),
        cmocka_unit_test_setup_teardown(gauges_come_from_the_database, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
