/* db.c — libpq behind a small, parameterised interface, a connection pool
 * and the migration runner. */
#include "db.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct db {
    PGconn *conn;
    int last_rc; /* of the last statement: 0 or a DB_* code */
    char constraint[128];
    char message[256];
    char sqlstate[6]; /* of the last failed statement; "" if none */
    /* The named statements prepared on this session, known by address.
     * A new or reset session has none: the server forgot them. */
    const struct db_stmt **prepared;
    size_t nprepared, capprepared;
};

/* The server knows no prepared statement of that name. */
#define SQLSTATE_UNDEFINED_PSTATEMENT "26000"

/* undefined_table: the server's words for it depend on its lc_messages. */
#define SQLSTATE_UNDEFINED_TABLE "42P01"

struct db_res {
    PGresult *res;
};

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    log_debug("database: %.*s", (int)strcspn(message, "\n"), message);
}

/* Opens a connection with opts' time-outs and keepalives (opts may be
 * NULL: libpq's and the server's defaults). The settings come first, so
 * that the connection string can override any of them. */
static int connect_with(struct db **out, const char *conninfo, const struct db_options *opts,
                        char *errbuf, size_t errlen)
{
    *out = NULL;
    struct db *db = calloc(1, sizeof(*db));
    if (!db)
        return -ENOMEM;
    const char *keys[8];
    const char *values[8];
    char timeout[16], idle[16], interval[16], options[200];
    int n = 0;
    if (opts) {
        snprintf(timeout, sizeof(timeout), "%d", opts->connect_timeout_s);
        snprintf(idle, sizeof(idle), "%d", opts->keepalive_idle_s);
        snprintf(interval, sizeof(interval), "%d",
                 opts->keepalive_idle_s > 1 ? opts->keepalive_idle_s / 2 : 1);
        snprintf(options, sizeof(options),
                 "-c statement_timeout=%d -c lock_timeout=%d"
                 " -c idle_in_transaction_session_timeout=%d",
                 opts->statement_timeout_ms, opts->lock_timeout_ms, opts->idle_tx_timeout_ms);
        keys[n] = "connect_timeout", values[n++] = timeout;
        keys[n] = "keepalives", values[n++] = "1";
        keys[n] = "keepalives_idle", values[n++] = idle;
        keys[n] = "keepalives_interval", values[n++] = interval;
        keys[n] = "keepalives_count", values[n++] = "3";
        keys[n] = "options", values[n++] = options;
    }
    keys[n] = "dbname", values[n++] = conninfo ? conninfo : "";
    keys[n] = NULL, values[n] = NULL;
    db->conn = PQconnectdbParams(keys, values, 1);
    /* What the server says outside a statement (a termination notice) is
     * for the debug log, not stderr: the pool logs the outage once. */
    PQsetNoticeProcessor(db->conn, quiet_notice, NULL);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        if (errbuf)
            snprintf(errbuf, errlen, "%s", PQerrorMessage(db->conn));
        db_close(db);
        return DB_EDOWN;
    }
    *out = db;
    return 0;
}

int db_connect(struct db **out, const char *conninfo, char *errbuf, size_t errlen)
{
    return connect_with(out, conninfo, NULL, errbuf, errlen);
}

void db_close(struct db *db)
{
    if (!db)
        return;
    PQfinish(db->conn);
    free(db->prepared);
    free(db);
}

static int classify(const char *sqlstate)
{
    if (!sqlstate)
        return DB_EDOWN;
    if (strcmp(sqlstate, "23505") == 0)
        return DB_ECONFLICT;
    if (strncmp(sqlstate, "23", 2) == 0 || strncmp(sqlstate, "22", 2) == 0)
        return DB_EINVALID;
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
        return DB_ERETRY;
    /* statement time-out, lock time-out, idle-in-transaction time-out */
    if (strcmp(sqlstate, "57014") == 0 || strcmp(sqlstate, "55P03") == 0 ||
        strcmp(sqlstate, "25P03") == 0)
        return DB_EBUSY;
    if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0)
        return DB_EDOWN;
    return DB_EOTHER;
}

/* A statement that changes nothing when it runs twice: opening a
 * transaction, or a read. */
static bool safe_to_repeat(const char *sql)
{
    return strncmp(sql, "BEGIN", 5) == 0 || strncmp(sql, "SELECT", 6) == 0;
}

