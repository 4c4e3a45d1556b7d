/* app.h — what every part of the running service shares. */
#ifndef CARDD_APP_H
#define CARDD_APP_H

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
    volatile int stopping;
};

#endif
