/* ratelimit.h — failures per client address in a sliding window, calls per
 * client address at a steady rate with bursts (a token bucket), or
 * connections open at once per client address. */
#ifndef CARDD_RATELIMIT_H
#define CARDD_RATELIMIT_H

#include <stdbool.h>
#include <time.h>

struct ratelimit;

/* limit failures per window_s seconds for each key (client address).
 * limit is 1..64 and window_s at least 1; anything else is -EINVAL. */
int ratelimit_new(struct ratelimit **out, int limit, int window_s);
void ratelimit_free(struct ratelimit *rl);

/* 0 when key may try now, else the seconds until it may (for Retry-After). */
int ratelimit_blocked(struct ratelimit *rl, const char *key, time_t now);

/* Records one failure of key at now. */
void ratelimit_fail(struct ratelimit *rl, const char *key, time_t now);

/* A failure reserved before the attempt, so that concurrent attempts cannot
 * all pass the check before any of them is counted. */
struct rl_ticket {
    char key[64];
    int slot;
    time_t at;
};

/* Checks and reserves in one step: 0 when key may try (one failure is
 * reserved, ticket filled), else the seconds until it may. Settled failures
 * at the limit refuse at once; when attempts under way could reach it, the
 * call waits (at most 2 s) for one of them to settle, so that concurrent
 * attempts never pass the limit and a success never refuses another. Every
 * ticket is settled: ratelimit_release when the attempt succeeded (or the
 * server failed), ratelimit_keep when it was a failure. */
int ratelimit_reserve(struct ratelimit *rl, const char *key, time_t now, struct rl_ticket *ticket);
/* Settle a reservation. NULL-safe; a ticket is settled once. */
void ratelimit_release(struct ratelimit *rl, struct rl_ticket *ticket);
void ratelimit_keep(struct ratelimit *rl, struct rl_ticket *ticket);

/* A rate: per_s calls a second for each key, in bursts of at most burst
 * (both at least 1; anything else is -EINVAL). */
int ratelimit_new_rate(struct ratelimit **out, int per_s, int burst);

/* Takes one call of key's at now_ms (a monotonic clock, in ms): 0 when it
 * may make it, else the milliseconds until it may (nothing is taken). Only
 * for a rate. */
long ratelimit_take(struct ratelimit *rl, const char *key, long long now_ms);

/* Connections open at once for each key: limit of them are served; past
 * them, held more are counted and answered a refusal (http.c); past those,
 * further ones are refused at once (ratelimit_conn_full). limit at least 1,
 * held at least 0; anything else is -EINVAL. */
int ratelimit_new_conns(struct ratelimit **out, int limit, int held);

enum rl_conn {
    RL_CONN_SERVE, /* within the limit */
    RL_CONN_HOLD,  /* past it: to be refused */
};

/* Whether key's connections already fill the limit and the held ones. */
bool ratelimit_conn_full(struct ratelimit *rl, const char *key);
/* Counts a connection of key open. *counted is false when the table had no
 * room for key (every slot of its probe has connections open): the
 * connection is served and not counted, and must not be closed here. */
enum rl_conn ratelimit_conn_open(struct ratelimit *rl, const char *key, time_t now, bool *counted);
/* A counted connection of key closed. */
void ratelimit_conn_close(struct ratelimit *rl, const char *key);

#endif
