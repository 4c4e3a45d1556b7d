/* ratelimit.c — a fixed table of client addresses, each with the times of
 * its last failures (at most `limit` of them, in no order: a slot is free
 * when it is 0 or older than the window), for a rate (ratelimit_new_rate)
 * a token bucket, or for connections (ratelimit_new_conns) a count of those
 * open. The table is bounded: when full, the entry used least recently is
 * reused (never one with connections open), so memory never grows with the
 * number of addresses that try. */
#include "ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RL_SLOTS     4096
#define RL_MAX_LIMIT 64
#define RL_PROBE     32 /* slots looked at per address */

#define RL_PENDING_MAX_S 30 /* a reservation never settled counts as a failure */
#define RL_WAIT_MS       2000

struct rl_entry {
    char key[64];
    time_t fails[RL_MAX_LIMIT];          /* failure times, any order; 0 is free */
    unsigned char pending[RL_MAX_LIMIT]; /* reserved, the attempt not yet settled */
    time_t last;
    /* A rate's token bucket: calls it may make now, as of at_ms (0: new). */
    double tokens;
    long long at_ms;
    int conns; /* connections open (ratelimit_new_conns) */
};

struct ratelimit {
    pthread_mutex_t lock;
    pthread_cond_t settled; /* a reservation was given back or kept */
    int limit, window;
    double per_s, burst; /* a rate (ratelimit_new_rate); 0 for failures */
    int held;            /* connections: past limit, this many more are held */
    struct rl_entry *entries;
};

static struct ratelimit *table_new(void)
{
    struct ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    rl->entries = calloc(RL_SLOTS, sizeof(*rl->entries));
    if (!rl->entries) {
        free(rl);
        return NULL;
    }
    pthread_mutex_init(&rl->lock, NULL);
    pthread_cond_init(&rl->settled, NULL);
    return rl;
}

int ratelimit_new(struct ratelimit **out, int limit, int window_s)
{
    *out = NULL;
    if (limit < 1 || limit > RL_MAX_LIMIT || window_s < 1)
        return -EINVAL;
    struct ratelimit *rl = table_new();
    if (!rl)
        return -ENOMEM;
    rl->limit = limit;
    rl->window = window_s;
    *out = rl;
    return 0;
}

int ratelimit_new_conns(struct ratelimit **out, int limit, int held)
{
    *out = NULL;
    if (limit < 1 || held < 0)
        return -EINVAL;
    struct ratelimit *rl = table_new();
    if (!rl)
        return -ENOMEM;
    rl->limit = limit;
    rl->held = held;
    *out = rl;
    return 0;
}

int ratelimit_new_rate(struct ratelimit **out, int per_s, int burst)
{
    *out = NULL;
    if (per_s < 1 || burst < 1)
        return -EINVAL;
    struct ratelimit *rl = table_new();
    if (!rl)
        return -ENOMEM;
    rl->per_s = per_s;
    rl->burst = burst;
    *out = rl;
    return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    pthread_cond_destroy(&rl->settled);
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
        if (e->conns == 0 && (!victim || e->last < victim->last))
            victim = e;
    }
    /* Only a table of connections can have every slot of a probe in use. */
    if (!create || !victim)
        return NULL;
    /* Reuse the stalest slot of the probe: an entry idle past the window holds nothing. */
    memset(victim, 0, sizeof(*victim));
    strncpy(victim->key, key, sizeof(victim->key) - 1);
    victim->last = now;
    return victim;
}

static bool is_pending(const struct rl_entry *e, int i, time_t now)
{
    return e->pending[i] && now - e->fails[i] < RL_PENDING_MAX_S;
}

/* The failures of e still inside the window (settled ones, and in *pending
 * those reserved and not yet settled), and the oldest settled one. */
static int live(const struct ratelimit *rl, const struct rl_entry *e, time_t now, int *oldest_slot,
                int *pending)
{
    int n = 0;
    *oldest_slot = -1;
    *pending = 0;
    for (int i = 0; i < rl->limit; i++) {
        time_t t = e->fails[i];
        if (t == 0 || now - t >= rl->window)
            continue;
        if (is_pending(e, i, now)) {
            (*pending)++;
            continue;
        }
        n++;
        if (*oldest_slot < 0 || t < e->fails[*oldest_slot])
            *oldest_slot = i;
    }
    return n;
}

/* The seconds until e may try again; 0 when its settled failures leave room. */
static int wait_of(const struct ratelimit *rl, const struct rl_entry *e, time_t now)
{
    int oldest, pending;
    if (live(rl, e, now, &oldest, &pending) < rl->limit)
        return 0;
    /* The oldest of the last `limit` failures decides. */
    return (int)(rl->window - (now - e->fails[oldest]));
}

/* The slot a new failure takes: a free one, else the oldest. */
static int slot_for(const struct ratelimit *rl, const struct rl_entry *e, time_t now)
{
    int pick = 0;
    for (int i = 0; i < rl->limit; i++) {
        time_t t = e->fails[i];
        if (t == 0 || now - t >= rl->window)
            return i;
        if (t < e->fails[pick])
            pick = i;
    }
    return pick;
}

