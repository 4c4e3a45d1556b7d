/* fake_db.h — a database replaced at link time for the store modules'
 * transition tests: a test's .wrap file names db_exec, db_rows, db_get and
 * db_res_free (and db_exec_stmt when the module runs prepared statements:
 * they are logged and answered by their text). Every statement is logged
 * with its parameters; a statement whose text contains a part given to
 * fake_db_answer() gets that one row, any other gets no rows. */
#ifndef CARDD_TEST_FAKE_DB_H
#define CARDD_TEST_FAKE_DB_H

#include <stdbool.h>

#define FAKE_MAX_PARAMS 16

struct fake_stmt {
    const char *sql;
    int nparams;
    char *params[FAKE_MAX_PARAMS]; /* NULL for SQL NULL */
};

/* Forgets the log and the answers. */
void fake_db_reset(void);

/* The one row (ncols text columns) answered to statements containing part. */
void fake_db_answer(const char *part, int ncols, const char *const *row);

/* The number of statements run, and the i-th. */
int fake_db_count(void);
const struct fake_stmt *fake_db_stmt(int i);

/* The first statement run whose text contains part, or NULL. */
const struct fake_stmt *fake_db_find(const char *part);

/* How many statements run write (INSERT, UPDATE, DELETE anywhere in them). */
int fake_db_writes(void);

#endif
