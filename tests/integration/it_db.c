/* it_db.c — prepared statements (db_exec_stmt) on the real PostgreSQL:
 * prepared once per pooled connection and then only executed; prepared
 * again on the connection that replaces a dead one, whether the pool
 * replaces it before handing it out or the statement's own retry resets
 * it; prepared again when the session forgot it; kept across a rolled
 * back transaction; errors classified as db_exec classifies them. */
#include "harness.h"

#include "db.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static const struct db_stmt add_one = { "it_db_add_one", "SELECT $1::int + 1", 1 };
static const struct db_stmt insert_key = { "it_db_insert_key",
                                           "INSERT INTO it_db_keys (k) VALUES ($1)", 1 };
static const struct db_stmt broken = { "it_db_broken", "SELECT no_such_column FROM it_db_keys", 0 };

static struct service svc;

static int setup(void **state)
{
    (void)state;
    if (harness_setup_unmigrated(&svc, NULL) != 0)
        return -1;
    return harness_sql(NULL, 0,
                       "CREATE TABLE it_db_keys (k text CONSTRAINT it_db_keys_pk PRIMARY KEY);"
                       " GRANT ALL ON it_db_keys TO PUBLIC");
}

static struct db_pool *pool_of_one(void)
{
    struct db_pool *pool = NULL;
    assert_int_equal(db_pool_open(&pool, "", 1, NULL), 0);
    return pool;
}

/* add_one($1) on db, checked. */
static void check_add_one(struct db *db, const char *n, const char *want)
{
    struct db_res *res = NULL;
    assert_int_equal(db_query_stmt(db, &res, &add_one, n), 0);
    assert_int_equal(db_rows(res), 1);
    assert_string_equal(db_get(res, 0, 0), want);
    db_res_free(res);
}

/* How many statements of that name the session of db has prepared. */
static long prepared_here(struct db *db, const char *name)
{
    struct db_res *res = NULL;
    assert_int_equal(
        db_query(db, &res, "SELECT count(*) FROM pg_prepared_statements WHERE name = $1", name), 0);
    long n = db_get_long(res, 0, 0, -1);
    db_res_free(res);
    return n;
}

static long backend_pid(struct db *db)
{
    struct db_res *res = NULL;
    assert_int_equal(db_exec(db, &res, "SELECT pg_backend_pid()", 0, NULL), 0);
    long pid = db_get_long(res, 0, 0, -1);
    db_res_free(res);
    return pid;
}

static void terminate(long pid)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%ld, 5000)", pid);
    assert_int_equal(harness_sql(NULL, 0, sql), 0);
}

/* Prepared on first use, then run by name: the session holds it once. */
static void test_prepared_once(void **state)
{
    (void)state;
    struct db_pool *pool = pool_of_one();
    struct db *db = db_pool_acquire(pool, 5000);
    assert_non_null(db);
    assert_int_equal(prepared_here(db, "it_db_add_one"), 0);
    check_add_one(db, "1", "2");
    assert_int_equal(prepared_here(db, "it_db_add_one"), 1);
    check_add_one(db, "41", "42");
    check_add_one(db, "-1", "0");
    assert_int_equal(prepared_here(db, "it_db_add_one"), 1);
    /* The same connection, handed out again, keeps it. */
    long pid = backend_pid(db);
    db_pool_release(pool, db);
    db = db_pool_acquire(pool, 5000);
    assert_int_equal(backend_pid(db), pid);
    check_add_one(db, "6", "7");
    assert_int_equal(prepared_here(db, "it_db_add_one"), 1);
    db_pool_release(pool, db);
    db_pool_close(pool);
}

/* A connection the server dropped while idle is replaced (by the pool, or
 * reset by the read's retry); the new session prepares the statement again. */