int ratelimit_blocked(struct ratelimit *rl, const char *key, time_t now)
{
    int wait = 0;
    pthread_mutex_lock(&rl->lock);
    struct rl_entry *e = lookup(rl, key, false, now);
    if (e)
        wait = wait_of(rl, e, now);
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

void ratelimit_fail(struct ratelimit *rl, const char *key, time_t now)
{
    pthread_mutex_lock(&rl->lock);
    struct rl_entry *e = lookup(rl, key, true, now);
    int slot = slot_for(rl, e, now);
    e->fails[slot] = now;
    e->pending[slot] = 0;
    e->last = now;
    pthread_mutex_unlock(&rl->lock);
}

int ratelimit_reserve(struct ratelimit *rl, const char *key, time_t now, struct rl_ticket *ticket)
{
    memset(ticket, 0, sizeof(*ticket));
    ticket->slot = -1;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += RL_WAIT_MS / 1000;
    int wait = 0;
    pthread_mutex_lock(&rl->lock);
    for (;;) {
        /* Looked up again after every wait: the entry may have been reused. */
        struct rl_entry *e = lookup(rl, key, true, now);
        int oldest, pending;
        int settled = live(rl, e, now, &oldest, &pending);
        if (settled >= rl->limit) {
            wait = (int)(rl->window - (now - e->fails[oldest]));
            break;
        }
        if (settled + pending < rl->limit) {
            int slot = slot_for(rl, e, now);
            e->fails[slot] = now;
            e->pending[slot] = 1;
            e->last = now;
            snprintf(ticket->key, sizeof(ticket->key), "%s", e->key);
            ticket->slot = slot;
            ticket->at = now;
            break;
        }
        /* Attempts under way could use up the limit: wait until one
         * settles, so that the limit holds exactly and an attempt that
         * succeeds never refuses another. */
        if (pthread_cond_timedwait(&rl->settled, &rl->lock, &deadline) != 0) {
            wait = 1;
            break;
        }
    }
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

/* Settles a reservation: given back (failed is false) or kept as a failure. */
static void settle(struct ratelimit *rl, struct rl_ticket *ticket, bool failed)
{
    if (!rl || !ticket || ticket->slot < 0)
        return;
    pthread_mutex_lock(&rl->lock);
    struct rl_entry *e = lookup(rl, ticket->key, false, ticket->at);
    /* The slot is still ours unless the entry was reused or the slot retaken. */
    if (e && e->fails[ticket->slot] == ticket->at && e->pending[ticket->slot]) {
        e->pending[ticket->slot] = 0;
        if (!failed)
            e->fails[ticket->slot] = 0;
    }
    pthread_cond_broadcast(&rl->settled);
    pthread_mutex_unlock(&rl->lock);
    ticket->slot = -1;
}

void ratelimit_release(struct ratelimit *rl, struct rl_ticket *ticket)
{
    settle(rl, ticket, false);
}

void ratelimit_keep(struct ratelimit *rl, struct rl_ticket *ticket)
{
    settle(rl, ticket, true);
}

long ratelimit_take(struct ratelimit *rl, const char *key, long long now_ms)
{
    long wait_ms = 0;
    pthread_mutex_lock(&rl->lock);
    struct rl_entry *e = lookup(rl, key, true, (time_t)(now_ms / 1000));
    if (e->at_ms == 0) {
        e->tokens = rl->burst;
    } else if (now_ms > e->at_ms) {
        e->tokens += (double)(now_ms - e->at_ms) * rl->per_s / 1000.0;
        if (e->tokens > rl->burst)
            e->tokens = rl->burst;
    }
    if (now_ms > e->at_ms)
        e->at_ms = now_ms;
    e->last = (time_t)(now_ms / 1000);
    if (e->tokens >= 1.0)
        e->tokens -= 1.0;
    else
        wait_ms = (long)((1.0 - e->tokens) * 1000.0 / rl->per_s) + 1;
    pthread_mutex_unlock(&rl->lock);
    return wait_ms;
}

bool ratelimit_conn_full(struct ratelimit *rl, const char *key)
{
    pthread_mutex_lock(&rl->lock);
    struct rl_entry *e = lookup(rl, key, false, 0);
    bool full = e && e->conns >= rl->limit + rl->held;
    pthread_mutex_unlock(&rl->lock);
    return full;
}

enum rl_conn ratelimit_conn_open(struct ratelimit *rl, const char *key, time_t now, bool *counted)
{
    enum rl_conn what = RL_CONN_SERVE;
    pthread_mutex_lock(&rl->lock);
    struct rl_entry *e = lookup(rl, key, true, now);
    *counted = e != NULL;
    if (e) {
        e->conns++;
        e->last = now;
        if (e->conns > rl->limit)
            what = RL_CONN_HOLD;
    }
    pthread_mutex_unlock(&rl->lock);
    return what;
}

void ratelimit_conn_close(struct ratelimit *rl, const char *key)
{
    pthread_mutex_lock(&rl->lock);
    struct rl_entry *e = lookup(rl, key, false, 0);
    if (e && e->conns > 0)
        e->conns--;
    pthread_mutex_unlock(&rl->lock);
}
