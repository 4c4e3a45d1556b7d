/* it_outage.c — the database goes away under load, through the real stacks.
 *
 * Load: intake, tracking, courier events and an operator's station list,
 * from several threads, while two stations (real pcscd/vpcd, real
 * libusb/umockdev, emulated cards and printers) produce the requests.
 *
 * - PostgreSQL stopped for 10 s and started again, then every connection
 *   of the service terminated (pg_terminate_backend): no answer is 500, the
 *   only failures are 503 with Retry-After, /healthz stays fast and /readyz
 *   says 503 while the database is away; every request answered 201 is in
 *   the database afterwards; production resumes by itself and every
 *   request is made; the stock adds up; from the stop until the service is
 *   ready again the log has at most 50 lines besides the one access line
 *   per call.
 * - A lock held on `requests`: calls that need it answer 503 within the
 *   statement time-out + 1 s, /healthz in under 100 ms, and SIGTERM stops
 *   the service within 10 s. */
#include "flow.h"
#include "harness.h"
#include "line_env.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define STATIONS      2
#define CARDS         600
#define PARCELS       4
#define STATEMENT_MS  3000
#define MAX_ACCEPTED  1000
#define OUTAGE_S      10
#define MAX_LOG_LINES 50

static struct service svc;
static struct line_env line;
static char intake[128], operator_[128], courier[128], secret[128];
static char parcel_no[PARCELS][40], parcel_nid[PARCELS][11], parcel_tracking[PARCELS][14];

/* What the load saw. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static long status_count[600];
static long bad_503; /* 503 without Retry-After or problem details */
static char accepted[MAX_ACCEPTED][40];
static int n_accepted;
static atomic_int load_stop;

static int start(void)
{
    line_env_export(&line, 0);
    int rc = harness_start(&svc);
    line_env_unexport();
    return rc;
}

static int pg_cluster(const char *action)
{
    char cmd[200];
    const char *v = getenv("PGVERSION");
    snprintf(cmd, sizeof(cmd), "pg_ctlcluster %s regress %s -m fast >/dev/null 2>&1", v ? v : "15",
             action);
    return system(cmd);
}

static void note(const char *what, const struct reply *r)
{
    pthread_mutex_lock(&seen_lock);
    if (r->status >= 0 && r->status < 600)
        status_count[r->status]++;
    if (r->status == 503 && (!r->retry_after[0] || !strstr(r->content_type, "problem+json")))
        bad_503++;
    if (r->status >= 500 && r->status != 503)
        fprintf(stderr, "%s answered %ld: %.200s\n", what, r->status, r->body ? r->body : "");
    pthread_mutex_unlock(&seen_lock);
}

static void pace(void)
{
    usleep(150000);
}

static void *intake_load(void *arg)
{
    (void)arg;
    while (!load_stop) {
        char no[40], nid[11];
        struct reply r;
        harness_fresh_no("RQ-OU", no, sizeof(no));
        harness_fresh_nid(nid);
        char *req = sample_request(no, nid, "national_id", "lost");
        if (http_post_json(&svc, intake, "/v1/requests", req, &r) == 0) {
            note("intake", &r);
            pthread_mutex_lock(&seen_lock);
            if ((r.status == 201 || r.status == 200) && n_accepted < MAX_ACCEPTED)
                snprintf(accepted[n_accepted++], 40, "%s", no);
            pthread_mutex_unlock(&seen_lock);
            reply_free(&r);
        }
        free(req);
        pace();
    }
    return NULL;
}

static void *reader_load(void *arg)
{
    (void)arg;
    for (int i = 0; !load_stop; i++) {
        struct reply r;
        char tb[256];
        int k = i % PARCELS;
        snprintf(tb, sizeof(tb), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", parcel_no[k],
                 parcel_nid[k]);
        if (http_post_json(&svc, NULL, "/v1/track", tb, &r) == 0) {
            note("track", &r);
            reply_free(&r);
        }
        if (http_get(&svc, operator_, "/v1/stations", &r) == 0) {
            note("stations", &r);
            reply_free(&r);
        }
        pace();
    }
    return NULL;
}