static void test_replaced_connection(void **state)
{
    (void)state;
    struct db_pool *pool = pool_of_one();
    struct db *db = db_pool_acquire(pool, 5000);
    check_add_one(db, "1", "2");
    long pid = backend_pid(db);
    db_pool_release(pool, db);
    terminate(pid);
    usleep(200 * 1000);
    db = db_pool_acquire(pool, 5000);
    assert_non_null(db);
    check_add_one(db, "2", "3");
    assert_true(backend_pid(db) != pid);
    assert_int_equal(prepared_here(db, "it_db_add_one"), 1);
    db_pool_release(pool, db);
    db_pool_close(pool);
}

/* The connection dies while it is held: the read is retried once on a reset
 * connection, where it is prepared again. */
static void test_reset_under_statement(void **state)
{
    (void)state;
    struct db_pool *pool = pool_of_one();
    struct db *db = db_pool_acquire(pool, 5000);
    check_add_one(db, "1", "2");
    long pid = backend_pid(db);
    terminate(pid);
    usleep(200 * 1000);
    check_add_one(db, "10", "11");
    assert_true(backend_pid(db) != pid);
    assert_int_equal(prepared_here(db, "it_db_add_one"), 1);
    /* A write is not retried: it fails as unavailable, and the next one,
     * after the pool replaced the connection, is prepared afresh. */
    pid = backend_pid(db);
    terminate(pid);
    usleep(200 * 1000);
    assert_int_equal(db_query_stmt(db, NULL, &insert_key, "after-reset"), DB_EDOWN);
    assert_true(db_unavailable(db));
    db_pool_release(pool, db);
    db = db_pool_acquire(pool, 5000);
    assert_non_null(db);
    assert_int_equal(db_query_stmt(db, NULL, &insert_key, "after-reset"), 0);
    db_pool_release(pool, db);
    db_pool_close(pool);
}

/* The session forgot its prepared statements (DEALLOCATE ALL): prepared
 * again, and the call that found it missing still answers. */
static void test_forgotten_by_session(void **state)
{
    (void)state;
    struct db_pool *pool = pool_of_one();
    struct db *db = db_pool_acquire(pool, 5000);
    check_add_one(db, "1", "2");
    assert_int_equal(db_exec(db, NULL, "DEALLOCATE ALL", 0, NULL), 0);
    assert_int_equal(prepared_here(db, "it_db_add_one"), 0);
    check_add_one(db, "3", "4");
    assert_int_equal(prepared_here(db, "it_db_add_one"), 1);
    db_pool_release(pool, db);
    db_pool_close(pool);
}

/* Inside transactions: a statement prepared in a transaction that was
 * rolled back stays prepared; a write's conflict is classified with its
 * constraint; a statement that cannot be prepared fails cleanly, and is
 * tried again (and fails again) the next time, never run half-known. */
static void test_transactions_and_errors(void **state)
{
    (void)state;
    struct db_pool *pool = pool_of_one();
    struct db *db = db_pool_acquire(pool, 5000);
    assert_int_equal(db_begin(db), 0);
    assert_int_equal(db_query_stmt(db, NULL, &insert_key, "a"), 0);
    db_rollback(db);
    assert_int_equal(prepared_here(db, "it_db_insert_key"), 1);
    assert_int_equal(db_query_stmt(db, NULL, &insert_key, "a"), 0);
    assert_int_equal(db_query_stmt(db, NULL, &insert_key, "a"), DB_ECONFLICT);
    assert_string_equal(db_error_constraint(db), "it_db_keys_pk");

    struct db_res *res = NULL;
    assert_int_equal(db_exec_stmt(db, &res, &broken, NULL), DB_EOTHER);
    assert_null(res);
    assert_false(db_unavailable(db));
    assert_int_equal(db_exec_stmt(db, &res, &broken, NULL), DB_EOTHER);
    assert_int_equal(prepared_here(db, "it_db_broken"), 0);
    check_add_one(db, "8", "9");
    db_pool_release(pool, db);
    db_pool_close(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepared_once),           cmocka_unit_test(test_replaced_connection),
        cmocka_unit_test(test_reset_under_statement),   cmocka_unit_test(test_forgotten_by_session),
        cmocka_unit_test(test_transactions_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
