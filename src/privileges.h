/* privileges.h — two database roles: the owner, which migrates, and the
 * service's role, which only reads and writes rows (sql/privileges.sql). */
#ifndef CARDD_PRIVILEGES_H
#define CARDD_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>

struct db;

/* Grants role what the service needs and nothing more, by running
 * sql_dir/privileges.sql on db (connected as the owner). Returns 0, or a
 * negative code with msg saying why. */
int privileges_apply(struct db *db, const char *sql_dir, const char *role, char *msg,
                     size_t msglen);

/* Whether db is connected as a role that owns schema objects or is a
 * superuser: the service should not be. Returns 0 (*powerful set) or a DB_* code. */
int privileges_is_powerful(struct db *db, bool *powerful);

#endif
