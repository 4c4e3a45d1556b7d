/* metrics.h — in-process counters and histograms, written out in the
 * Prometheus text format together with gauges read from the database. */
#ifndef CARDD_METRICS_H
#define CARDD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct metrics;
struct db;

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);

/* Counts one HTTP request and its latency. Thread-safe; NULL-safe. */
void metrics_observe_request(struct metrics *m, const char *method, const char *route, int status,
                             double seconds);

/* The gauges read from the database are kept this long: scrapes never scan
 * the tables more often, however many come. */
#define METRICS_GAUGE_MAX_AGE_S 5

/* Whether the kept gauges are older than METRICS_GAUGE_MAX_AGE_S (or none):
 * only then does a scrape need a database connection. */
bool metrics_gauges_stale(struct metrics *m);

/* Renders every metric. The database's gauges come from the kept copy,
 * first refreshed from db when it is stale and db is not NULL (without db
 * the last copy, or none, is shown). Returns a malloc'd string or NULL. */
char *metrics_render(struct metrics *m, struct db *db);

/* The line at a glance. Requests: waiting for a card (not held), held for
 * an operator, with a card in production now. Cards: produced and spoiled
 * since midnight in Riyadh, and produced in the last window_min minutes.
 * Stations by the state shown to operators. */
struct production_progress {
    long waiting, held, in_production;
    long produced_today, spoiled_today;
    long produced_window;
    int window_min;
    long busy, idle, error, paused, offline;
};

/* Fills *p. window_min is 1 to 1440. Returns 0, -EINVAL or a DB_* code. */
int production_progress(struct db *db, int window_min, struct production_progress *p);

/* Cards finished in one hour: produced, and spoiled or of unknown fate. */
struct production_hour {
    char start[24]; /* the hour's start, RFC 3339 UTC */
    long produced, spoiled;
};

#define PRODUCTION_HOURS 24

/* The last PRODUCTION_HOURS hours, oldest first, the current hour last.
 * Returns 0 or a DB_* code. */
int production_hourly(struct db *db, struct production_hour out[PRODUCTION_HOURS]);

/* Cards an hour at the pace of p's window. */
double production_cards_per_hour(const struct production_progress *p);

#endif