static void *courier_load(void *arg)
{
    (void)arg;
    for (int i = 0; !load_stop; i++) {
        char id[40], at[21];
        struct reply r;
        snprintf(id, sizeof(id), "ou-ev-%d", i);
        flow_time(-60, at);
        char *body = flow_event(id, parcel_tracking[i % PARCELS], "in_transit", at, NULL);
        if (flow_signed(&svc, "POST", "/v1/courier/events", courier, secret, 0, body, &r) == 0) {
            note("courier", &r);
            reply_free(&r);
        }
        free(body);
        pace();
    }
    return NULL;
}

static pthread_t load_threads[3];

static void load_start(void)
{
    load_stop = 0;
    assert_int_equal(pthread_create(&load_threads[0], NULL, intake_load, NULL), 0);
    assert_int_equal(pthread_create(&load_threads[1], NULL, reader_load, NULL), 0);
    assert_int_equal(pthread_create(&load_threads[2], NULL, courier_load, NULL), 0);
}

static void load_end(void)
{
    load_stop = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(load_threads[i], NULL);
}

/* Lines of the service's log from byte offset on, other than the one
 * access line each call writes ("... -> 503 (0.4 ms)"). */
static long log_lines_since(long offset, long *end)
{
    FILE *f = fopen(svc.log, "r");
    if (!f)
        return -1;
    fseek(f, offset, SEEK_SET);
    char line_buf[2048];
    long n = 0;
    while (fgets(line_buf, sizeof(line_buf), f)) {
        const char *arrow = strstr(line_buf, " -> ");
        if (arrow && arrow[4] >= '1' && arrow[4] <= '5' && strstr(arrow, " ms)"))
            continue;
        n++;
        if (n <= MAX_LOG_LINES + 5)
            fprintf(stderr, "  log: %s", line_buf);
    }
    if (end)
        *end = ftell(f);
    fclose(f);
    return n;
}

