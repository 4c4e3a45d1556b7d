/* it_migrate.c — cardd migrate and cardd serve on an empty database:
 * a server that speaks another language is understood (the missing table
 * is known by its SQLSTATE, not by its English message), a refused CREATE
 * is reported in words, and the table of versions is only created under
 * the migration lock. */
#include "harness.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define MIGRATION_LOCK "7303" /* src/db.c */

static bool file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/* A connection to the test's database (PGDATABASE). */
static PGconn *connect_db(void)
{
    PGconn *c = PQconnectdb("");
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect: %s", PQerrorMessage(c));
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static bool table_exists(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("to_regclass: %s", PQerrorMessage(c));
    bool yes = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return yes;
}

/* The server answers this database in German. */
static void test_other_language(void **state)
{
    (void)state;
    struct service svc;
    char out[512], sql[200];
    assert_int_equal(harness_setup_unmigrated(&svc, NULL), 0);
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET lc_messages TO 'de_DE.UTF-8'",
             getenv("PGDATABASE"));
    if (harness_sql(NULL, 0, sql) != 0)
        fail_msg("lc_messages de_DE.UTF-8 refused: the locale is missing (scripts/deps.sh "
                 "makes it)");

    /* The premise: a missing table is not "does not exist" here. */
    PGconn *c = connect_db();
    PGresult *r = PQexec(c, "SELECT 1 FROM schema_migrations");
    const char *state_ = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    assert_non_null(state_);
    assert_string_equal(state_, "42P01");
    assert_non_null(msg);
    if (strstr(msg, "does not exist"))
        fail_msg("the server still answers in English (%s): no German messages", msg);
    PQclear(r);
    PQfinish(c);

    /* Not migrated yet: serve refuses and says the schema is version 0. */
    assert_int_not_equal(harness_start(&svc), 0);
    if (!file_has(svc.log, "database schema is version 0, this build needs"))
        fail_msg("serve did not see an empty database; see %s", svc.log);

    assert_int_equal(harness_migrate(&svc, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "migration(s) applied, schema version"));
    /* A second run finds every migration applied. */
    assert_int_equal(harness_migrate(&svc, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "0 migration(s) applied"));

    assert_int_equal(harness_start(&svc), 0);
    struct reply rep;
    assert_int_equal(http_get(&svc, NULL, "/readyz", &rep), 0);
    assert_int_equal(rep.status, 200);
    reply_free(&rep);
    assert_int_equal(harness_stop(&svc, false), 0);
}

/* A CREATE the server refuses is reported with the server's reason. */
static void test_create_refused(void **state)
{
    (void)state;
    struct service svc;
    char out[512], sql[200], extra[200];
    /* cardd migrate connects with migrate_database (the owner's, in the
     * harness's config): here a role that may not create. */
    snprintf(extra, sizeof(extra), "migrate_database = user=it_mig_%d password=mig\n",
             (int)getpid());
    assert_int_equal(harness_setup_unmigrated(&svc, extra), 0);
    /* Since PostgreSQL 15 only the owner may create in schema public. */
    snprintf(sql, sizeof(sql), "CREATE ROLE it_mig_%d LOGIN PASSWORD 'mig'", (int)getpid());
    assert_int_equal(harness_sql(NULL, 0, sql), 0);

    assert_int_equal(harness_migrate(&svc, out, sizeof(out)), 1);
    if (!strstr(out, "cardd: migrate failed: schema_migrations: permission denied"))
        fail_msg("migrate said: %s", out);
}

/* While another instance holds the migration lock, nothing is created. */
static void test_create_waits_for_lock(void **state)
{
    (void)state;
    struct service svc;
    char bin[512], log[400];
    assert_int_equal(harness_setup_unmigrated(&svc, NULL), 0);
    PGconn *c = connect_db();
    exec_ok(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")");

    snprintf(log, sizeof(log), "%s/migrate.log", svc.dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(1, 2) < 0)
            _exit(126);
        execl(harness_bin("cardd", bin, sizeof(bin)), "cardd", "-c", svc.config, "migrate",
              (char *)NULL);
        _exit(127);
    }
    /* Once it waits for the lock, it must not have created the table. */
    int status = 0;
    bool waiting = false;
    for (int i = 0; i < 600 && !waiting; i++) {
        usleep(50000);
        assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
        PGresult *r = PQexec(c, "SELECT count(*) FROM pg_locks"
                                " WHERE locktype = 'advisory' AND NOT granted");
        waiting = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
        PQclear(r);
    }
    assert_true(waiting);
    bool created_early = table_exists(c);
    exec_ok(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")");
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(created_early);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("migrate failed; see %s", log);
    assert_true(table_exists(c));
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_language),
        cmocka_unit_test(test_create_refused),
        cmocka_unit_test(test_create_waits_for_lock),
    };
    return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