static bool is_prepared(const struct db *db, const struct db_stmt *stmt)
{
    for (size_t i = 0; i < db->nprepared; i++)
        if (db->prepared[i] == stmt)
            return true;
    return false;
}

/* Room to note one more prepared statement; false when memory ran out. */
static bool room_for_one(struct db *db)
{
    if (db->nprepared < db->capprepared)
        return true;
    size_t cap = db->capprepared ? db->capprepared * 2 : 8;
    const struct db_stmt **p = realloc(db->prepared, cap * sizeof(*p));
    if (!p)
        return false;
    db->prepared = p;
    db->capprepared = cap;
    return true;
}

/* Runs stmt by name, preparing it on this session first when it is not
 * yet: one parse and plan per session, not one per call. */
static PGresult *run_prepared(struct db *db, const struct db_stmt *stmt, const char *const *params)
{
    if (!is_prepared(db, stmt)) {
        /* Without room to note it, it runs unprepared rather than not. */
        if (!room_for_one(db))
            return PQexecParams(db->conn, stmt->sql, stmt->nparams, NULL, params, NULL, NULL, 0);
        PGresult *p = PQprepare(db->conn, stmt->name, stmt->sql, stmt->nparams, NULL);
        if (PQresultStatus(p) != PGRES_COMMAND_OK)
            return p;
        PQclear(p);
        db->prepared[db->nprepared++] = stmt;
    }
    return PQexecPrepared(db->conn, stmt->name, stmt->nparams, params, NULL, NULL, 0);
}

/* Runs sql, or stmt when sql is NULL. */
static int exec_once(struct db *db, struct db_res **res, const char *sql,
                     const struct db_stmt *stmt, int nparams, const char *const *params)
{
    if (res)
        *res = NULL;
    db->constraint[0] = '\0';
    db->message[0] = '\0';
    db->sqlstate[0] = '\0';
    PGresult *r = sql ? PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                      : run_prepared(db, stmt, params);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (res) {
            struct db_res *out = malloc(sizeof(*out));
            if (!out) {
                PQclear(r);
                return -ENOMEM;
            }
            out->res = r;
            *res = out;
        } else {
            PQclear(r);
        }
        return 0;
    }
    const char *c = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    snprintf(db->constraint, sizeof(db->constraint), "%s", c ? c : "");
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(db->message, sizeof(db->message), "%s", m ? m : PQerrorMessage(db->conn));
    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
    int rc = classify(state);
    if (PQstatus(db->conn) != CONNECTION_OK)
        rc = DB_EDOWN;
    PQclear(r);
    return rc;
}

/* db_exec and db_exec_stmt: sql, or stmt when sql is NULL. */
static int exec_retrying(struct db *db, struct db_res **res, const char *sql,
                         const struct db_stmt *stmt, int nparams, const char *const *params)
{
    const char *text = sql ? sql : stmt->sql;
    bool outside = PQtransactionStatus(db->conn) == PQTRANS_IDLE;
    int rc = exec_once(db, res, sql, stmt, nparams, params);
    /* The connection died under a statement that may run again (outside
     * a transaction, nothing half done): once more, on a fresh one, which
     * has no prepared statements yet. */
    if (rc == DB_EDOWN && outside && safe_to_repeat(text) && PQstatus(db->conn) != CONNECTION_OK) {
        PQreset(db->conn);
        db->nprepared = 0;
        if (PQstatus(db->conn) == CONNECTION_OK)
            rc = exec_once(db, res, sql, stmt, nparams, params);
    } else if (rc && stmt && strcmp(db->sqlstate, SQLSTATE_UNDEFINED_PSTATEMENT) == 0) {
        /* The session's prepared statements were discarded behind our
         * back (DISCARD ALL, DEALLOCATE): prepared anew next time, and
         * now when nothing was half done. */
        db->nprepared = 0;
        if (outside)
            rc = exec_once(db, res, sql, stmt, nparams, params);
    }
    db->last_rc = rc;
    return rc;
}

int db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
            const char *const *params)
{
    return exec_retrying(db, res, sql, NULL, nparams, params);
}

int db_exec_stmt(struct db *db, struct db_res **res, const struct db_stmt *stmt,
                 const char *const *params)
{
    return exec_retrying(db, res, NULL, stmt, stmt->nparams, params);
}

bool db_unavailable(const struct db *db)
{
    return db && (db->last_rc == DB_EDOWN || db->last_rc == DB_EBUSY);
}

int db_begin(struct db *db)
{
    return db_exec(db, NULL, "BEGIN", 0, NULL);
}

