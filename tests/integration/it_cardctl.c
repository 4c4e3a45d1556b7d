/* it_cardctl.c — the operator's commands against the real service and
 * database: what cardctl does is what the API then shows, and every command
 * answers bad usage with 2 and a failure with 1. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static struct service svc;
static char operator_[128], intake[128];

static int group_setup(void **state)
{
    (void)state;
    if (harness_setup(&svc, "station = st1 evolis EVO-0001 Virtual PCD 00 00\n"
                            "station = st2 evolis EVO-0002 Virtual PCD 00 01\n") != 0)
        return -1;
    if (harness_token(&svc, "operator", "op-fatimah", operator_, sizeof(operator_)) ||
        harness_token(&svc, "intake", "absher", intake, sizeof(intake)))
        return -1;
    return harness_start(&svc);
}

static int group_teardown(void **state)
{
    (void)state;
    return harness_stop(&svc, false);
}

/* Sends an approved request through the intake API. */
static void submit(const char *request_no, const char *nine, const char *kind)
{
    char nid[11];
    struct reply r;
    make_national_id(nine, nid);
    char *body = sample_request(request_no, nid, kind, "lost");
    assert_int_equal(http_post_json(&svc, intake, "/v1/requests", body, &r), 0);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    free(body);
}

static long sql_long(const char *sql)
{
    char out[64] = "";
    assert_int_equal(harness_sql(out, sizeof(out), sql), 0);
    return strtol(out, NULL, 10);
}

static json_t *station(struct reply *r, const char *id)
{
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(r->json, "stations"), i,
                       st) if (strcmp(json_string_value(json_object_get(st, "id")), id) ==
                               0) return st;
    fail_msg("station %s not listed", id);
    return NULL;
}

static void test_usage(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "no-such", "command", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "stations", "extra", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "station", "pause", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "station", "resume", "st1", "st2", NULL),
                     2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "queue", "--limit", "0", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "queue", "--limit", "501", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "queue", "--limit", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "request", "release", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "request", "release", "rq lower", NULL),
                     2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "stock", "extra", NULL), 2);
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-1", "A00000001", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "face", "RQ-1", NULL), 2);
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "card", "face", "rq 1", "/tmp/x.png", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "watch", "--interval", "0", NULL), 2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "watch", "--bogus", NULL), 2);
}

/* No PC/SC service and no reader: the documented "reader or card error". */
static void test_card_read_without_reader(void **state)
{
    (void)state;
    char out[4096], sock[400];
    snprintf(sock, sizeof(sock), "%s/no-pcscd.comm", svc.dir);
    setenv("PCSCLITE_CSOCK_NAME", sock, 1);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "read", "--timeout", "200", NULL),
                     3);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "read", "--timeout", "200",
                                 "No Such Reader", NULL),
                     3);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "read", "--bogus", NULL), 2);
    unsetenv("PCSCLITE_CSOCK_NAME");
}

static void test_stock(void **state)
{
    (void)state;
    char out[4096];
    struct reply r;
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-CLI-1", "A00000001", "20", NULL),
        0);
    assert_non_null(strstr(out, "A00000001..A00000020"));
    /* The API counts what the CLI received, under the same rules. */
    assert_int_equal(http_get(&svc, operator_, "/v1/stock", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *b = json_array_get(json_object_get(r.json, "batches"), 0);
    assert_string_equal(json_string_value(json_object_get(b, "batch_no")), "B-CLI-1");
    assert_int_equal(json_integer_value(json_object_get(b, "received")), 20);
    assert_int_equal(json_integer_value(json_object_get(b, "available")), 20);
    json_t *t = json_object_get(r.json, "totals");
    assert_int_equal(json_integer_value(json_object_get(t, "received")), 20);
    assert_int_equal(json_integer_value(json_object_get(t, "available")), 20);
    reply_free(&r);
    assert_int_equal(sql_long("SELECT count(*) FROM audit_log WHERE action = 'stock.received'"
                              " AND actor LIKE 'cardctl:%'"),
                     1);
    assert_int_equal(sql_long("SELECT count(*) FROM stock_batches WHERE batch_no = 'B-CLI-1'"
                              " AND received_by LIKE 'cardctl:%'"),
                     1);

    /* The same delivery again changes nothing; a different one, or serials
     * of another batch, are refused and leave nothing behind. */
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-CLI-1", "A00000001", "20", NULL),
        0);
    assert_non_null(strstr(out, "nothing changed"));
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-CLI-1", "A00000001", "21", NULL),
        1);
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-CLI-2", "A00000015", "10", NULL),
        1);
    assert_int_equal(sql_long("SELECT count(*) FROM stock_batches WHERE batch_no = 'B-CLI-2'"), 0);
    /* Broken rules are usage errors, said plainly. */
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "b 1", "A00000001", "5", NULL), 2);
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-3", "ABCDEFGHIJ", "5", NULL), 2);
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-3", "ZZZZZZZ98", "5", NULL), 2);
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-3", "C00000001", "0", NULL), 2);
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "stock", "receive", "B-3", "C00000001", "5x", NULL), 2);
    assert_int_equal(sql_long("SELECT count(*) FROM stock_batches"), 1);

    /* An API batch shows in the CLI's census with the totals. */
    assert_int_equal(
        http_post_json(&svc, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"B-API-1\",\"first_serial\":\"D00000001\",\"count\":5}", &r),
        0);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "stock", NULL), 0);
    assert_non_null(strstr(out, "B-CLI-1"));
    assert_non_null(strstr(out, "B-API-1"));
    const char *total = strstr(out, "total");
    assert_non_null(total);
    long received = 0, used = -1, spoiled = -1, destroyed = -1, in_prod = -1, available = 0;
    assert_int_equal(sscanf(total, "total %ld %ld %ld %ld %ld %ld", &received, &used, &spoiled,
                            &destroyed, &in_prod, &available),
                     6);
    assert_int_equal(received, 25);
    assert_int_equal(available, 25);
    assert_int_equal(used + spoiled + destroyed + in_prod, 0);
}

