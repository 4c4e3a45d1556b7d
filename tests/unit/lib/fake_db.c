/* fake_db.c — see fake_db.h. */
#include "fake_db.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"

#define FAKE_MAX_STMTS   64
#define FAKE_MAX_ANSWERS 8
#define FAKE_MAX_COLS    8

struct db_res {
    size_t rows;
    char *cells[FAKE_MAX_COLS];
};

static struct fake_stmt log_[FAKE_MAX_STMTS];
static int nlog;
static struct {
    const char *part;
    int ncols;
    const char *row[FAKE_MAX_COLS];
} answers[FAKE_MAX_ANSWERS];
static int nanswers;

int __wrap_db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
                   const char *const *params);
int __wrap_db_exec_stmt(struct db *db, struct db_res **res, const struct db_stmt *stmt,
                        const char *const *params);
size_t __wrap_db_rows(const struct db_res *res);
const char *__wrap_db_get(const struct db_res *res, size_t row, int col);
void __wrap_db_res_free(struct db_res *res);

void fake_db_reset(void)
{
    for (int i = 0; i < nlog; i++)
        for (int k = 0; k < log_[i].nparams; k++)
            free(log_[i].params[k]);
    memset(log_, 0, sizeof(log_));
    nlog = 0;
    nanswers = 0;
}

void fake_db_answer(const char *part, int ncols, const char *const *row)
{
    if (nanswers == FAKE_MAX_ANSWERS || ncols > FAKE_MAX_COLS)
        abort();
    answers[nanswers].part = part;
    answers[nanswers].ncols = ncols;
    for (int k = 0; k < ncols; k++)
        answers[nanswers].row[k] = row[k];
    nanswers++;
}

int fake_db_count(void)
{
    return nlog;
}

const struct fake_stmt *fake_db_stmt(int i)
{
    return i >= 0 && i < nlog ? &log_[i] : NULL;
}

const struct fake_stmt *fake_db_find(const char *part)
{
    for (int i = 0; i < nlog; i++)
        if (strstr(log_[i].sql, part))
            return &log_[i];
    return NULL;
}

int fake_db_writes(void)
{
    int n = 0;
    for (int i = 0; i < nlog; i++)
        if (strstr(log_[i].sql, "INSERT INTO") || strstr(log_[i].sql, "UPDATE ") ||
            strstr(log_[i].sql, "DELETE FROM"))
            n++;
    return n;
}

int __wrap_db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
                   const char *const *params)
{
    (void)db;
    if (nlog == FAKE_MAX_STMTS || nparams > FAKE_MAX_PARAMS)
        abort();
    struct fake_stmt *st = &log_[nlog++];
    st->sql = sql;
    st->nparams = nparams;
    for (int k = 0; k < nparams; k++)
        st->params[k] = params[k] ? strdup(params[k]) : NULL;
    if (!res)
        return 0;
    *res = calloc(1, sizeof(**res));
    if (!*res)
        abort();
    for (int a = 0; a < nanswers; a++) {
        if (!strstr(sql, answers[a].part))
            continue;
        (*res)->rows = 1;
        for (int k = 0; k < answers[a].ncols; k++)
            (*res)->cells[k] = answers[a].row[k] ? strdup(answers[a].row[k]) : NULL;
        break;
    }
    return 0;
}

/* A prepared statement is logged and answered as its text would be. */
int __wrap_db_exec_stmt(struct db *db, struct db_res **res, const struct db_stmt *stmt,
                        const char *const *params)
{
    return __wrap_db_exec(db, res, stmt->sql, stmt->nparams, params);
}

size_t __wrap_db_rows(const struct db_res *res)
{
    return res ? res->rows : 0;
}

const char *__wrap_db_get(const struct db_res *res, size_t row, int col)
{
    if (!res || row >= res->rows || col < 0 || col >= FAKE_MAX_COLS)
        return NULL;
    return res->cells[col];
}

void __wrap_db_res_free(struct db_res *res)
{
    if (!res)
        return;
    for (int k = 0; k < FAKE_MAX_COLS; k++)
        free(res->cells[k]);
    free(res);
}
