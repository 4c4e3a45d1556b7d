/* it_pages.c — the pages people use, in a real browser: Debian's chromium
 * driven by python3-selenium (tests/browser/pages.py) against the real
 * service, its database and an emulated production line of two stations.
 *
 * This file brings the requests to where the pages must show them — one
 * waiting at a branch after two failed deliveries, one produced but past
 * its latest delivery date, one held for an operator after a spoiled card,
 * one on time — then runs the browser script for the citizen's page and
 * for the dashboard, and checks afterwards in the database what the
 * operator's clicks did. The script saves screenshots of both pages in
 * $BUILD/screenshots, or in $PAGES_SCREENSHOTS_DIR (make screenshots:
 * docs/screenshots, shown in the README). */
#define _GNU_SOURCE
#include "calendar.h"
#include "flow.h"
#include "harness.h"
#include "line_env.h"

#include <errno.h>
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

#include <stdbool.h>

#include <cmocka.h>

#define PYTHON        "/usr/bin/python3"
#define SCRIPT_TIME_S 300

static struct service svc;
static struct line_env line;
static char intake[128], operator_[128], courier[128], secret[128];

/* The requests the pages show. */
static char at_branch[40], at_branch_nid[11]; /* ready for collection at a branch */
static char late[40];                         /* produced, latest delivery date passed */
static char on_time[40];                      /* produced, well within its window */
static char held[40];                         /* held for an operator */

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

/* Polls a count until it is non-zero or seconds pass. */
static bool wait_nonzero(int seconds, const char *fmt, const char *arg)
{
    for (int i = 0; i < seconds * 10; i++) {
        if (sql_long(fmt, arg) > 0)
            return true;
        usleep(100000);
    }
    return false;
}

static void status_of(const char *no, char out[64])
{
    flow_sql(out, 64, "SELECT status FROM requests WHERE request_no = '%s'", no);
}

