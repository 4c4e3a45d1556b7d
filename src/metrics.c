/* metrics.c — request counters and latency histograms per route. */
#include "metrics.h"
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define MAX_SERIES 256

static const double bounds[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5
};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct series {
    const char *method;
    const char *route; /* the route pattern: a static string */
    int status;
    unsigned long count;
};

struct latency {
    const char *method;
    const char *route;
    unsigned long buckets[NBOUNDS];
    unsigned long count;
    double sum;
};

struct metrics {
    pthread_mutex_t lock;
    struct series series[MAX_SERIES];
    size_t nseries;
    struct latency latency[MAX_SERIES];
    size_t nlatency;
    /* The gauges read from the database, kept for METRICS_GAUGE_MAX_AGE_S so
     * that scrapes, however frequent, scan the tables at most that often.
     * gauge_lock also makes concurrent scrapes wait for one refresh. */
    pthread_mutex_t gauge_lock;
    char *gauges;
    struct timespec gauges_at;
};

int metrics_new(struct metrics **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    pthread_mutex_init(&(*out)->lock, NULL);
    pthread_mutex_init(&(*out)->gauge_lock, NULL);
    return 0;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->gauge_lock);
    free(m->gauges);
    free(m);
}

void metrics_observe_request(struct metrics *m, const char *method, const char *route, int status,
                             double seconds)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    size_t i;
    for (i = 0; i < m->nseries; i++)
        if (m->series[i].route == route && m->series[i].status == status &&
            strcmp(m->series[i].method, method) == 0)
            break;
    if (i == m->nseries && m->nseries < MAX_SERIES)
        m->series[m->nseries++] = (struct series){ method, route, status, 0 };
    if (i < m->nseries)
        m->series[i].count++;

    for (i = 0; i < m->nlatency; i++)
        if (m->latency[i].route == route && strcmp(m->latency[i].method, method) == 0)
            break;
    if (i == m->nlatency && m->nlatency < MAX_SERIES) {
        memset(&m->latency[i], 0, sizeof(m->latency[i]));
        m->latency[i].method = method;
        m->latency[i].route = route;
        m->nlatency++;
    }
    if (i < m->nlatency) {
        struct latency *l = &m->latency[i];
        for (size_t b = 0; b < NBOUNDS; b++)
            if (seconds <= bounds[b])
                l->buckets[b]++;
        l->count++;
        l->sum += seconds;
    }
    pthread_mutex_unlock(&m->lock);
}

struct buf {
    char *s;
    size_t len, cap;
    int failed;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->failed = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
}

/* Gauges read from the database: each query yields (label, value) rows. */
static const struct {
    const char *name, *help, *label, *sql;
} db_gauges[] = {
    { "cardd_queue_depth", "Requests waiting for production.", NULL,
      "SELECT NULL, count(*) FROM requests WHERE status IN ('queued','in_production')"
      " AND hold_reason IS NULL AND production_station IS NULL" },
    { "cardd_requests", "Requests by status.", "status",
      "SELECT status, count(*) FROM requests GROUP BY status" },
    { "cardd_cards", "Blank cards by state.", "state",
      "SELECT state, count(*) FROM cards GROUP BY state" },
    { "cardd_stations", "Stations by state.", "state",
      "SELECT state, count(*) FROM stations GROUP BY state" },
    { "cardd_courier_events_total", "Courier events received, by code.", "code",
      "SELECT code, count(*) FROM courier_events GROUP BY code" },
    { "cardd_notification_backlog", "Notifications not yet delivered.", NULL,
      "SELECT NULL, count(*) FROM notifications WHERE delivered_at IS NULL" },
    { "cardd_callbacks", "Status callbacks to the approval platform, by state.", "state",
      "SELECT s, (SELECT count(*) FROM callbacks WHERE state = s)"
      " FROM unnest(ARRAY['waiting','sent','failed']) s" },
    { "cardd_callback_oldest_waiting_seconds",
      "Age of the oldest status callback waiting to be sent (0: none waits).", NULL,
      "SELECT NULL, coalesce(floor(extract(epoch FROM now() - min(created_at))), 0)::bigint"
      " FROM callbacks WHERE state = 'waiting'" },
};

static bool gauges_stale(const struct metrics *m)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return !m->gauges || now.tv_sec - m->gauges_at.tv_sec >= METRICS_GAUGE_MAX_AGE_S;
}

bool metrics_gauges_stale(struct metrics *m)
{
    pthread_mutex_lock(&m->gauge_lock);
    bool stale = gauges_stale(m);
    pthread_mutex_unlock(&m->gauge_lock);
    return stale;
}

