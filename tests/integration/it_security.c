/* it_security.c — least privilege through the real service and PostgreSQL:
 * branch-bound tokens, the token's life (list, revoke, expire), the
 * failed-look-up limits (reserved atomically, IPv6 by /64, forwarded
 * addresses from trusted proxies only) and the handover's limit. */
#include "harness.h"

#include <curl/curl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static struct service svc;
static char intake[128], operator_[128], shf_desk[128], oly_desk[128];
static char track_no[40], track_nid[11];

static int group_setup(void **state)
{
    (void)state;
    char path[512], out[256];
    /* The harness calls from 127.0.0.1 unless told otherwise: that address is
     * the trusted proxy here. */
    /* 60 look-ups at once from one address need more than its default
     * share of connections (per_ip_connections). */
    if (harness_setup(&svc, "trusted_proxies = 127.0.0.1, 10.9.0.0/16\n"
                            "per_ip_connections = 128\n") != 0)
        return -1;
    if (harness_ctl(&svc, out, sizeof(out), "branches", "import",
                    harness_src("../shared/reference/branches.csv", path, sizeof(path)), NULL) != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-huda", operator_, sizeof(operator_)) ||
        harness_branch_token(&svc, "RUH-SHF", "shf-desk", shf_desk, sizeof(shf_desk)) ||
        harness_branch_token(&svc, "RUH-OLY", "oly-desk", oly_desk, sizeof(oly_desk)))
        return -1;
    if (harness_start(&svc) != 0)
        return -1;
    harness_fresh_nid(track_nid);
    harness_fresh_no("RQ-SEC", track_no, sizeof(track_no));
    char *body = sample_request(track_no, track_nid, "national_id", "lost");
    struct reply r;
    int rc = http_post_json(&svc, intake, "/v1/requests", body, &r);
    free(body);
    rc = rc || r.status != 201;
    reply_free(&r);
    return rc ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return harness_stop(&svc, false);
}

static long handover(const char *token, const char *branch, const char *no, const char *nid)
{
    char path[128], body[256];
    struct reply r;
    snprintf(path, sizeof(path), "/v1/branches/%s/handover", branch);
    snprintf(body, sizeof(body), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    assert_int_equal(http_post_json(&svc, token, path, body, &r), 0);
    long status = r.status;
    reply_free(&r);
    return status;
}

/* A branch token works at its own branch only; cardctl binds it at birth. */
static void test_branch_token_bound(void **state)
{
    (void)state;
    char out[256], wrong[11];
    harness_fresh_nid(wrong);
    /* At its own branch the call is heard (the request is not there: 409/404). */
    long own = handover(shf_desk, "RUH-SHF", track_no, track_nid);
    assert_true(own == 409);
    /* Another branch's path: 403, whatever the body. */
    assert_int_equal(handover(shf_desk, "RUH-OLY", track_no, track_nid), 403);
    assert_int_equal(handover(oly_desk, "RUH-SHF", track_no, track_nid), 403);
    assert_int_equal(handover(shf_desk, "NO-SUCH-1", track_no, track_nid), 403);
    /* Other roles are refused as before. */
    assert_int_equal(handover(operator_, "RUH-SHF", track_no, track_nid), 403);

    /* cardctl: a branch token needs --branch, a known one; no other role takes one. */
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "token", "create", "--role", "branch",
                                 "--name", "loose-desk", NULL),
                     2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "token", "create", "--role", "operator",
                                 "--branch", "RUH-SHF", "--name", "op-at-branch", NULL),
                     2);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "token", "create", "--role", "branch",
                                 "--branch", "NO-SUCH-1", "--name", "ghost-desk", NULL),
                     1);
    /* The database refuses a branch token without a branch, whoever writes it. */
    assert_int_not_equal(harness_sql(out, sizeof(out),
                                     "INSERT INTO api_tokens (name, role, token_hash)"
                                     " VALUES ('raw-desk', 'branch', sha256('x'::bytea))"),
                         0);
}

