/* ratelimit.c — a fixed table of client addresses, each with the times of
 * its last failures. The table is bounded: when full, the entry whose last
 * failure is oldest is reused, so memory never grows with the number of
 * addresses that try. */
#include "ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RL_SLOTS     4096
#define RL_MAX_LIMIT 64
#define RL_PROBE     32 /* slots looked at per address */

struct rl_entry {
    char key[64];
    time_t fails[RL_MAX_LIMIT]; /* ring of failure times */
    int next;
    time_t last;
};

struct ratelimit {
    pthread_mutex_t lock;
    int limit, window;
    struct rl_entry *entries;
};

int ratelimit_new(struct ratelimit **out, int limit, int window_s)
{
    *out = NULL;
    if (limit < 1 || limit > RL_MAX_LIMIT || window_s < 1)
        return -EINVAL;
    struct ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return -ENOMEM;
    rl->entries = calloc(RL_SLOTS, sizeof(*rl->entries));
    if (!rl->entries) {
        free(rl);
        return -ENOMEM;
    }
    pthread_mutex_init(&rl->lock, NULL);
    rl->limit = limit;
    rl->window = window_s;
    *out = rl;
    return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->entries);
    free(rl);
}

/* djb2, then a 64-bit finaliser (MurmurHash3's fmix64): djb2 alone gives
 * neighbouring addresses ("10.0.0.1", "10.0.0.2") neighbouring slots, and
 * with a short linear probe they evicted each other long before the table
 * was full. */
static unsigned long hash(const char *s)
{
    uint64_t h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (unsigned long)h;
}

/* Finds key's entry by open addressing over a short probe; NULL if absent
 * and create is false. */
static struct rl_entry *lookup(struct ratelimit *rl, const char *key, bool create, time_t now)
{
    unsigned long h = hash(key);
    struct rl_entry *victim = NULL;
    for (int probe = 0; probe < RL_PROBE; probe++) {
        struct rl_entry *e = &rl->entries[(h + (unsigned long)probe) % RL_SLOTS];
        if (strcmp(e->key, key) == 0)
            return e;
        if (!victim || e->last < victim->last)
            victim = e;
    }
    if (!create)
        return NULL;
    /* Reuse the stalest slot of the probe: an entry idle past the window holds nothing. */
    memset(victim, 0, sizeof(*victim));
    strncpy(victim->key, key, sizeof(victim->key) - 1);
    victim->last = now;
    return victim;
}

int ratelimit_blocked(struct ratelimit *rl, const char *key, time_t now)
{
    int wait = 0;
    pthread_mutex_lock(&rl->lock);
    struct rl_entry *e = lookup(rl, key, false, now);
    if (e) {
        /* The oldest of the last `limit` failures decides. */
        time_t oldest = e->fails[e->next];
        if (oldest != 0 && now - oldest < rl->window)
            wait = (int)(rl->window - (now - oldest));
    }
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

void ratelimit_fail(struct ratelimit *rl, const char *key, time_t now)
{
    pthread_mutex_lock(&rl->lock);
    struct rl_entry *e = lookup(rl, key, true, now);
    e->fails[e->next] = now;
    e->next = (e->next + 1) % rl->limit;
    e->last = now;
    pthread_mutex_unlock(&rl->lock);
}
