/* log.c — line-oriented logging to stderr, safe to call from any thread. */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Set at start-up, read by every thread that logs. */
static _Atomic int min_level = LOG_INFO;
static __thread const char *thread_request_id;

static const char *const level_names[] = {
    [LOG_DEBUG] = "debug",
    [LOG_INFO] = "info",
    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error",
};

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

int log_parse_level(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_set_request_id(const char *id)
{
    thread_request_id = id;
}

void log_escape(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 5 < outlen; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *p);
        else
            out[o++] = (char)*p;
    }
    if (outlen)
        out[o < outlen ? o : outlen - 1] = '\0';
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;

    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    char raw[1024], msg[4 * sizeof(raw)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    log_escape(raw, msg, sizeof(msg));

    /* One fprintf per line so that lines from several threads never interleave. */
    if (thread_request_id)
        fprintf(stderr, "%s.%03ldZ %s req=%s %s\n", when, ts.tv_nsec / 1000000L, level_names[level],
                thread_request_id, msg);
    else
        fprintf(stderr, "%s.%03ldZ %s %s\n", when, ts.tv_nsec / 1000000L, level_names[level], msg);
}