/* Revoked and expired tokens are refused at once; token list shows the life. */
static void test_token_lifecycle(void **state)
{
    (void)state;
    char tok[128], tok2[128], out[4096];
    struct reply r;
    assert_int_equal(harness_token(&svc, "operator", "op-temp", tok, sizeof(tok)), 0);
    assert_int_equal(http_get(&svc, tok, "/v1/stations", &r), 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "token", "revoke", "op-temp", NULL), 0);
    assert_int_equal(http_get(&svc, tok, "/v1/stations", &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "token", "revoke", "no-such", NULL), 1);

    assert_int_equal(harness_ctl(&svc, tok2, sizeof(tok2), "token", "create", "--role", "operator",
                                 "--name", "op-month", "--expires", "30", NULL),
                     0);
    assert_int_equal(http_get(&svc, tok2, "/v1/stations", &r), 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "token", "create", "--role", "operator",
                                 "--name", "op-bad", "--expires", "0", NULL),
                     2);
    /* Its month has passed. */
    assert_int_equal(harness_sql(out, sizeof(out),
                                 "UPDATE api_tokens SET created_at = now() - interval '31 days',"
                                 " expires_at = now() - interval '1 day' WHERE name = 'op-month'"),
                     0);
    assert_int_equal(http_get(&svc, tok2, "/v1/stations", &r), 0);
    assert_int_equal(r.status, 401);
    reply_free(&r);

    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "token", "list", NULL), 0);
    assert_non_null(strstr(out, "NAME"));
    assert_non_null(strstr(out, "LAST USED"));
    char *line = strstr(out, "\nop-temp ");
    assert_non_null(line);
    char *eol = strchr(line + 1, '\n');
    if (eol)
        *eol = '\0';
    /* created, last used and revoked are filled; expires is not. */
    int stamps = 0;
    for (char *p = line; (p = strstr(p, "Z")) != NULL; p++)
        stamps++;
    assert_int_equal(stamps, 3);
    if (eol)
        *eol = '\n';
    line = strstr(out, "\nshf-desk ");
    assert_non_null(line);
    assert_non_null(strstr(line, "RUH-SHF"));
    /* Token changes are in the audit log, named, never with the token. */
    assert_int_equal(harness_sql(out, sizeof(out),
                                 "SELECT count(*) FROM audit_log WHERE action = 'token.revoked'"
                                 " AND detail->>'token' = 'op-temp'"),
                     0);
    assert_string_equal(out, "1");
    char q[256];
    snprintf(q, sizeof(q), "SELECT count(*) FROM audit_log WHERE detail::text LIKE '%%%.20s%%'",
             tok);
    assert_int_equal(harness_sql(out, sizeof(out), q), 0);
    assert_string_equal(out, "0");
}