/* One pass over the database's gauges; NULL when out of memory. */
static char *read_gauges(struct db *db)
{
    struct buf b = { malloc(4096), 0, 4096, 0 };
    if (!b.s)
        return NULL;
    b.s[0] = '\0';
    for (size_t g = 0; g < sizeof(db_gauges) / sizeof(db_gauges[0]); g++) {
        struct db_res *res = NULL;
        if (db_exec(db, &res, db_gauges[g].sql, 0, NULL) != 0)
            continue;
        put(&b, "# HELP %s %s\n# TYPE %s gauge\n", db_gauges[g].name, db_gauges[g].help,
            db_gauges[g].name);
        for (size_t r = 0; r < db_rows(res); r++) {
            if (db_gauges[g].label)
                put(&b, "%s{%s=\"%s\"} %s\n", db_gauges[g].name, db_gauges[g].label,
                    db_get(res, r, 0), db_get(res, r, 1));
            else
                put(&b, "%s %s\n", db_gauges[g].name, db_get(res, r, 1));
        }
        db_res_free(res);
    }
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

char *metrics_render(struct metrics *m, struct db *db)
{
    struct buf b = { malloc(8192), 0, 8192, 0 };
    if (!b.s)
        return NULL;
    b.s[0] = '\0';
    pthread_mutex_lock(&m->lock);
    put(&b, "# HELP cardd_http_requests_total HTTP requests by route and status.\n"
            "# TYPE cardd_http_requests_total counter\n");
    for (size_t i = 0; i < m->nseries; i++)
        put(&b, "cardd_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %lu\n",
            m->series[i].method, m->series[i].route, m->series[i].status, m->series[i].count);
    put(&b, "# HELP cardd_http_request_duration_seconds Time to answer, by route.\n"
            "# TYPE cardd_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->nlatency; i++) {
        struct latency *l = &m->latency[i];
        for (size_t k = 0; k < NBOUNDS; k++)
            put(&b,
                "cardd_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%g\"} %lu\n",
                l->method, l->route, bounds[k], l->buckets[k]);
        put(&b,
            "cardd_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"+Inf\"} %lu\n",
            l->method, l->route, l->count);
        put(&b, "cardd_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
            l->method, l->route, l->sum);
        put(&b, "cardd_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %lu\n",
            l->method, l->route, l->count);
    }
    pthread_mutex_unlock(&m->lock);

    /* The gauges: from the cache, refreshed first when it is stale and a
     * database connection was given. */
    pthread_mutex_lock(&m->gauge_lock);
    if (db && gauges_stale(m)) {
        char *fresh = read_gauges(db);
        if (fresh) {
            free(m->gauges);
            m->gauges = fresh;
            clock_gettime(CLOCK_MONOTONIC, &m->gauges_at);
        }
    }
    if (m->gauges)
        put(&b, "%s", m->gauges);
    pthread_mutex_unlock(&m->gauge_lock);
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

int production_progress(struct db *db, int window_min, struct production_progress *p)
{
    struct db_res *res = NULL;
    char window[16];
    if (window_min < 1 || window_min > 1440)
        return -EINVAL;
    snprintf(window, sizeof(window), "%d", window_min);
    int rc = db_query(
        db, &res,
        "WITH today AS (SELECT date_trunc('day', now() AT TIME ZONE 'Asia/Riyadh')"
        "   AT TIME ZONE 'Asia/Riyadh' AS start),"
        " st AS (SELECT CASE WHEN paused AND state <> 'busy' THEN 'paused' ELSE state END"
        "   AS shown FROM stations)"
        " SELECT"
        " (SELECT count(*) FROM requests WHERE status IN ('queued','in_production')"
        "   AND hold_reason IS NULL AND production_station IS NULL),"
        " (SELECT count(*) FROM requests WHERE status IN ('queued','in_production')"
        "   AND hold_reason IS NOT NULL AND production_station IS NULL),"
        " (SELECT count(*) FROM production_attempts WHERE outcome = 'in_progress'),"
        " (SELECT count(*) FROM production_attempts, today WHERE outcome = 'produced'"
        "   AND finished_at >= today.start),"
        " (SELECT count(*) FROM production_attempts, today WHERE outcome IN ('spoiled','unknown')"
        "   AND finished_at >= today.start),"
        " (SELECT count(*) FROM production_attempts WHERE outcome = 'produced'"
        "   AND finished_at >= now() - make_interval(mins => $1::int)),"
        " (SELECT count(*) FROM st WHERE shown = 'busy'),"
        " (SELECT count(*) FROM st WHERE shown = 'idle'),"
        " (SELECT count(*) FROM st WHERE shown = 'error'),"
        " (SELECT count(*) FROM st WHERE shown = 'paused'),"
        " (SELECT count(*) FROM st WHERE shown = 'offline')",
        window);
    if (rc)
        return rc;
    long *fields[] = { &p->waiting,        &p->held,          &p->in_production,
                       &p->produced_today, &p->spoiled_today, &p->produced_window,
                       &p->busy,           &p->idle,          &p->error,
                       &p->paused,         &p->offline };
    for (int k = 0; k < (int)(sizeof(fields) / sizeof(fields[0])); k++)
        *fields[k] = db_get_long(res, 0, k, 0);
    p->window_min = window_min;
    db_res_free(res);
    return 0;
}

int production_hourly(struct db *db, struct production_hour out[PRODUCTION_HOURS])
{
    struct db_res *res = NULL;
    char hours[8];
    snprintf(hours, sizeof(hours), "%d", PRODUCTION_HOURS - 1);
    int rc = db_query(
        db, &res,
        "SELECT rfc3339(h.start),"
        " count(p.id) FILTER (WHERE p.outcome = 'produced'),"
        " count(p.id) FILTER (WHERE p.outcome IN ('spoiled','unknown'))"
        " FROM generate_series(date_trunc('hour', now()) - make_interval(hours => $1::int),"
        "  date_trunc('hour', now()), interval '1 hour') AS h(start)"
        " LEFT JOIN production_attempts p ON p.finished_at >= h.start"
        "  AND p.finished_at < h.start + interval '1 hour'"
        " GROUP BY h.start ORDER BY h.start",
        hours);
    if (rc)
        return rc;
    if (db_rows(res) != PRODUCTION_HOURS) {
        db_res_free(res);
        return -EIO;
    }
    for (int i = 0; i < PRODUCTION_HOURS; i++) {
        snprintf(out[i].start, sizeof(out[i].start), "%s", db_get(res, (size_t)i, 0));
        out[i].produced = db_get_long(res, (size_t)i, 1, 0);
        out[i].spoiled = db_get_long(res, (size_t)i, 2, 0);
    }
    db_res_free(res);
    return 0;
}

double production_cards_per_hour(const struct production_progress *p)
{
    return p->window_min > 0 ? (double)p->produced_window * 60.0 / p->window_min : 0.0;
}
