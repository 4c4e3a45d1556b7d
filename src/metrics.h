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

#endif
