/* fuzz_csv.c — the CSV imports of `cardctl cities|branches|holidays
 * import` (refdata.c): csv_split, the header, and each row's checks. The
 * input's first byte picks the import, the rest is the file. The database
 * is not the subject here: the few db.h calls the imports make are
 * answered in memory (each statement succeeds). */
#define _GNU_SOURCE
#include <stdio.h>

#include "db.h"
#include "fuzz.h"
#include "refdata.h"

int db_begin(struct db *db)
{
    (void)db;
    return 0;
}

int db_commit(struct db *db)
{
    (void)db;
    return 0;
}

void db_rollback(struct db *db)
{
    (void)db;
}

const char *db_error_message(const struct db *db)
{
    (void)db;
    return "";
}

int db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
            const char *const *params)
{
    (void)db;
    (void)sql;
    for (int i = 0; i < nparams; i++)
        if (params[i])
            FUZZ_ASSERT(strlen(params[i]) < 2048);
    if (res)
        *res = NULL;
    return 0;
}

/* refdata.c also reads branches and holidays; the imports never do, but
 * the readers are answered here too so that db.c stays out of the link. */
size_t db_rows(const struct db_res *res)
{
    (void)res;
    return 0;
}

const char *db_get(const struct db_res *res, size_t row, int col)
{
    (void)res;
    (void)row;
    (void)col;
    return NULL;
}

bool db_is_null(const struct db_res *res, size_t row, int col)
{
    (void)res;
    (void)row;
    (void)col;
    return true;
}

long db_get_long(const struct db_res *res, size_t row, int col, long fallback)
{
    (void)res;
    (void)row;
    (void)col;
    return fallback;
}

void db_res_free(struct db_res *res)
{
    (void)res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    FILE *in = fmemopen((void *)(data + 1), size - 1, "r");
    if (!in)
        return 0;
    char msg[256];
    switch (data[0] % 3) {
    case 0:
        (void)refdata_import_cities(NULL, in, msg, sizeof(msg));
        break;
    case 1:
        (void)refdata_import_branches(NULL, in, msg, sizeof(msg));
        break;
    default:
        (void)refdata_import_holidays(NULL, in, msg, sizeof(msg));
    }
    fclose(in);
    /* csv_split alone, on one line of any bytes. */
    char *line = fuzz_cstr(data + 1, size - 1);
    char *fields[16];
    int n = csv_split(line, fields, 16);
    FUZZ_ASSERT(n >= -1 && n <= 16);
    free(line);
    return 0;
}