/* Width and height from a PNG's IHDR, or -1 when it is not a PNG. */
static int png_size(const char *path, long *w, long *h)
{
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    unsigned char head[24];
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(head, 1, sizeof(head), f);
    fclose(f);
    if (n != sizeof(head) || memcmp(head, sig, 8) != 0 || memcmp(head + 12, "IHDR", 4) != 0)
        return -1;
    *w = (long)head[16] << 24 | (long)head[17] << 16 | (long)head[18] << 8 | head[19];
    *h = (long)head[20] << 24 | (long)head[21] << 16 | (long)head[22] << 8 | head[23];
    return 0;
}

static void test_card_face(void **state)
{
    (void)state;
    char out[4096], png[400];
    long w = 0, h = 0;
    submit("RQ-FACE-1", "100000010", "national_id");
    submit("RQ-FACE-2", "100000011", "family_record");

    /* Before production: a preview. */
    snprintf(png, sizeof(png), "%s/preview.png", svc.dir);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "face", "RQ-FACE-1", png, NULL),
                     0);
    assert_non_null(strstr(out, "PREVIEW"));
    assert_int_equal(png_size(png, &w, &h), 0);
    assert_int_equal(w, 1016);
    assert_int_equal(h, 648);
    snprintf(png, sizeof(png), "%s/family.png", svc.dir);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "face", "RQ-FACE-2", png, NULL),
                     0);
    assert_int_equal(png_size(png, &w, &h), 0);
    assert_int_equal(w, 1016);
    assert_int_equal(h, 648);

    /* A produced card: its serial, and ten years from its issue date. */
    assert_int_equal(
        harness_sql(
            NULL, 0,
            "WITH a AS (INSERT INTO production_attempts (request_id, card_serial, station_id,"
            " instance, started_at, finished_at, outcome, step)"
            " SELECT id, 'A00000007', 'st1', 'x', '2026-01-10T12:00:00Z',"
            " '2026-01-10T12:01:00Z', 'produced', 'eject'"
            " FROM requests WHERE request_no = 'RQ-FACE-1' RETURNING request_id)"
            " UPDATE cards SET state = 'used', request_id = a.request_id, station_id = 'st1'"
            " FROM a WHERE serial = 'A00000007'"),
        0);
    snprintf(png, sizeof(png), "%s/card.png", svc.dir);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "face", "RQ-FACE-1", png, NULL),
                     0);
    assert_non_null(strstr(out, "A00000007"));
    assert_non_null(strstr(out, "2036-01-10"));
    assert_int_equal(png_size(png, &w, &h), 0);
    assert_int_equal(w, 1016);
    assert_int_equal(h, 648);

    /* A produced family record: issued the day it was produced (Riyadh),
     * whatever the holder's birth date; the face's fields say so. */
    assert_int_equal(
        harness_sql(
            NULL, 0,
            "WITH a AS (INSERT INTO production_attempts (request_id, card_serial, station_id,"
            " instance, started_at, finished_at, outcome, step)"
            " SELECT id, 'A00000008', 'st1', 'x', '2026-03-04T22:30:00Z',"
            " '2026-03-04T22:31:00Z', 'produced', 'eject'"
            " FROM requests WHERE request_no = 'RQ-FACE-2' RETURNING request_id)"
            " UPDATE cards SET state = 'used', request_id = a.request_id, station_id = 'st1'"
            " FROM a WHERE serial = 'A00000008'"),
        0);
    char birth[16] = "";
    assert_int_equal(harness_sql(birth, sizeof(birth),
                                 "SELECT to_char(birth_date, 'YYYY-MM-DD') FROM requests"
                                 " WHERE request_no = 'RQ-FACE-2'"),
                     0);
    snprintf(png, sizeof(png), "%s/family-made.png", svc.dir);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "face", "RQ-FACE-2", png, NULL),
                     0);
    /* 22:30 UTC on 4 March is 5 March in Riyadh (UTC+3). */
    assert_non_null(strstr(out, "Issue Date: 2026-03-05"));
    assert_non_null(strstr(out, "Record No.: A00000008"));
    char birth_line[64];
    snprintf(birth_line, sizeof(birth_line), ": %s", birth);
    assert_null(strstr(out, birth_line));

    /* Unknown request, unwritable file: failures, no file. */
    snprintf(png, sizeof(png), "%s/unknown.png", svc.dir);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "face", "RQ-NOPE", png, NULL), 1);
    assert_int_equal(access(png, F_OK), -1);
    snprintf(png, sizeof(png), "%s/no/such/dir/x.png", svc.dir);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "card", "face", "RQ-FACE-1", png, NULL),
                     1);
}

