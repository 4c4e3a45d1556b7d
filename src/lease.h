/* lease.h — taking work from a queue table that several instances share:
 * one row at a time, leased (its next attempt pushed past the slowest
 * attempt) and the lease committed before the work starts, so that no
 * other instance takes the row while it is worked on, however slow the far
 * end; a lease that runs out (an instance that died mid-attempt) makes the
 * row due again. The notification worker uses it; a worker of the same
 * shape (platform callbacks) uses it with its own claim statement. */
#ifndef CARDD_LEASE_H
#define CARDD_LEASE_H

struct db;
struct db_res;

/* Seconds a lease must last for one attempt with these time-outs (the
 * connection's and the whole attempt's, in ms): both, plus time to record
 * the outcome, rounded up. */
int lease_seconds(long connect_timeout_ms, long attempt_timeout_ms);

/* Runs claim_sql in a transaction of its own and commits it. claim_sql is
 * one statement of the caller's queue that takes at most one due row
 * (FOR UPDATE SKIP LOCKED), pushes its next attempt out by $1 seconds
 * (lease_s) and returns the row. Returns 1 with *row (to free with
 * db_res_free), 0 when nothing is due (*row NULL), or a DB_* code. */
int lease_claim(struct db *db, const char *claim_sql, int lease_s, struct db_res **row);

#endif
