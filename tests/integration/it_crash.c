/* it_crash.c — kill -9 at random moments of production, restart, and check
 * after each restart that no request is lost or produced twice and that
 * every blank card is accounted for; jobs in flight at the kill are
 * resolved on restart (card spoiled, request requeued, audit log entry). */
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
#define REQUESTS 60
#define CARDS    200

static struct service svc;
static struct line_env line;
static char intake[128], operator_[128];

static int group_setup(void **state)
{
    (void)state;
    char config[2048];
    /* A printing cycle long enough that kills often land inside a job. */
    if (line_env_start(&line, STATIONS, 250) != 0)
        return -1;
    line_env_config(&line, 0, "st", config, sizeof(config));
    strncat(config, "spoil_limit = 100\n", sizeof(config) - strlen(config) - 1);
    if (harness_setup(&svc, config) != 0 || line_env_keys(&line, svc.dir, "B-1") != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-1", operator_, sizeof(operator_)))
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

static int start(void)
{
    line_env_export(&line, 0);
    int rc = harness_start(&svc);
    line_env_unexport();
    return rc;
}

static long sql_long(const char *sql)
{
    char out[64] = "";
    if (harness_sql(out, sizeof(out), sql) != 0)
        return -1;
    return atol(out);
}

/* The invariants that must hold at any moment, even with the service dead. */
static void check_invariants(int round)
{
    /* No request lost. */
    assert_int_equal(sql_long("SELECT count(*) FROM requests"), REQUESTS);
    /* None produced twice, and each produced request has exactly one used card. */
    assert_int_equal(sql_long("SELECT count(*) FROM (SELECT request_id FROM production_attempts"
                              " WHERE outcome = 'produced' GROUP BY 1 HAVING count(*) > 1) x"),
                     0);
    assert_int_equal(
        sql_long(
            "SELECT count(*) FROM requests r WHERE r.status = 'produced' AND"
            " (SELECT count(*) FROM cards c WHERE c.request_id = r.id AND c.state = 'used') <> 1"),
        0);
    /* One statement, one snapshot: after a restart the line is running. */
    assert_int_equal(sql_long("SELECT (SELECT count(*) FROM cards WHERE state = 'used') -"
                              " (SELECT count(*) FROM requests WHERE status = 'produced')"),
                     0);
    /* Every card is somewhere: the states add up to what was received. */
    assert_int_equal(sql_long("SELECT count(*) FROM cards"), CARDS);
    assert_int_equal(sql_long("SELECT sum(count) FROM stock_batches"), CARDS);
    /* A card in production belongs to exactly one job in progress, and back. */
    assert_int_equal(
        sql_long("SELECT count(*) FROM cards c WHERE c.state = 'in_production' AND NOT EXISTS"
                 " (SELECT 1 FROM production_attempts p WHERE p.card_serial = c.serial"
                 "  AND p.outcome = 'in_progress')"),
        0);
    assert_int_equal(
        sql_long("SELECT count(*) FROM production_attempts p WHERE p.outcome = 'in_progress'"
                 " AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.serial = p.card_serial"
                 "  AND c.state = 'in_production')"),
        0);
    /* Spoiled cards always say why. */
    assert_int_equal(
        sql_long("SELECT count(*) FROM cards WHERE state = 'spoiled' AND spoil_reason IS NULL"), 0);
    (void)round;
}

static void test_kill_and_restart(void **state)
{
    (void)state;
    struct reply r;
    assert_int_equal(start(), 0);
    char body[200];
    snprintf(body, sizeof(body),
             "{\"batch_no\":\"B-1\",\"first_serial\":\"C00000001\",\"count\":%d}", CARDS);
    assert_int_equal(http_post_json(&svc, operator_, "/v1/stock/batches", body, &r), 0);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    for (int i = 0; i < REQUESTS; i++) {
        char no[32], nine[16], nid[11];
        snprintf(no, sizeof(no), "RQ-K-%04d", i);
        snprintf(nine, sizeof(nine), "2%08d", 3000 + i);
        make_national_id(nine, nid);
        char *req = sample_request(no, nid, i % 4 == 3 ? "family_record" : "national_id", "lost");
        assert_int_equal(http_post_json(&svc, intake, "/v1/requests", req, &r), 0);
        assert_int_equal(r.status, 201);
        reply_free(&r);
        free(req);
    }

    unsigned seed = (unsigned)time(NULL);
    printf("crash seed %u\n", seed);
    int kills = 0, in_flight_at_kill = 0;
    for (int round = 0; round < 22; round++) {
        if (sql_long("SELECT count(*) FROM requests WHERE status <> 'produced'") == 0)
            break;
        usleep((useconds_t)(200000 + rand_r(&seed) % 1300000));
        harness_stop(&svc, true); /* kill -9 */
        kills++;
        long flying =
            sql_long("SELECT count(*) FROM production_attempts WHERE outcome = 'in_progress'");
        in_flight_at_kill += (int)flying;
        check_invariants(round);
        assert_int_equal(start(), 0);
        /* On restart every job that was in flight is resolved. */
        char sql[200];
        long max_id = sql_long("SELECT coalesce(max(id), 0) FROM production_attempts");
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM production_attempts WHERE outcome = 'in_progress'"
                 " AND id <= %ld",
                 max_id);
        int waited = 0;
        while (sql_long(sql) > 0 && waited++ < 200)
            usleep(50000);
        assert_int_equal(sql_long(sql), 0);
        check_invariants(round);
    }
    assert_true(kills >= 20);

    /* Let the line finish, then everything is produced exactly once. */
    for (int i = 0; i < 1200; i++) {
        if (sql_long("SELECT count(*) FROM requests WHERE status = 'produced'") == REQUESTS)
            break;
        usleep(100000);
    }
    assert_int_equal(sql_long("SELECT count(*) FROM requests WHERE status = 'produced'"), REQUESTS);
    check_invariants(-1);
    assert_int_equal(
        sql_long("SELECT count(*) FROM production_attempts WHERE outcome = 'in_progress'"), 0);
    /* Each job caught by a kill was resolved and its card spoiled, with the audit log saying so. */
    long recovered = sql_long("SELECT count(*) FROM production_attempts WHERE outcome = 'unknown'");
    assert_int_equal(recovered, in_flight_at_kill);
    assert_int_equal(sql_long("SELECT count(*) FROM audit_log WHERE action = 'job.recovered'"),
                     recovered);
    assert_int_equal(
        sql_long(
            "SELECT count(*) FROM cards WHERE spoil_reason = 'fate unknown after restart: rejected'"),
        recovered);
    /* Every spoiled card counts on its station, whatever path spoiled it
     * (a job that failed, or one resolved at a restart). */
    assert_int_equal(sql_long("SELECT sum(cards_spoiled) FROM stations"),
                     sql_long("SELECT count(*) FROM cards WHERE state = 'spoiled'"));
    assert_int_equal(sql_long("SELECT sum(cards_produced) FROM stations"),
                     sql_long("SELECT count(*) FROM cards WHERE state = 'used'"));
    printf("%d kills, %ld jobs in flight at a kill, all resolved\n", kills, recovered);
    assert_true(recovered > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_and_restart),
    };
    return cmocka_run_group_tests_name("crash", tests, group_setup, group_teardown);
}