static void test_stations(void **state)
{
    (void)state;
    char out[4096];
    struct reply r;
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "stations", NULL), 0);
    assert_non_null(strstr(out, "st1"));
    assert_non_null(strstr(out, "st2"));

    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "station", "pause", "st1", NULL), 0);
    assert_non_null(strstr(out, "paused"));
    assert_int_equal(http_get(&svc, operator_, "/v1/stations", &r), 0);
    assert_string_equal(json_string_value(json_object_get(station(&r, "st1"), "state")), "paused");
    assert_true(json_is_true(json_object_get(station(&r, "st1"), "paused")));
    reply_free(&r);
    assert_int_equal(sql_long("SELECT count(*) FROM audit_log WHERE action = 'station.paused'"
                              " AND station_id = 'st1' AND actor LIKE 'cardctl:_%'"),
                     1);

    /* A printer error shows with its reason; a resume clears it. */
    assert_int_equal(harness_sql(NULL, 0,
                                 "UPDATE stations SET state = 'error', error_reason = 'ribbon_out'"
                                 " WHERE id = 'st2'"),
                     0);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "stations", NULL), 0);
    assert_non_null(strstr(out, "ribbon_out"));
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "station", "resume", "st2", NULL), 0);
    assert_int_equal(http_get(&svc, operator_, "/v1/stations", &r), 0);
    assert_string_not_equal(json_string_value(json_object_get(station(&r, "st2"), "state")),
                            "error");
    assert_true(json_is_null(json_object_get(station(&r, "st2"), "reason")) ||
                strcmp(json_string_value(json_object_get(station(&r, "st2"), "reason")),
                       "ribbon_out") != 0);
    reply_free(&r);

    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "station", "resume", "st1", NULL), 0);
    assert_int_equal(http_get(&svc, operator_, "/v1/stations", &r), 0);
    assert_false(json_is_true(json_object_get(station(&r, "st1"), "paused")));
    assert_string_not_equal(json_string_value(json_object_get(station(&r, "st1"), "state")),
                            "paused");
    reply_free(&r);
    assert_int_equal(sql_long("SELECT count(*) FROM audit_log WHERE action = 'station.resumed'"
                              " AND actor LIKE 'cardctl:_%'"),
                     2);

    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "station", "pause", "st9", NULL), 1);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "station", "resume", "st9", NULL), 1);
}

