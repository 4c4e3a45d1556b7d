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
 *   answers again.
 * - pcscd killed and started again, and pcscd gone for a while (the readers
 *   taken away), while both stations produce: at most one blank spoiled per
 *   station per loss, none once the station shows error/reader_lost; the
 *   stations come back to idle by themselves and every request is made.
 * - A request whose chip data cannot be built (changed past intake) is
 *   held with the reason and spoils no blank.
 * - A second instance configured with a station the first one holds
 *   refuses it (shown in GET /v1/stations) and spoils none of its jobs.
 * - A Document Signer that cannot be opened puts the station in error
 *   signer_unavailable without spoiling a blank; it resumes by itself. */
#include "flow.h"
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
#include <sys/stat.h>
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
    double until = flow_now() + seconds;
    do {
        station_state(id, state, sizeof(state), NULL, 0);
        if (strcmp(state, want) == 0)
            return true;
        usleep(100000);
    } while (flow_now() < until);
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
    return flow_count("SELECT count(*) FROM requests WHERE status = 'produced'");
}

static bool wait_produced(long want, double seconds)
{
    double until = flow_now() + seconds;
    while (produced() < want && flow_now() < until)
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
    assert_int_equal(flow_count("SELECT count(*) FROM stations WHERE state = 'offline'"), STATIONS);
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
    long max_attempt = flow_count("SELECT coalesce(max(id), 0) FROM production_attempts");
    double t0 = flow_now();
    assert_int_equal(start(), 0);
    submit(6, "RQ-FH");

    /* fa2 produces from the first seconds, while fa1 cannot open its printer. */
    assert_true(wait_produced(before + 1, 12));
    printf("first card after the restart in %.1f s\n", flow_now() - t0);
    assert_true(wait_produced(before + 6, 60));
    assert_int_equal(flow_count("SELECT count(*) FROM production_attempts WHERE id > %ld"
                                " AND station_id <> 'fa2'",
                                max_attempt),
                     0);
    char st[32], why[128];
    station_state("fa1", st, sizeof(st), why, sizeof(why));
    assert_string_not_equal(st, "idle");
    assert_string_not_equal(st, "busy");
    printf("fa1 while its printer hangs: %s (%s)\n", st, why);
    assert_string_equal(st, "offline");
    assert_string_not_equal(why, "service stopped");
    /* No blank was lost to the hung printer. */
    assert_int_equal(flow_count("SELECT count(*) FROM production_attempts WHERE id > %ld"
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

/* Blanks spoiled after the moment mark (a database timestamp). */
static long spoiled_after(const char *mark)
{
    return flow_count("SELECT count(*) FROM production_attempts WHERE finished_at > '%s'"
                      " AND outcome IN ('spoiled','unknown')",
                      mark);
}

static long spoiled_since(long attempt)
{
    return flow_count("SELECT count(*) FROM production_attempts WHERE id > %ld"
                      " AND outcome IN ('spoiled','unknown')",
                      attempt);
}

static void db_now(char *out, size_t len)
{
    assert_int_equal(harness_sql(out, len, "SELECT now()::text"), 0);
}

static long last_attempt(void)
{
    return flow_count("SELECT coalesce(max(id), 0) FROM production_attempts");
}

/* Stock: every card is in exactly one state and the states add up. */
static void check_stock(void)
{
    const char *problem = flow_stock_problem(CARDS);
    if (problem)
        fail_msg("stock: %s", problem);
}

/* Both stations show error/reader_lost within seconds; returns true then. */
static bool both_reader_lost(double seconds)
{
    double until = flow_now() + seconds;
    do {
        char st[2][32], why[2][64];
        station_state("fa1", st[0], sizeof(st[0]), why[0], sizeof(why[0]));
        station_state("fa2", st[1], sizeof(st[1]), why[1], sizeof(why[1]));
        if (!strcmp(st[0], "error") && !strcmp(why[0], "reader_lost") && !strcmp(st[1], "error") &&
            !strcmp(why[1], "reader_lost"))
            return true;
        usleep(100000);
    } while (flow_now() < until);
    return false;
}

static void test_reader_lost(void **state)
{
    (void)state;
    assert_true(wait_state("fa1", "idle", 20));
    assert_true(wait_state("fa2", "idle", 20));
    long before = produced();
    submit(24, "RQ-FR");
    assert_true(wait_produced(before + 2, 30));

    /* pcscd dies while both stations produce, and comes back at once: at
     * most the card in each station when it died is spoiled. */
    char mark[64];
    db_now(mark, sizeof(mark));
    assert_int_equal(line_env_pcscd_stop(&line, 0), 0);
    assert_true(both_reader_lost(15));
    long lost = spoiled_after(mark);
    printf("pcscd killed: %ld blank(s) spoiled before both stations stopped\n", lost);
    assert_true(lost <= STATIONS);
    sleep(2);
    assert_int_equal(spoiled_after(mark), lost);
    assert_int_equal(line_env_pcscd_start(&line, 0), 0);
    assert_true(wait_state("fa1", "idle", 20) || wait_state("fa1", "busy", 1));
    assert_true(wait_state("fa2", "idle", 20) || wait_state("fa2", "busy", 1));
    /* Production resumed by itself: the whole batch is made. */
    assert_true(wait_produced(before + 24, 90));

    /* The readers are taken away for longer: no blank is fed meanwhile. */
    before = produced();
    submit(12, "RQ-FR");
    assert_true(wait_produced(before + 2, 30));
    db_now(mark, sizeof(mark));
    assert_int_equal(line_env_pcscd_stop(&line, 0), 0);
    assert_true(both_reader_lost(15));
    lost = spoiled_after(mark);
    long attempts = last_attempt();
    sleep(8);
    assert_int_equal(last_attempt(), attempts); /* nothing claimed while in error */
    assert_int_equal(spoiled_after(mark), lost);
    assert_true(lost <= STATIONS);
    assert_int_equal(line_env_pcscd_start(&line, 0), 0);

    /* Every request is made in the end, and the stock adds up. */
    assert_true(wait_produced(before + 12, 120));
    assert_int_equal(flow_count("SELECT count(*) FROM requests WHERE hold_reason IS NOT NULL"), 0);
    check_stock();
}

static void test_unbuildable_request_held(void **state)
{
    (void)state;
    assert_int_equal(
        harness_sql(NULL, 0, "UPDATE stations SET paused = true WHERE id IN ('fa1','fa2')"), 0);
    /* A worker that read "ready" just before the pause may still claim:
     * let every station see the pause first. */
    assert_true(wait_state("fa1", "paused", 20));
    assert_true(wait_state("fa2", "paused", 20));
    sleep(1);
    char no[40], nid[11];
    struct reply r;
    harness_fresh_no("RQ-FX", no, sizeof(no));
    harness_fresh_nid(nid);
    char *req = sample_request(no, nid, "national_id", "lost");
    assert_int_equal(http_post_json(&svc, intake, "/v1/requests", req, &r), 0);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    free(req);
    /* Intake refuses what could not be encoded (the names rule). */
    char other_no[40], other_nid[11];
    harness_fresh_no("RQ-FX", other_no, sizeof(other_no));
    harness_fresh_nid(other_nid);
    json_t *bad = sample_json(other_no, other_nid, "national_id", "lost");
    json_object_set_new(json_object_get(bad, "holder"), "name_en", json_string("MOHAMMED"));
    char *text = json_dumps(bad, JSON_COMPACT);
    json_decref(bad);
    assert_int_equal(http_post_json(&svc, intake, "/v1/requests", text, &r), 0);
    free(text);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "holder.name_en"), "format");
    reply_free(&r);
    /* Changed past intake: a Latin name with no letter the MRZ keeps. */
    char sql[300];
    snprintf(sql, sizeof(sql),
             "UPDATE requests SET name_en = 'محمد القحطاني' WHERE request_no = '%s'", no);
    assert_int_equal(harness_sql(NULL, 0, sql), 0);
    long mark = last_attempt();
    long spoiled_cards = flow_count("SELECT count(*) FROM cards WHERE state = 'spoiled'");
    assert_int_equal(
        harness_sql(NULL, 0, "UPDATE stations SET paused = false WHERE id IN ('fa1','fa2')"), 0);
    double until = flow_now() + 30;
    while (flow_count("SELECT count(*) FROM requests WHERE request_no = '%s'"
                      " AND hold_reason IS NOT NULL",
                      no) == 0 &&
           flow_now() < until)
        usleep(100000);
    char hold[300] = "";
    snprintf(sql, sizeof(sql), "SELECT hold_reason FROM requests WHERE request_no = '%s'", no);
    assert_int_equal(harness_sql(hold, sizeof(hold), sql), 0);
    printf("held: %s\n", hold);
    assert_non_null(strstr(hold, "chip data cannot be built"));
    assert_int_equal(spoiled_since(mark), 0);
    assert_int_equal(flow_count("SELECT count(*) FROM cards WHERE state = 'spoiled'"),
                     spoiled_cards);
    assert_int_equal(flow_count("SELECT spoiled_cards FROM requests WHERE request_no = '%s'", no),
                     0);
    /* The stations go on with other work. */
    long before = produced();
    submit(2, "RQ-FY");
    assert_true(wait_produced(before + 2, 30));
    check_stock();
}

static void test_signer_unavailable(void **state)
{
    (void)state;
    char key[400];
    snprintf(key, sizeof(key), "%s/ds.key", svc.dir);
    assert_int_equal(harness_stop(&svc, false), 0);
    assert_int_equal(chmod(key, 0644), 0); /* refused: readable by others */
    long mark = last_attempt();
    long spoiled_cards = flow_count("SELECT count(*) FROM cards WHERE state = 'spoiled'");
    assert_int_equal(start(), 0);
    long before = produced();
    submit(2, "RQ-FS");
    double until = flow_now() + 20;
    char st[32] = "", why[64] = "";
    while (flow_now() < until) {
        station_state("fa1", st, sizeof(st), why, sizeof(why));
        if (!strcmp(why, "signer_unavailable"))
            break;
        station_state("fa2", st, sizeof(st), why, sizeof(why));
        if (!strcmp(why, "signer_unavailable"))
            break;
        usleep(100000);
    }
    assert_string_equal(st, "error");
    assert_string_equal(why, "signer_unavailable");
    assert_int_equal(spoiled_since(mark), 0);
    assert_int_equal(flow_count("SELECT count(*) FROM cards WHERE state = 'spoiled'"),
                     spoiled_cards);
    assert_int_equal(chmod(key, 0600), 0);
    assert_true(wait_produced(before + 2, 40));
    assert_int_equal(spoiled_since(mark), 0);
    check_stock();
}

static void test_second_instance_refuses_station(void **state)
{
    (void)state;
    struct service other;
    char config[512];
    snprintf(config, sizeof(config), "instance = other\nstation = fa1 evolis %s %s\n",
             line.serial[0], line.reader[0]);
    assert_int_equal(harness_clone(&svc, &other, config), 0);
    long mark = last_attempt();
    long before = produced();
    submit(6, "RQ-FO");
    assert_int_equal(harness_start(&other), 0);

    bool refused = false;
    double until = flow_now() + 20;
    while (!refused && flow_now() < until) {
        struct reply r;
        assert_int_equal(http_get(&svc, operator_, "/v1/stations", &r), 0);
        size_t i;
        json_t *st;
        json_array_foreach(json_object_get(r.json, "stations"), i, st)
        {
            if (strcmp(json_string_value(json_object_get(st, "id")), "fa1") != 0)
                continue;
            json_t *by = json_object_get(st, "refused");
            assert_string_equal(json_string_value(json_object_get(st, "instance")), "host1");
            if (json_is_object(by) &&
                strcmp(json_string_value(json_object_get(by, "instance")), "other") == 0)
                refused = true;
        }
        reply_free(&r);
        if (!refused)
            usleep(100000);
    }
    assert_true(refused);
    assert_true(wait_produced(before + 6, 60));
    /* Only the holder worked, and nothing was spoiled or recovered. */
    assert_int_equal(flow_count("SELECT count(*) FROM production_attempts WHERE id > %ld"
                                " AND instance <> 'host1'",
                                mark),
                     0);
    assert_int_equal(spoiled_since(mark), 0);
    assert_int_equal(flow_count("SELECT count(*) FROM audit_log WHERE action = 'job.recovered'"
                                " AND actor = 'station:fa1' AND at > now() - interval '1 minute'"),
                     0);
    FILE *f = fopen(other.log, "r");
    assert_non_null(f);
    char text[512];
    bool logged = false;
    while (fgets(text, sizeof(text), f))
        if (strstr(text, "fa1") && strstr(text, "refuses it"))
            logged = true;
    fclose(f);
    assert_true(logged);
    assert_int_equal(harness_stop(&other, false), 0);
}

/* SIGTERM while a printer hangs in the middle of a job: the service stops
 * within 10 s; the job left in progress is resolved at the next start. */
static void test_stop_with_printer_hung_mid_job(void **state)
{
    (void)state;
    char reply[200];
    assert_true(wait_state("fa1", "idle", 20));
    assert_int_equal(harness_sql(NULL, 0, "UPDATE stations SET paused = true WHERE id = 'fa2'"), 0);
    long mark = last_attempt();
    submit(3, "RQ-FT");
    double until = flow_now() + 30;
    while (flow_count("SELECT count(*) FROM production_attempts WHERE id > %ld"
                      " AND station_id = 'fa1' AND outcome = 'in_progress'",
                      mark) == 0 &&
           flow_now() < until)
        usleep(20000);
    assert_int_equal(line_env_printer(&line, 0, "fault hang", reply, sizeof(reply)), 0);
    sleep(1); /* fa1 is now waiting on its printer */
    double t0 = flow_now();
    assert_int_equal(harness_stop(&svc, false), 0);
    double dt = flow_now() - t0;
    printf("SIGTERM to exit with a printer hung mid-job: %.2f s\n", dt);
    assert_true(dt < 10.0);
    assert_int_equal(line_env_printer(&line, 0, "clear", reply, sizeof(reply)), 0);
    assert_int_equal(start(), 0);
    assert_int_equal(harness_sql(NULL, 0, "UPDATE stations SET paused = false WHERE id = 'fa2'"),
                     0);
    until = flow_now() + 60;
    while (flow_count("SELECT count(*) FROM requests WHERE request_no LIKE 'RQ-FT%%'"
                      " AND status <> 'produced'") > 0 &&
           flow_now() < until)
        usleep(200000);
    assert_int_equal(flow_count("SELECT count(*) FROM requests WHERE request_no LIKE 'RQ-FT%%'"
                                " AND status <> 'produced'"),
                     0);
    /* The job the stop left in progress was resolved by the start. */
    assert_true(flow_count("SELECT count(*) FROM production_attempts WHERE id > %ld"
                           " AND reason LIKE 'fate unknown after restart%%'",
                           mark) >= 1);
    assert_int_equal(flow_count("SELECT count(*) FROM production_attempts WHERE id > %ld"
                                " AND outcome = 'in_progress'",
                                mark),
                     0);
    check_stock();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_shows_idle),
        cmocka_unit_test(test_hung_printer_stalls_only_its_station),
        cmocka_unit_test(test_reader_lost),
        cmocka_unit_test(test_unbuildable_request_held),
        cmocka_unit_test(test_signer_unavailable),
        cmocka_unit_test(test_second_instance_refuses_station),
        cmocka_unit_test(test_stop_with_printer_hung_mid_job),
    };
    return cmocka_run_group_tests_name("faults", tests, group_setup, group_teardown);
}