static long track(const char *nid, const char *xff)
{
    char body[256], fwd[128];
    const char *headers[] = { "Content-Type: application/json", fwd, NULL };
    snprintf(body, sizeof(body), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", track_no, nid);
    snprintf(fwd, sizeof(fwd), "X-Forwarded-For: %s", xff ? xff : "");
    if (!xff)
        headers[1] = NULL;
    struct reply r;
    assert_int_equal(http_call(&svc, "POST", "/v1/track", headers, body, strlen(body), &r), 0);
    long status = r.status;
    reply_free(&r);
    return status;
}

struct racer {
    pthread_barrier_t *go;
    char nid[11];
    long status;
};

static void *race(void *arg)
{
    struct racer *me = arg;
    pthread_barrier_wait(me->go);
    me->status = track(me->nid, NULL);
    return NULL;
}

/* 60 wrong look-ups at once from one address: at most 10 are looked up. */
static void test_track_limit_under_concurrency(void **state)
{
    (void)state;
    enum {
        N = 60
    };
    struct racer racers[N];
    pthread_t th[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    harness_source_ip = "127.0.0.31";
    for (int i = 0; i < N; i++) {
        racers[i].go = &go;
        harness_fresh_nid(racers[i].nid);
        assert_int_equal(pthread_create(&th[i], NULL, race, &racers[i]), 0);
    }
    int n404 = 0, n429 = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        n404 += racers[i].status == 404;
        n429 += racers[i].status == 429;
    }
    pthread_barrier_destroy(&go);
    harness_source_ip = NULL;
    printf("# 60 concurrent wrong look-ups: %d answered 404, %d answered 429\n", n404, n429);
    assert_true(n404 <= 10);
    assert_true(n404 >= 1);
    assert_int_equal(n404 + n429, N);
}

/* Behind a trusted proxy the forwarded address is the client, IPv6 counted
 * by /64; from anyone else a forwarded address is ignored. */
static void test_forwarded_addresses(void **state)
{
    (void)state;
    char wrong[11];
    harness_fresh_nid(wrong);
    /* Two addresses of one /64, behind the trusted proxy: one limit. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(track(wrong, "2001:db8:7:1::a"), 404);
    for (int i = 0; i < 5; i++)
        assert_int_equal(track(wrong, "2001:db8:7:1:ffff:1:2:3"), 404);
    assert_int_equal(track(wrong, "2001:db8:7:1::a"), 429);
    assert_int_equal(track(track_nid, "2001:db8:7:1::bb"), 429);
    /* The next /64 is someone else. */
    assert_int_equal(track(track_nid, "2001:db8:7:2::a"), 200);
    /* Through a chain of trusted proxies, the first untrusted hop is the client. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(track(wrong, "198.51.100.7, 10.9.3.4"), 404);
    assert_int_equal(track(wrong, "198.51.100.7"), 429);
    /* ... and what the client itself wrote to the left is not believed. */
    assert_int_equal(track(wrong, "203.0.113.99, 198.51.100.7"), 429);
    assert_int_equal(track(track_nid, "198.51.100.8"), 200);

    /* An untrusted peer's forwarded address is ignored: the peer is the client. */
    harness_source_ip = "127.0.0.32";
    for (int i = 0; i < 10; i++) {
        char fwd[40];
        snprintf(fwd, sizeof(fwd), "192.0.2.%d", i + 1);
        assert_int_equal(track(wrong, fwd), 404);
    }
    assert_int_equal(track(wrong, "192.0.2.200"), 429);
    assert_int_equal(track(track_nid, NULL), 429);
    harness_source_ip = NULL;
}

/* A branch cannot use the handover to test national IDs: failed matches
 * are limited like tracking look-ups; a good match is never refused below
 * the limit. */
static void test_handover_limited(void **state)
{
    (void)state;
    char wrong[11], no[40], nid[11];
    harness_fresh_no("RQ-SEC", no, sizeof(no));
    harness_fresh_nid(nid);
    harness_source_ip = "127.0.0.33";
    for (int i = 0; i < 9; i++) {
        harness_fresh_nid(wrong);
        assert_int_equal(handover(oly_desk, "RUH-OLY", track_no, wrong), 404);
    }
    /* The right holder (card not here yet) is not a failed match. */
    assert_int_equal(handover(oly_desk, "RUH-OLY", track_no, track_nid), 409);
    assert_int_equal(handover(oly_desk, "RUH-OLY", track_no, track_nid), 409);
    assert_int_equal(handover(oly_desk, "RUH-OLY", no, nid), 404);
    assert_int_equal(handover(oly_desk, "RUH-OLY", track_no, track_nid), 429);
    /* The limit follows the token to another address. */
    harness_source_ip = "127.0.0.34";
    assert_int_equal(handover(oly_desk, "RUH-OLY", no, nid), 429);
    /* Another desk at another address is not affected. */
    assert_int_equal(handover(shf_desk, "RUH-SHF", no, nid), 404);
    harness_source_ip = NULL;
}

/* The service's database role reads and writes rows and nothing more: the
 * audit log and the event tables are append-only for it, and it cannot
 * alter a table, disable or drop a trigger, or create anything. */
static void test_service_role_cannot_rewrite_history(void **state)
{
    (void)state;
    char out[256];
    /* There is history to rewrite: the set-up's request and tokens. */
    assert_int_equal(harness_sql_as_service(out, sizeof(out), "SELECT count(*) > 0 FROM audit_log"),
                     0);
    assert_string_equal(out, "t");
    static const char *const refused[] = {
        "UPDATE audit_log SET actor = 'nobody'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_log_no_change ON audit_log",
        "DROP TABLE audit_log",
        "ALTER TABLE audit_log OWNER TO cardd_it_service",
        "UPDATE request_events SET actor = 'nobody'",
        "DELETE FROM request_events",
        "TRUNCATE request_events",
        "UPDATE courier_events SET code = 'delivered'",
        "UPDATE courier_events SET moved_status = NOT moved_status",
        "DELETE FROM courier_events",
        "TRUNCATE requests",
        "ALTER TABLE requests DROP CONSTRAINT requests_phone_check",
        "DROP FUNCTION audit_log_is_append_only() CASCADE",
        "CREATE TABLE mine (x int)",
        "CREATE OR REPLACE FUNCTION rfc3339(t timestamptz) RETURNS text LANGUAGE sql AS $$ SELECT '' $$",
        "DELETE FROM schema_migrations",
        "INSERT INTO schema_migrations (version, name, sha256) VALUES (999, 'x', 'x')",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (harness_sql_as_service(out, sizeof(out), refused[i]) == 0)
            fail_msg("the service's role may run: %s", refused[i]);
    /* It still appends and reads. */
    assert_int_equal(harness_sql_as_service(out, sizeof(out),
                                            "INSERT INTO audit_log (actor, action)"
                                            " VALUES ('it', 'it.append') RETURNING action"),
                     0);
    assert_string_equal(out, "it.append");
    /* It owns nothing. */
    assert_int_equal(harness_sql(out, sizeof(out),
                                 "SELECT count(*) FROM pg_class"
                                 " WHERE relowner = 'cardd_it_service'::regrole"),
                     0);
    assert_string_equal(out, "0");
    /* The owner could (so the refusals above are the role's, not the table's). */
    assert_int_equal(harness_sql_as_owner(out, sizeof(out),
                                          "BEGIN; ALTER TABLE audit_log DISABLE TRIGGER"
                                          " audit_log_no_change; ROLLBACK"),
                     0);
    /* The service runs as that role and says nothing about running as the owner. */
    FILE *f = fopen(svc.log, "r");
    assert_non_null(f);
    char line[1024];
    while (fgets(line, sizeof(line), f))
        assert_null(strstr(line, "owner of the schema"));
    fclose(f);
    assert_int_equal(harness_sql(out, sizeof(out),
                                 "SELECT count(*) FROM pg_stat_activity WHERE usename ="
                                 " 'cardd_it_service' AND datname = current_database()"),
                     0);
    assert_true(atoi(out) >= 1);
}

/* A path with %0A cannot forge a log line: control bytes are escaped. */
static void test_log_lines_cannot_be_forged(void **state)
{
    (void)state;
    struct reply r;
    assert_int_equal(
        http_get(&svc, operator_,
                 "/v1/requests/RQ-1%0A2026-01-01T00:00:00.000Z%20error%20forged%0D%1B[2J", &r),
        0);
    assert_true(r.status >= 400 && r.status < 500);
    reply_free(&r);
    /* The request's line is written once the answer has gone: wait for it. */
    bool escaped = false;
    for (int attempt = 0; attempt < 50 && !escaped; attempt++) {
        FILE *f = fopen(svc.log, "r");
        assert_non_null(f);
        char line[4096];
        while (fgets(line, sizeof(line), f)) {
            assert_null(strstr(line, "\r"));
            assert_null(strchr(line, '\x1b')); /* no raw escape sequence */
            if (strncmp(line, "2026-01-01T00:00:00.000Z error forged", 37) == 0)
                fail_msg("a forged line: %s", line);
            if (strstr(line, "RQ-1\\x0a2026-01-01T00:00:00.000Z error forged\\x0d\\x1b[2J"))
                escaped = true;
        }
        fclose(f);
        if (!escaped)
            usleep(100000);
    }
    assert_true(escaped);
}

/* The master key gets the signing key's checks, and once couriers exist the
 * service does not start without it. */
static void test_master_key_required(void **state)
{
    (void)state;
    char out[512], token[128], secret[128], extra[600];
    struct service second;
    /* No courier yet in a fresh database: a service may start without the key. */
    assert_int_equal(harness_ctl(&svc, out, sizeof(out), "courier", "add", "sec-post", NULL), 0);
    assert_int_equal(sscanf(out, "token: %127s secret: %127s", token, secret), 2);
    snprintf(extra, sizeof(extra), "master_key_file = %s/no-such.key\n", svc.dir);
    assert_int_equal(harness_clone(&svc, &second, extra), 0);
    assert_int_not_equal(harness_start(&second), 0);
    FILE *f = fopen(second.log, "r");
    assert_non_null(f);
    bool said = false;
    while (fgets(out, sizeof(out), f))
        said = said || strstr(out, "couriers exist") != NULL;
    fclose(f);
    assert_true(said);

    /* A symlink to the right key, a key another user owns, a key others can read: refused. */
    char link[400], copy[400], master[400];
    snprintf(master, sizeof(master), "%s/master.key", svc.dir);
    snprintf(link, sizeof(link), "%s/link.key", svc.dir);
    assert_int_equal(symlink(master, link), 0);
    snprintf(extra, sizeof(extra), "master_key_file = %s\n", link);
    assert_int_equal(harness_clone(&svc, &second, extra), 0);
    assert_int_not_equal(harness_start(&second), 0);
    snprintf(copy, sizeof(copy), "%s/copy.key", svc.dir);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp -p %s %s", master, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(chmod(copy, 0640), 0);
    snprintf(extra, sizeof(extra), "master_key_file = %s\n", copy);
    assert_int_equal(harness_clone(&svc, &second, extra), 0);
    assert_int_not_equal(harness_start(&second), 0);
    assert_int_equal(chmod(copy, 0600), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(copy, 1, 1), 0);
        assert_int_equal(harness_clone(&svc, &second, extra), 0);
        assert_int_not_equal(harness_start(&second), 0);
        assert_int_equal(chown(copy, 0, 0), 0);
    }
    /* The same copy, the service's own and 0600: it starts and verifies couriers. */
    assert_int_equal(harness_clone(&svc, &second, extra), 0);
    assert_int_equal(harness_start(&second), 0);
    struct reply r;
    assert_int_equal(http_get(&second, NULL, "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(harness_stop(&second, false), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_branch_token_bound),
        cmocka_unit_test(test_token_lifecycle),
        cmocka_unit_test(test_track_limit_under_concurrency),
        cmocka_unit_test(test_forwarded_addresses),
        cmocka_unit_test(test_handover_limited),
        cmocka_unit_test(test_service_role_cannot_rewrite_history),
        cmocka_unit_test(test_log_lines_cannot_be_forged),
        cmocka_unit_test(test_master_key_required),
    };
    int rc = cmocka_run_group_tests_name("security", tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
