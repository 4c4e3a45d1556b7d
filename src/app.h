/* app.h — what every part of the running service shares. */
#ifndef CARDD_APP_H
#define CARDD_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct db_pool;
struct ratelimit;
struct metrics;

struct app {
    struct config *cfg;
    struct db_pool *pool;
    struct ratelimit *track_limit;    /* failed tracking look-ups per client */
    struct ratelimit *handover_limit; /* failed handover matches per client and token */
    struct metrics *metrics;
    uint8_t master_key[32];
    bool have_master_key;
    atomic_bool stopping; /* set once by the main thread; read by every worker */
};

/* The stop flag, as the workers read it: once set, every write the main
 * thread made before setting it is visible too. */
static inline bool app_stopping(struct app *app)
{
    return atomic_load_explicit(&app->stopping, memory_order_acquire);
}

static inline void app_stop(struct app *app)
{
    atomic_store_explicit(&app->stopping, true, memory_order_release);
}

#endif
