/* privileges.c — see privileges.h. */
#include "privileges.h"
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRIVILEGES_MAX (64 * 1024)

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = malloc(PRIVILEGES_MAX + 1);
    size_t n = text ? fread(text, 1, PRIVILEGES_MAX + 1, f) : 0;
    fclose(f);
    if (!text || n > PRIVILEGES_MAX) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

int privileges_apply(struct db *db, const char *sql_dir, const char *role, char *msg, size_t msglen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/privileges.sql", sql_dir);
    if (!role[0] || strlen(role) > 63) {
        snprintf(msg, msglen, "service_role must be 1 to 63 characters");
        return -EINVAL;
    }
    char *script = read_file(path);
    if (!script) {
        snprintf(msg, msglen, "cannot read %s", path);
        return -ENOENT;
    }
    /* The role's name reaches the script as a setting, never as SQL text. */
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, NULL, "SELECT set_config('cardd.service_role', $1, true)", role);
    if (!rc)
        rc = db_exec(db, NULL, script, 0, NULL);
    if (!rc)
        rc = db_commit(db);
    if (rc) {
        snprintf(msg, msglen, "privileges for %s: %s", role, db_error_message(db));
        db_rollback(db);
    } else {
        snprintf(msg, msglen,
                 "role %s may read and write rows, append to the audit log and the "
                 "event tables, and nothing more",
                 role);
    }
    free(script);
    return rc;
}

int privileges_is_powerful(struct db *db, bool *powerful)
{
    struct db_res *res = NULL;
    int rc = db_exec(db, &res,
                     "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
                     " OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n"
                     "  ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
                     "  AND pg_get_userbyid(c.relowner) = current_user)",
                     0, NULL);
    if (!rc)
        *powerful = db_rows(res) == 1 && strcmp(db_get(res, 0, 0), "t") == 0;
    db_res_free(res);
    return rc;
}