static void test_queue_and_release(void **state)
{
    (void)state;
    char out[8192];
    submit("RQ-Q-1", "100000020", "national_id");
    submit("RQ-Q-2", "100000021", "national_id");
    submit("RQ-Q-3", "100000022", "national_id");
    assert_int_equal(harness_sql(NULL, 0,
                                 "UPDATE requests SET spoiled_cards = 3, status = 'in_production',"
                                 " hold_reason = 'held after 3 spoiled cards: update_binary: 6A84'"
                                 " WHERE request_no = 'RQ-Q-2'"),
                     0);

    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "queue", NULL), 0);
    /* Oldest first; the held one says why. */
    const char *q1 = strstr(out, "RQ-Q-1"), *q2 = strstr(out, "RQ-Q-2"),
               *q3 = strstr(out, "RQ-Q-3");
    assert_non_null(q1);
    assert_non_null(q2);
    assert_non_null(q3);
    assert_true(q1 < q2 && q2 < q3);
    assert_non_null(strstr(out, "held after 3 spoiled cards: update_binary: 6A84"));
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "queue", "--limit", "1", NULL), 0);
    assert_non_null(strstr(out, "more"));

    /* The API agrees on what waits. */
    struct reply r;
    assert_int_equal(http_get(&svc, operator_, "/v1/production/queue", &r), 0);
    size_t i;
    json_t *it;
    bool held_seen = false;
    json_array_foreach(
        json_object_get(r.json, "items"), i,
        it) if (strcmp(json_string_value(json_object_get(it, "request_no")), "RQ-Q-2") == 0)
        held_seen = json_is_string(json_object_get(it, "hold_reason"));
    assert_true(held_seen);
    reply_free(&r);

    /* Released: the hold goes, the count of spoiled cards stays, the audit log says who. */
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "request", "release", "RQ-Q-2", NULL), 0);
    assert_non_null(strstr(out, "RQ-Q-2"));
    assert_int_equal(
        sql_long("SELECT count(*) FROM requests WHERE request_no = 'RQ-Q-2'"
                 " AND hold_reason IS NULL AND spoiled_cards = 3 AND status = 'in_production'"),
        1);
    assert_int_equal(sql_long("SELECT count(*) FROM audit_log WHERE action = 'request.released'"
                              " AND request_no = 'RQ-Q-2' AND actor LIKE 'cardctl:_%'"
                              " AND detail->>'hold_reason' LIKE 'held after 3%'"),
                     1);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "queue", NULL), 0);
    assert_null(strstr(out, "held after"));

    /* Not held, unknown, or no longer waiting: nothing to release. */
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "request", "release", "RQ-Q-2", NULL), 1);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "request", "release", "RQ-NOPE", NULL), 1);
    assert_int_equal(harness_sql(NULL, 0,
                                 "UPDATE requests SET status = 'cancelled', hold_reason = 'x'"
                                 " WHERE request_no = 'RQ-Q-3'"),
                     0);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "request", "release", "RQ-Q-3", NULL), 1);
    assert_int_equal(sql_long("SELECT count(*) FROM audit_log WHERE action = 'request.released'"),
                     1);
}

/* Lines of out that start with a clock, "HH:MM:SS  queued". */
static int progress_lines(const char *out)
{
    int n = 0;
    for (const char *p = strstr(out, "  queued "); p; p = strstr(p + 1, "  queued "))
        n++;
    return n;
}

static void test_watch(void **state)
{
    (void)state;
    char out[16384];
    /* Requests still waiting from the tests before: the watch goes on
     * until they are gone, redrawing as plain lines on a pipe. */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        usleep(1200 * 1000);
        _exit(harness_sql(NULL, 0,
                          "UPDATE requests SET status = 'cancelled'"
                          " WHERE status IN ('queued','in_production')") == 0
                  ? 0
                  : 1);
    }
    assert_int_equal(
        harness_ctl(&svc, out, sizeof(out), "watch", "--interval", "0.2", "--until-idle", NULL), 0);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(progress_lines(out) >= 2);
    assert_null(strchr(out, '\r'));
    assert_non_null(strstr(out, "queued 0 (held 0) | in production 0"));
    assert_non_null(strstr(out, "cards/h"));

    /* Nothing waits: one line and out. */
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "watch", "--until-idle", NULL), 0);
    assert_int_equal(progress_lines(out), 1);
    assert_non_null(strstr(out, "stations"));
}

/* A database that cannot be reached is a failure of every command that needs it. */
static void test_database_unreachable(void **state)
{
    (void)state;
    struct service bad = svc;
    char out[4096];
    snprintf(bad.config, sizeof(bad.config), "%s/unreachable.conf", svc.dir);
    FILE *f = fopen(bad.config, "w");
    assert_non_null(f);
    fprintf(f, "database = dbname=it_no_such_database connect_timeout=2\n");
    fclose(f);
    assert_int_equal(harness_ctl(&bad, out, sizeof(out), "stations", NULL), 1);
    assert_int_equal(harness_ctl(&bad, out, sizeof(out), "queue", NULL), 1);
    assert_int_equal(harness_ctl(&bad, out, sizeof(out), "stock", NULL), 1);
    assert_int_equal(harness_ctl(&bad, out, sizeof(out), "watch", "--until-idle", NULL), 1);
    assert_int_equal(harness_ctl(&bad, out, sizeof(out), "station", "pause", "st1", NULL), 1);
    /* Usage is checked before the database is needed. */
    assert_int_equal(
        harness_ctl(&bad, out, sizeof(out), "stock", "receive", "B-9", "A1", "x", NULL), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),    cmocka_unit_test(test_card_read_without_reader),
        cmocka_unit_test(test_stock),    cmocka_unit_test(test_card_face),
        cmocka_unit_test(test_stations), cmocka_unit_test(test_queue_and_release),
        cmocka_unit_test(test_watch),    cmocka_unit_test(test_database_unreachable),
    };
    return cmocka_run_group_tests_name("cardctl", tests, group_setup, group_teardown);
}