/* Submits a request approved at approved_at (RFC 3339) through intake. */
static void submit(const char *no, const char *nid, const char *approved_at)
{
    json_t *req = sample_json(no, nid, "national_id", "lost");
    time_t t;
    struct tm tm;
    char terms[32];
    assert_int_equal(timestamp_parse(approved_at, &t), 0);
    t -= 3600;
    gmtime_r(&t, &tm);
    strftime(terms, sizeof(terms), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(req, "approved_at", json_string(approved_at));
    json_object_set_new(req, "terms_accepted_at", json_string(terms));
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct reply r;
    assert_int_equal(http_post_json(&svc, intake, "/v1/requests", text, &r), 0);
    free(text);
    if (r.status != 201)
        fail_msg("intake of %s answered %ld: %s", no, r.status, r.body ? r.body : "");
    reply_free(&r);
}

static void operator_post(const char *path)
{
    struct reply r;
    assert_int_equal(http_post_json(&svc, operator_, path, NULL, &r), 0);
    if (r.status != 200)
        fail_msg("POST %s answered %ld: %s", path, r.status, r.body ? r.body : "");
    reply_free(&r);
}

static void courier_event(const char *id, const char *tracking, const char *code, long offset,
                          const char *reason)
{
    char at[21];
    flow_time(offset, at);
    char *body = flow_event(id, tracking, code, at, reason);
    struct reply r;
    assert_int_equal(flow_signed(&svc, "POST", "/v1/courier/events", courier, secret, 0, body, &r),
                     0);
    free(body);
    if (r.status != 200 && r.status != 201)
        fail_msg("courier event %s answered %ld: %s", id, r.status, r.body ? r.body : "");
    reply_free(&r);
}

static int group_setup(void **state)
{
    (void)state;
    char config[4096], path[512], out[256];
    if (line_env_start(&line, 2, 0) != 0) {
        fprintf(stderr, "line_env_start failed\n");
        return -1;
    }
    line_env_config(&line, 0, "st", config, sizeof(config));
    /* One spoiled card holds a request; three failed look-ups block tracking for five minutes. */
    strncat(config, "spoil_limit = 1\ntrack_fail_limit = 3\ntrack_fail_window_s = 300\n",
            sizeof(config) - strlen(config) - 1);
    if (harness_setup(&svc, config) != 0 || line_env_keys(&line, svc.dir, "B-1") != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "cities", "import",
                    harness_src("../shared/reference/cities.csv", path, sizeof(path)), NULL) != 0 ||
        harness_ctl(&svc, out, sizeof(out), "branches", "import",
                    harness_src("../shared/reference/branches.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-noura", operator_, sizeof(operator_)) ||
        flow_courier_add(&svc, "fastpost", courier, sizeof(courier), secret, sizeof(secret)))
        return -1;
    line_env_export(&line, 0);
    int rc = harness_start(&svc);
    line_env_unexport();
    if (rc)
        return rc;
    struct reply r;
    if (http_post_json(&svc, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"B-1\",\"first_serial\":\"A00000001\",\"count\":40}", &r))
        return -1;
    rc = r.status == 201 ? 0 : -1;
    reply_free(&r);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = harness_stop(&svc, false);
    line_env_stop(&line);
    return rc;
}

/* The requests, made by the emulated line and moved by the courier's events. */
static void test_requests_for_the_pages(void **state)
{
    (void)state;
    char nid[11], now[21], status[64], tracking[14];
    flow_time(-3600, now);
    harness_fresh_no("PG-BR", at_branch, sizeof(at_branch));
    harness_fresh_nid(at_branch_nid);
    submit(at_branch, at_branch_nid, now);
    harness_fresh_no("PG-LATE", late, sizeof(late));
    harness_fresh_nid(nid);
    submit(late, nid, "2026-10-01T08:00:00Z");
    harness_fresh_no("PG-OK", on_time, sizeof(on_time));
    harness_fresh_nid(nid);
    submit(on_time, nid, now);
    assert_true(wait_nonzero(60,
                             "SELECT (count(*) = 3)::int FROM requests WHERE status = 'produced'"
                             " AND request_no LIKE '%s%%'",
                             "PG-"));

    /* Two failed deliveries send the card to the nearest branch; it arrives there. */
    assert_int_equal(flow_dispatch(&svc, operator_, "fastpost", at_branch, tracking), 0);
    /* The courier's scans follow the hand-over, a few seconds apart. */
    courier_event("pg-1", tracking, "picked_up", 5, NULL);
    courier_event("pg-2", tracking, "out_for_delivery", 10, NULL);
    courier_event("pg-3", tracking, "delivery_failed", 15, "no_one_home");
    courier_event("pg-4", tracking, "out_for_delivery", 20, NULL);
    courier_event("pg-5", tracking, "delivery_failed", 25, "address_not_found");
    courier_event("pg-6", tracking, "arrived_at_branch", 30, NULL);
    status_of(at_branch, status);
    assert_string_equal(status, "ready_for_collection");

    /* The holder's SMS name the branch, and the last day once the card is there. */
    char sms[1024], want[256];
    flow_sql(want, sizeof(want),
             "SELECT b.name_en || '. Last day to collect: ' || to_char(p.collect_by, 'YYYY-MM-DD')"
             " FROM parcels p JOIN branches b ON b.branch_id = p.branch_id"
             " JOIN requests r ON r.id = p.request_id WHERE r.request_no = '%s'",
             at_branch);
    flow_sql(sms, sizeof(sms),
             "SELECT n.text_en FROM notifications n JOIN requests r ON r.id = n.request_id"
             " WHERE r.request_no = '%s' AND n.status = 'ready_for_collection'",
             at_branch);
    assert_non_null(strstr(sms, want));
    flow_sql(want, sizeof(want),
             "SELECT b.name_ar || '. آخر يوم للاستلام: ' || to_char(p.collect_by, 'YYYY-MM-DD')"
             " FROM parcels p JOIN branches b ON b.branch_id = p.branch_id"
             " JOIN requests r ON r.id = p.request_id WHERE r.request_no = '%s'",
             at_branch);
    flow_sql(sms, sizeof(sms),
             "SELECT n.text_ar FROM notifications n JOIN requests r ON r.id = n.request_id"
             " WHERE r.request_no = '%s' AND n.status = 'ready_for_collection'",
             at_branch);
    assert_non_null(strstr(sms, want));
    flow_sql(sms, sizeof(sms),
             "SELECT n.text_en || ' ' || n.text_ar FROM notifications n"
             " JOIN requests r ON r.id = n.request_id JOIN parcels p ON p.request_id = r.id"
             " JOIN branches b ON b.branch_id = p.branch_id WHERE r.request_no = '%s'"
             " AND n.status = 'redirected_to_branch' AND strpos(n.text_en, b.name_en) > 0"
             " AND strpos(n.text_ar, b.name_ar) > 0",
             at_branch);
    assert_true(sms[0] != '\0');

    /* A spoiled card holds a request (spoil_limit = 1): one station
     * paused, the other's next card answers an error. */
    operator_post("/v1/stations/st2/pause");
    assert_true(wait_nonzero(
        10, "SELECT count(*) FROM stations WHERE id = '%s' AND paused AND state <> 'busy'", "st2"));
    /* A round of st2's worker that began before the pause ends first. */
    sleep(2);
    char reply[200] = "";
    assert_int_equal(line_env_card(&line, 0, "fault status:6:6A84", reply, sizeof(reply)), 0);
    harness_fresh_no("PG-HELD", held, sizeof(held));
    harness_fresh_nid(nid);
    submit(held, nid, now);
    if (!wait_nonzero(
            60, "SELECT count(*) FROM requests WHERE request_no = '%s' AND hold_reason IS NOT NULL",
            held)) {
        char what[512];
        flow_sql(
            what, sizeof(what),
            "SELECT r.status || ' ' || coalesce(r.production_station, '-') || ' spoiled '"
            " || r.spoiled_cards || ' ' || coalesce(string_agg(p.station_id || ':' || p.outcome"
            " || ':' || coalesce(p.reason, ''), ', '), '') FROM requests r"
            " LEFT JOIN production_attempts p ON p.request_id = r.id"
            " WHERE r.request_no = '%s' GROUP BY r.id",
            held);
        line_env_card(&line, 0, "status", reply, sizeof(reply));
        fail_msg("%s was not held: %s; card emulator: %s", held, what, reply);
    }
    operator_post("/v1/stations/st2/resume");

    /* The API agrees with what the pages will be asked to show. */
    struct reply r;
    assert_int_equal(http_get(&svc, operator_, "/v1/production/at-risk", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, late));
    assert_null(strstr(r.body, on_time));
    reply_free(&r);
    assert_int_equal(http_get(&svc, operator_, "/v1/production/queue?held=true", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, held));
    assert_null(strstr(r.body, on_time));
    reply_free(&r);
}

/* Runs tests/browser/pages.py MODE with the test's facts in its
 * environment; its checks print to this test's log. Returns its exit
 * status (or -1 when it could not run or took too long). */
static int run_browser(const char *mode)
{
    char script[512], shots[512], control[320], branch_ar[200] = "", branch_en[200] = "",
                                                lat[40] = "", lon[40] = "", collect[16] = "",
                                                queued_at[32] = "";
    harness_src("tests/browser/pages.py", script, sizeof(script));
    /* make screenshots writes them to docs/screenshots for the README;
     * make check keeps them in the build folder. */
    const char *dir = getenv("PAGES_SCREENSHOTS_DIR");
    if (dir && *dir)
        snprintf(shots, sizeof(shots), "%s", dir);
    else
        harness_bin("screenshots", shots, sizeof(shots));
    snprintf(control, sizeof(control), "%s", line.printer_control[0]);
    flow_sql(branch_ar, sizeof(branch_ar),
             "SELECT b.name_ar FROM parcels p JOIN requests r ON r.id = p.request_id"
             " JOIN branches b ON b.branch_id = p.branch_id WHERE r.request_no = '%s'",
             at_branch);
    flow_sql(branch_en, sizeof(branch_en),
             "SELECT b.name_en FROM parcels p JOIN requests r ON r.id = p.request_id"
             " JOIN branches b ON b.branch_id = p.branch_id WHERE r.request_no = '%s'",
             at_branch);
    flow_sql(lat, sizeof(lat),
             "SELECT b.lat FROM parcels p JOIN requests r ON r.id = p.request_id"
             " JOIN branches b ON b.branch_id = p.branch_id WHERE r.request_no = '%s'",
             at_branch);
    flow_sql(lon, sizeof(lon),
             "SELECT b.lon FROM parcels p JOIN requests r ON r.id = p.request_id"
             " JOIN branches b ON b.branch_id = p.branch_id WHERE r.request_no = '%s'",
             at_branch);
    flow_sql(collect, sizeof(collect),
             "SELECT to_char(p.collect_by, 'YYYY-MM-DD') FROM parcels p"
             " JOIN requests r ON r.id = p.request_id WHERE r.request_no = '%s'",
             at_branch);
    flow_sql(queued_at, sizeof(queued_at),
             "SELECT rfc3339(e.at) FROM request_events e JOIN requests r ON r.id = e.request_id"
             " WHERE r.request_no = '%s' AND e.status = 'queued'",
             at_branch);
    char other_nid[11];
    harness_fresh_nid(other_nid);

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setenv("PAGES_BASE", svc.base, 1);
        setenv("PAGES_OPERATOR_TOKEN", operator_, 1);
        setenv("PAGES_REQUEST", at_branch, 1);
        setenv("PAGES_NATIONAL_ID", at_branch_nid, 1);
        setenv("PAGES_OTHER_NATIONAL_ID", other_nid, 1);
        setenv("PAGES_QUEUED_AT", queued_at, 1);
        setenv("PAGES_BRANCH_AR", branch_ar, 1);
        setenv("PAGES_BRANCH_EN", branch_en, 1);
        setenv("PAGES_BRANCH_LAT", lat, 1);
        setenv("PAGES_BRANCH_LON", lon, 1);
        setenv("PAGES_COLLECT_BY", collect, 1);
        setenv("PAGES_LATE", late, 1);
        setenv("PAGES_ON_TIME", on_time, 1);
        setenv("PAGES_HELD", held, 1);
        setenv("PAGES_STATION", "st1", 1);
        setenv("PAGES_PRINTER_CONTROL", control, 1);
        setenv("PAGES_SCREENSHOTS", shots, 1);
        execl(PYTHON, PYTHON, script, mode, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", PYTHON, strerror(errno));
        _exit(127);
    }
    int wstatus = 0;
    for (int i = 0; i < SCRIPT_TIME_S * 10; i++) {
        pid_t w = waitpid(pid, &wstatus, WNOHANG);
        if (w == pid)
            return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
        usleep(100000);
    }
    fprintf(stderr, "pages.py %s took over %d s: stopped\n", mode, SCRIPT_TIME_S);
    kill(pid, SIGTERM);
    waitpid(pid, &wstatus, 0);
    return -1;
}

static void test_citizen_page(void **state)
{
    (void)state;
    assert_int_equal(run_browser("citizen"), 0);
}

static void test_dashboard(void **state)
{
    (void)state;
    assert_int_equal(run_browser("ops"), 0);
    /* What the operator's clicks did, as the database has it: the held
     * request released and produced, the station back at work. */
    assert_true(wait_nonzero(
        60, "SELECT count(*) FROM requests WHERE request_no = '%s' AND status = 'produced'", held));
    assert_int_equal(sql_long("SELECT count(*) FROM audit_log WHERE action = 'request.released'"
                              " AND actor = 'op-noura'"),
                     1);
    assert_int_equal(sql_long("SELECT count(*) FROM audit_log WHERE action = 'station.resumed'"
                              " AND station_id = 'st1' AND actor = 'op-noura'"),
                     1);
    /* Paused and resumed from the page (the set-up paused it once too). */
    assert_int_equal(sql_long("SELECT count(*) FROM audit_log WHERE action = 'station.paused'"
                              " AND station_id = 'st2' AND actor = 'op-noura'"),
                     2);
    char state_[32];
    flow_sql(state_, sizeof(state_), "SELECT state FROM stations WHERE id = '%s'", "st1");
    assert_true(strcmp(state_, "idle") == 0 || strcmp(state_, "busy") == 0);
    /* The at-risk count is in /metrics. */
    struct reply r;
    assert_int_equal(http_get(&svc, operator_, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    const char *m = strstr(r.body, "\ncardd_requests_at_risk ");
    assert_non_null(m);
    assert_true(atol(m + strlen("\ncardd_requests_at_risk ")) >= 1);
    reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_for_the_pages),
        cmocka_unit_test(test_citizen_page),
        cmocka_unit_test(test_dashboard),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
