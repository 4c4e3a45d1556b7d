/* backoff.c — see backoff.h. */
#include "backoff.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int backoff_next(struct backoff *b)
{
    if (!b->seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        b->seed = (unsigned)ts.tv_nsec ^ (unsigned)(size_t)b;
    }
    if (b->cur_ms < b->min_ms)
        b->cur_ms = b->min_ms;
    int base = b->cur_ms;
    b->cur_ms = base >= b->max_ms / 2 ? b->max_ms : base * 2;
    int spread = base / 4;
    int jitter = spread > 0 ? (int)(rand_r(&b->seed) % (unsigned)(2 * spread + 1)) - spread : 0;
    int ms = base + jitter;
    return ms < 1 ? 1 : ms;
}

void backoff_reset(struct backoff *b)
{
    b->cur_ms = 0;
}

long backoff_after(int attempts, long first_ms, long cap)
{
    long wait = first_ms;
    for (int i = 1; i < attempts && wait < cap; i++)
        wait *= 2;
    return wait > cap ? cap : wait;
}

bool condition_set(struct condition *c, const char *who, const char *fmt, ...)
{
    char text[sizeof(c->text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (c->active && strcmp(c->text, text) == 0)
        return false;
    c->active = true;
    memcpy(c->text, text, sizeof(text));
    log_warn("%s: %s", who, text);
    return true;
}

bool condition_clear(struct condition *c, const char *who, const char *fmt, ...)
{
    if (!c->active)
        return false;
    char text[sizeof(c->text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    c->active = false;
    c->text[0] = '\0';
    log_info("%s: %s", who, text);
    return true;
}
