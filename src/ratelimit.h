/* ratelimit.h — failures per client address in a sliding window. */
#ifndef CARDD_RATELIMIT_H
#define CARDD_RATELIMIT_H

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

#endif