int db_commit(struct db *db)
{
    return db_exec(db, NULL, "COMMIT", 0, NULL);
}

void db_rollback(struct db *db)
{
    if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        PQclear(PQexec(db->conn, "ROLLBACK"));
}

const char *db_error_constraint(const struct db *db)
{
    return db->constraint;
}

const char *db_error_message(const struct db *db)
{
    return db->message;
}

size_t db_rows(const struct db_res *res)
{
    return res ? (size_t)PQntuples(res->res) : 0;
}

const char *db_get(const struct db_res *res, size_t row, int col)
{
    if (!res || row >= (size_t)PQntuples(res->res) || col < 0 || col >= PQnfields(res->res))
        return NULL;
    if (PQgetisnull(res->res, (int)row, col))
        return NULL;
    return PQgetvalue(res->res, (int)row, col);
}

bool db_is_null(const struct db_res *res, size_t row, int col)
{
    return db_get(res, row, col) == NULL;
}

long db_get_long(const struct db_res *res, size_t row, int col, long fallback)
{
    const char *v = db_get(res, row, col);
    if (!v)
        return fallback;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    return (end == v || *end) ? fallback : n;
}

void db_res_free(struct db_res *res)
{
    if (!res)
        return;
    PQclear(res->res);
    free(res);
}

/* ---- pool ---- */

struct db_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    char *conninfo;
    struct db_options opts;
    bool have_opts;
    int size;
    int nfree;
    struct db **free_list; /* connections not in use; NULL slots are not yet open */
    bool down;             /* the last connection attempt failed (logged once) */
};

int db_pool_open(struct db_pool **out, const char *conninfo, int size,
                 const struct db_options *opts)
{
    *out = NULL;
    struct db_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->conninfo = strdup(conninfo ? conninfo : "");
    p->free_list = calloc((size_t)size, sizeof(*p->free_list));
    if (!p->conninfo || !p->free_list) {
        free(p->conninfo);
        free(p->free_list);
        free(p);
        return -ENOMEM;
    }
    if (opts) {
        p->opts = *opts;
        p->have_opts = true;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->size = size;
    p->nfree = size; /* slots; connections open lazily */
    *out = p;
    return 0;
}

/* Whether an idle connection is still usable without a round trip: the
 * server has nothing to say to an idle session, so anything readable on
 * its socket is the server going away (terminated, restarted) or EOF. */
bool db_alive(struct db *db)
{
    if (PQstatus(db->conn) != CONNECTION_OK)
        return false;
    struct pollfd pfd = { .fd = PQsocket(db->conn), .events = POLLIN };
    if (pfd.fd < 0)
        return false;
    int n = poll(&pfd, 1, 0);
    if (n == 0)
        return true;
    if (n < 0 || !PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK)
        return false;
    /* Readable but still up (a notice): treat it as suspect all the same. */
    return !(pfd.revents & (POLLHUP | POLLERR));
}

/* Notes whether the database answered a connection attempt; logs only
 * when that changes. */
static void pool_note(struct db_pool *pool, bool up, const char *err)
{
    pthread_mutex_lock(&pool->lock);
    bool was_down = pool->down;
    pool->down = !up;
    pthread_mutex_unlock(&pool->lock);
    if (!up && !was_down)
        log_error("database unreachable: %s", err);
    else if (up && was_down)
        log_info("database reachable again");
}

struct db *db_pool_acquire(struct db_pool *pool, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    pthread_mutex_lock(&pool->lock);
    while (pool->nfree == 0) {
        if (pthread_cond_timedwait(&pool->freed, &pool->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
    }
    struct db *db = pool->free_list[--pool->nfree];
    pool->free_list[pool->nfree] = NULL;
    pthread_mutex_unlock(&pool->lock);

    /* Opening or replacing happens outside the lock: it can take a while.
     * A connection the server dropped is replaced before it is used. */
    if (db && !db_alive(db)) {
        db_close(db);
        db = NULL;
    }
    if (!db) {
        char err[256] = "";
        if (connect_with(&db, pool->conninfo, pool->have_opts ? &pool->opts : NULL, err,
                         sizeof(err)) != 0) {
            err[strcspn(err, "\n")] = '\0';
            pool_note(pool, false, err);
            pthread_mutex_lock(&pool->lock);
            pool->free_list[pool->nfree++] = NULL;
            pthread_cond_signal(&pool->freed);
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
        pool_note(pool, true, NULL);
    }
    return db;
}

int db_pool_connect(struct db_pool *pool, struct db **out)
{
    char err[256] = "";
    int rc =
        connect_with(out, pool->conninfo, pool->have_opts ? &pool->opts : NULL, err, sizeof(err));
    err[strcspn(err, "\n")] = '\0';
    pool_note(pool, rc == 0, err);
    return rc;
}

void db_pool_release(struct db_pool *pool, struct db *db)
{
    if (!db)
        return;
    db_rollback(db);
    pthread_mutex_lock(&pool->lock);
    pool->free_list[pool->nfree++] = db;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
}

void db_pool_close(struct db_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->nfree; i++)
        db_close(pool->free_list[i]);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->freed);
    free(pool->free_list);
    free(pool->conninfo);
    free(pool);
}

/* ---- migrations ---- */

static int file_sha256_hex(const char *path, char **text_out, char hex[65])
{
    *text_out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return -ENOMEM;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    *text_out = buf;
    return 0;
}

static int migration_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 8 && d->d_name[0] >= '0' && d->d_name[0] <= '9' &&
           strcmp(d->d_name + n - 4, ".sql") == 0;
}

/* A migration file holds several statements, which only the simple query
 * protocol accepts. Its text is the project's own, never a client's. */
static int exec_script(struct db *db, const char *sql)
{
    PGresult *r = PQexec(db->conn, sql);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(db->message, sizeof(db->message), "%s", m ? m : PQerrorMessage(db->conn));
        rc = DB_EOTHER;
    }
    PQclear(r);
    return rc;
}

