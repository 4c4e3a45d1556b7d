/* db.h — the only door to PostgreSQL. Every statement is parameterised; no
 * other module includes libpq. Results are read as text, as libpq gives them. */
#ifndef CARDD_DB_H
#define CARDD_DB_H

#include <stdbool.h>
#include <stddef.h>

struct db;      /* one connection */
struct db_pool; /* a fixed set of connections shared by threads */
struct db_res;  /* the rows of one statement */

/* Errors, negative like -errno. DB_ECONFLICT is a unique violation, DB_EINVALID
 * a check, foreign-key, not-null or bad-value violation, DB_ERETRY a
 * serialisation failure or deadlock (the transaction may be retried),
 * DB_EDOWN a lost or refused connection, DB_EBUSY a statement or lock
 * time-out (the database is there but too busy to answer in time). */
enum {
    DB_ECONFLICT = -1001,
    DB_EINVALID = -1002,
    DB_ERETRY = -1003,
    DB_EDOWN = -1004,
    DB_EOTHER = -1005,
    DB_EBUSY = -1006,
};

/* Opens one connection. conninfo may be empty (libpq reads PG* variables).
 * Returns 0 or DB_EDOWN; on error *out is NULL and errbuf says why. */
int db_connect(struct db **out, const char *conninfo, char *errbuf, size_t errlen);

/* Closes a connection. NULL-safe. */
void db_close(struct db *db);

/* Runs one statement with text parameters (NULL for SQL NULL). *res, when
 * res is not NULL, receives the rows and must be freed with db_res_free;
 * on error it is NULL. Returns 0 or one of the codes above. */
int db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
            const char *const *params);

/* db_query(db, &res, sql, p1, p2, ...) with at least one parameter. */
#define db_query(db, res, sql, ...)                                                \
    db_exec((db), (res), (sql),                                                    \
            (int)(sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(const char *)), \
            (const char *[]){ __VA_ARGS__ })

/* A statement run often enough to be parsed and planned once per session:
 * declared once, static, beside its caller, e.g.
 *     static const struct db_stmt by_no = {
 *         "request_by_no", "SELECT ... WHERE request_no = $1", 1 };
 * name must be unique in the program (it names the statement on the
 * server); the struct's address tells statements apart on a connection. */
struct db_stmt {
    const char *name;
    const char *sql;
    int nparams;
};

/* Runs stmt as db_exec runs sql, with stmt->nparams text parameters. The
 * statement is prepared on the connection the first time it runs there
 * (PQprepare), then only executed (PQexecPrepared). A connection that was
 * replaced or reset has none prepared, and a statement the server has
 * forgotten is prepared again; a read outside a transaction is retried on a
 * fresh connection as db_exec retries it. Returns as db_exec. */
int db_exec_stmt(struct db *db, struct db_res **res, const struct db_stmt *stmt,
                 const char *const *params);

/* db_query_stmt(db, res, &stmt, p1, p2, ...) with stmt->nparams parameters. */
#define db_query_stmt(db, res, stmt, ...) \
    db_exec_stmt((db), (res), (stmt), (const char *[]){ __VA_ARGS__ })

int db_begin(struct db *db);
int db_commit(struct db *db);
/* Rolls back; safe to call when no transaction is open. */
void db_rollback(struct db *db);

/* The constraint named by the last failed statement ("" if none). */
const char *db_error_constraint(const struct db *db);
/* The server's message of the last failed statement, for logs only. */
const char *db_error_message(const struct db *db);

size_t db_rows(const struct db_res *res);
/* The text of a field; NULL for SQL NULL or out of range. */
const char *db_get(const struct db_res *res, size_t row, int col);
bool db_is_null(const struct db_res *res, size_t row, int col);
/* Convenience: a field as a long, or fallback when NULL or not a number. */
long db_get_long(const struct db_res *res, size_t row, int col, long fallback);
void db_res_free(struct db_res *res);

/* True when the last statement on db failed because the database could not
 * be reached or was too busy to answer in time (DB_EDOWN, DB_EBUSY): the
 * caller should answer "try again later", not "failed". NULL-safe. */
bool db_unavailable(const struct db *db);

/* What every pooled connection is opened with. */
struct db_options {
    int connect_timeout_s;
    int statement_timeout_ms;
    int lock_timeout_ms;
    int idle_tx_timeout_ms;
    int keepalive_idle_s; /* probes every half of it after, 3 lost: dead */
};

/* Pool. db_pool_acquire waits up to timeout_ms for a free connection and
 * returns NULL when none came or the database cannot be reached (logged
 * once per change, not per call). A connection the server dropped is
 * replaced before it is handed out. Statements on a pooled connection that
 * are safe to repeat (BEGIN, SELECT outside a transaction) are retried
 * once on a fresh connection when the connection dies under them. opts may
 * be NULL (no time-outs of our own). */
int db_pool_open(struct db_pool **out, const char *conninfo, int size,
                 const struct db_options *opts);
struct db *db_pool_acquire(struct db_pool *pool, int timeout_ms);
/* Returns a connection; any open transaction is rolled back. NULL-safe. */
void db_pool_release(struct db_pool *pool, struct db *db);
void db_pool_close(struct db_pool *pool);

/* A connection of its own, outside the pool, opened with the pool's
 * settings (for a session that must stay on one connection, such as an
 * advisory lock). Returns 0 or DB_EDOWN (logged by the pool as any). */
int db_pool_connect(struct db_pool *pool, struct db **out);

/* Whether an idle connection is still up, asked without a round trip. */
bool db_alive(struct db *db);

/* Runs the numbered migrations in dir that the database has not seen yet,
 * each in its own transaction, under an advisory lock. Refuses to run when an
 * applied file has changed since. Returns 0 or a negative code; msg says why. */
int db_migrate(struct db *db, const char *dir, char *msg, size_t msglen);

/* The schema version this build expects: the highest migration it ships. */
#define DB_SCHEMA_VERSION 6

/* The database's schema version (0 when none), or a negative code. */
int db_schema_version(struct db *db);

#endif
