/* lease.c — see lease.h. */
#include "lease.h"
#include "db.h"

#include <stdio.h>

/* Recording an outcome takes one short statement; this covers it and a
 * busy database's statement time-out. */
#define LEASE_RECORD_MARGIN_MS 10000L

int lease_seconds(long connect_timeout_ms, long attempt_timeout_ms)
{
    long ms = connect_timeout_ms + attempt_timeout_ms + LEASE_RECORD_MARGIN_MS;
    return (int)((ms + 999) / 1000);
}

int lease_claim(struct db *db, const char *claim_sql, int lease_s, struct db_res **row)
{
    char lease[16];
    snprintf(lease, sizeof(lease), "%d", lease_s);
    *row = NULL;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, row, claim_sql, lease);
    if (!rc)
        rc = db_commit(db);
    if (rc) {
        db_rollback(db);
        db_res_free(*row);
        *row = NULL;
        return rc;
    }
    if (db_rows(*row) == 0) {
        db_res_free(*row);
        *row = NULL;
        return 0;
    }
    return 1;
}