static long log_size(void)
{
    FILE *f = fopen(svc.log, "r");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static double timed_get(const char *path, long *status)
{
    struct reply r;
    double t0 = flow_now();
    int rc = http_get(&svc, operator_, path, &r);
    double dt = flow_now() - t0;
    *status = rc == 0 ? r.status : -1;
    if (rc == 0)
        reply_free(&r);
    return dt;
}

static int group_setup(void **state)
{
    (void)state;
    char config[2048], path[512], out[256];
    if (line_env_start(&line, STATIONS, 100) != 0)
        return -1;
    line_env_config(&line, 0, "ou", config, sizeof(config));
    snprintf(config + strlen(config), sizeof(config) - strlen(config),
             "db_statement_timeout_ms = %d\ndb_lock_timeout_ms = 1000\nspoil_limit = 100\n",
             STATEMENT_MS);
    if (harness_setup(&svc, config) != 0 || line_env_keys(&line, svc.dir, "B-1") != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "cities", "import",
                    harness_src("../shared/reference/cities.csv", path, sizeof(path)), NULL) != 0 ||
        harness_ctl(&svc, out, sizeof(out), "branches", "import",
                    harness_src("../shared/reference/branches.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-1", operator_, sizeof(operator_)) ||
        flow_courier_add(&svc, "fastpost", courier, sizeof(courier), secret, sizeof(secret)))
        return -1;
    if (start() != 0)
        return -1;
    /* Parcels for the courier and tracking load, made while the stations
     * are paused so that they do not take these requests. */
    if (harness_sql(NULL, 0, "UPDATE stations SET paused = true") != 0)
        return -1;
    for (int k = 0; k < PARCELS; k++) {
        harness_fresh_no("RQ-OP", parcel_no[k], sizeof(parcel_no[k]));
        harness_fresh_nid(parcel_nid[k]);
        if (flow_produced(&svc, intake,
                          sample_json(parcel_no[k], parcel_nid[k], "national_id", "lost")) != 0 ||
            flow_dispatch(&svc, operator_, "fastpost", parcel_no[k], parcel_tracking[k]) != 0)
            return -1;
    }
    struct reply r;
    char body[200];
    snprintf(body, sizeof(body),
             "{\"batch_no\":\"B-1\",\"first_serial\":\"C00000001\",\"count\":%d}", CARDS);
    if (http_post_json(&svc, operator_, "/v1/stock/batches", body, &r) != 0 || r.status != 201)
        return -1;
    reply_free(&r);
    if (harness_sql(NULL, 0, "UPDATE stations SET paused = false") != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = harness_stop(&svc, false);
    line_env_stop(&line);
    return rc;
}

static void check_stock(void)
{
    const char *problem = flow_stock_problem(CARDS);
    if (problem)
        fail_msg("stock: %s", problem);
}

static void test_database_restart_and_terminate_under_load(void **state)
{
    (void)state;
    long status;
    load_start();
    sleep(3);

    /* PostgreSQL stops for OUTAGE_S seconds. */
    long mark = log_size();
    assert_int_equal(pg_cluster("stop"), 0);
    double down_at = flow_now();
    double worst_health = 0;
    bool said_not_ready = false;
    while (flow_now() - down_at < OUTAGE_S) {
        struct reply r;
        double t0 = flow_now();
        assert_int_equal(http_get(&svc, NULL, "/healthz", &r), 0);
        double dt = flow_now() - t0;
        assert_int_equal(r.status, 200);
        reply_free(&r);
        if (dt > worst_health)
            worst_health = dt;
        timed_get("/readyz", &status);
        if (status == 503)
            said_not_ready = true;
        assert_int_not_equal(status, 200);
        usleep(200000);
    }
    printf("/healthz during the outage: at most %.1f ms\n", worst_health * 1000);
    assert_true(worst_health < 0.1);
    assert_true(said_not_ready);
    assert_int_equal(pg_cluster("start"), 0);
    double until = flow_now() + 20;
    do {
        timed_get("/readyz", &status);
        if (status == 200)
            break;
        usleep(100000);
    } while (flow_now() < until);
    assert_int_equal(status, 200);
    printf("ready again %.1f s after the database started\n", flow_now() - down_at - OUTAGE_S);
    /* What the outage wrote to the log, from the stop until the service
     * was ready again. */
    long lines = log_lines_since(mark, NULL);
    printf("%ld log lines (besides access lines) for a %d s outage\n", lines, OUTAGE_S);
    assert_true(lines <= MAX_LOG_LINES);
    sleep(3);

    /* Every connection of the service is terminated at once. */
    assert_true(flow_count("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                           " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                           " AND backend_type = 'client backend'") > 0);
    sleep(4);
    load_end();

    pthread_mutex_lock(&seen_lock);
    long total = 0;
    for (int s = 0; s < 600; s++)
        total += status_count[s];
    printf("%ld calls: %ld 2xx, %ld 503, %ld 500\n", total,
           status_count[200] + status_count[201] + status_count[202], status_count[503],
           status_count[500]);
    for (int s = 500; s < 600; s++)
        if (s != 503)
            assert_int_equal(status_count[s], 0);
    assert_int_equal(bad_503, 0);
    assert_true(status_count[503] > 0);
    assert_true(status_count[201] > 10);
    /* Every request answered 201 is there. */
    for (int i = 0; i < n_accepted; i++)
        if (flow_count("SELECT count(*) FROM requests WHERE request_no = '%s'", accepted[i]) != 1)
            fail_msg("request %s was answered 201 and is not in the database", accepted[i]);
    int n = n_accepted;
    pthread_mutex_unlock(&seen_lock);

    /* Production resumed by itself: every accepted request is made. */
    until = flow_now() + 240;
    long made = 0;
    while (flow_now() < until) {
        made = flow_count("SELECT count(*) FROM requests WHERE request_no LIKE 'RQ-OU%%'"
                          " AND status = 'produced'");
        if (made >= n)
            break;
        sleep(1);
    }
    printf("%ld of %d accepted requests produced\n", made, n);
    assert_int_equal(made, n);
    check_stock();
}

/* SIGTERM while the database is away: the service stops within 10 s, and
 * starts again once it is back. */
static void test_stop_with_database_down(void **state)
{
    (void)state;
    char no[40], nid[11];
    struct reply r;
    harness_fresh_no("RQ-OS", no, sizeof(no));
    harness_fresh_nid(nid);
    char *req = sample_request(no, nid, "national_id", "lost");
    assert_int_equal(http_post_json(&svc, intake, "/v1/requests", req, &r), 0);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    free(req);
    assert_int_equal(pg_cluster("stop"), 0);
    sleep(2);
    double t0 = flow_now();
    assert_int_equal(harness_stop(&svc, false), 0);
    double dt = flow_now() - t0;
    printf("SIGTERM to exit with the database down: %.2f s\n", dt);
    assert_true(dt < 10.0);
    assert_int_equal(pg_cluster("start"), 0);
    assert_int_equal(start(), 0);
    double until = flow_now() + 60;
    while (flow_count("SELECT count(*) FROM requests WHERE request_no = '%s'"
                      " AND status = 'produced'",
                      no) != 1 &&
           flow_now() < until)
        usleep(200000);
    assert_int_equal(
        flow_count("SELECT count(*) FROM requests WHERE request_no = '%s' AND status = 'produced'",
                   no),
        1);
    check_stock();
}

static void test_lock_held_on_requests(void **state)
{
    (void)state;
    /* Another session holds requests locked for a minute. */
    PGconn *locker = PQconnectdb("");
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    PGresult *res = PQexec(locker, "BEGIN; LOCK TABLE requests IN ACCESS EXCLUSIVE MODE;"
                                   " SELECT pg_sleep(0)");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);

    for (int i = 0; i < 3; i++) {
        char no[40], nid[11];
        struct reply r;
        harness_fresh_no("RQ-OL", no, sizeof(no));
        harness_fresh_nid(nid);
        char *req = sample_request(no, nid, "national_id", "lost");
        double t0 = flow_now();
        assert_int_equal(http_post_json(&svc, intake, "/v1/requests", req, &r), 0);
        double dt = flow_now() - t0;
        free(req);
        printf("POST /v1/requests under the lock: %ld in %.2f s\n", r.status, dt);
        assert_int_equal(r.status, 503);
        assert_true(r.retry_after[0] != '\0');
        reply_free(&r);
        assert_true(dt < STATEMENT_MS / 1000.0 + 1.0);

        long status;
        dt = timed_get("/v1/production/queue", &status);
        assert_int_equal(status, 503);
        assert_true(dt < STATEMENT_MS / 1000.0 + 1.0);

        t0 = flow_now();
        assert_int_equal(http_get(&svc, NULL, "/healthz", &r), 0);
        dt = flow_now() - t0;
        assert_int_equal(r.status, 200);
        reply_free(&r);
        assert_true(dt < 0.1);
    }

    /* A stop while the lock is still held (and the stations keep asking
     * for work) takes less than 10 s. */
    double t0 = flow_now();
    assert_int_equal(harness_stop(&svc, false), 0);
    double dt = flow_now() - t0;
    printf("SIGTERM to exit with the lock held: %.2f s\n", dt);
    assert_true(dt < 10.0);
    PQfinish(locker);
    assert_int_equal(start(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_database_restart_and_terminate_under_load),
        cmocka_unit_test(test_stop_with_database_down),
        cmocka_unit_test(test_lock_held_on_requests),
    };
    return cmocka_run_group_tests_name("outage", tests, group_setup, group_teardown);
}
