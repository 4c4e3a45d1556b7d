/* backoff.h — how a worker waits when what it needs (the database, a
 * device, a gateway) does not answer: a growing delay with jitter, capped,
 * and one log line per change of condition, not one per try.
 *
 *   struct backoff bo = BACKOFF_INIT(200, 5000);
 *   struct condition db = { 0 };
 *   ...
 *   if (failed) {
 *       condition_set(&db, "database unreachable: %s", why);   // logs once
 *       wait(backoff_next(&bo));
 *   } else {
 *       condition_clear(&db, "database reachable again");      // logs once
 *       backoff_reset(&bo);
 *   }
 */
#ifndef CARDD_BACKOFF_H
#define CARDD_BACKOFF_H

#include <stdbool.h>

struct backoff {
    int min_ms, max_ms;
    int cur_ms; /* the next base delay; 0 before the first */
    unsigned seed;
};

#define BACKOFF_INIT(min, max)           \
    {                                    \
        .min_ms = (min), .max_ms = (max) \
    }

/* The delay to wait now: the base delay (min_ms, doubling at each call up
 * to max_ms) with up to a quarter of it added or taken at random, so that
 * workers of several instances do not retry in step. */
int backoff_next(struct backoff *b);

/* The condition went away: the next delay starts again from min_ms. */
void backoff_reset(struct backoff *b);

/* The delay before retrying a thing that failed `attempts` times (a
 * notification, a platform callback): first_ms after the first failure,
 * doubling after each, never over cap (attempts below 1 count as 1; no
 * overflow however many). The caller adds its own jitter. */
long backoff_after(int attempts, long first_ms, long cap);

/* A condition a worker logs on change only. what names it in the log
 * ("station st1"); the text of the current condition is kept. */
struct condition {
    bool active;
    char text[200];
};

/* Records the condition; logs a warning when it is new or its text
 * changed (prefix: who), nothing otherwise. Returns true when it logged. */
bool condition_set(struct condition *c, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends the condition; logs once (info) when it was active. Returns true
 * when it was. */
bool condition_clear(struct condition *c, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