int db_schema_version(struct db *db)
{
    struct db_res *res = NULL;
    int rc = db_exec(db, &res, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL);
    if (rc) {
        /* No table yet is version 0. */
        return strcmp(db->sqlstate, SQLSTATE_UNDEFINED_TABLE) == 0 ? 0 : rc;
    }
    int v = (int)db_get_long(res, 0, 0, 0);
    db_res_free(res);
    return v;
}

int db_migrate(struct db *db, const char *dir, char *msg, size_t msglen)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, migration_filter, alphasort);
    if (n < 0) {
        snprintf(msg, msglen, "cannot read %s: %s", dir, strerror(errno));
        return -errno;
    }
    if (msglen)
        msg[0] = '\0';
    /* The table of versions is created under the lock too: two instances
     * starting on an empty database would otherwise create it at once. */
    int rc = db_begin(db);
    if (!rc)
        rc = db_exec(db, NULL, "SELECT pg_advisory_xact_lock(7303)", 0, NULL);
    if (!rc)
        rc = db_exec(db, NULL,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version integer PRIMARY KEY, name text NOT NULL,"
                     " sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                     0, NULL);
    if (!rc)
        rc = db_commit(db);
    if (rc) {
        snprintf(msg, msglen, "schema_migrations: %s", db->message);
        db_rollback(db);
    }
    int applied = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        char path[4096], hex[65], version[16];
        char *sql = NULL;
        struct db_res *res = NULL;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        snprintf(version, sizeof(version), "%d", atoi(names[i]->d_name));
        rc = file_sha256_hex(path, &sql, hex);
        if (rc) {
            snprintf(msg, msglen, "cannot read %s", path);
            break;
        }
        rc = db_begin(db);
        if (!rc)
            rc = db_exec(db, NULL, "SELECT pg_advisory_xact_lock(7303)", 0, NULL);
        if (!rc)
            rc = db_query(db, &res, "SELECT sha256 FROM schema_migrations WHERE version = $1",
                          version);
        if (!rc && db_rows(res) == 1) {
            if (strcmp(db_get(res, 0, 0), hex) != 0) {
                snprintf(msg, msglen, "migration %s changed after it was applied",
                         names[i]->d_name);
                rc = -EINVAL;
            }
            db_rollback(db);
        } else if (!rc) {
            rc = exec_script(db, sql);
            if (!rc)
                rc = db_query(
                    db, NULL,
                    "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                    version, names[i]->d_name, hex);
            if (!rc)
                rc = db_commit(db);
            if (!rc)
                applied++;
        }
        if (rc && msglen && !msg[0])
            snprintf(msg, msglen, "%s: %s", names[i]->d_name, db->message);
        if (rc)
            db_rollback(db);
        db_res_free(res);
        free(sql);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == 0)
        snprintf(msg, msglen, "%d migration(s) applied, schema version %d", applied,
                 db_schema_version(db));
    return rc;
}
