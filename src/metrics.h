/* metrics.h — in-process counters and histograms, written out in the
 * Prometheus text format together with gauges read from the database. */
#ifndef CARDD_METRICS_H
#define CARDD_METRICS_H

#include <stddef.h>

struct metrics;
struct db;

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);

/* Counts one HTTP request and its latency. Thread-safe; NULL-safe. */
void metrics_observe_request(struct metrics *m, const char *method, const char *route, int status,
                             double seconds);

/* Renders every metric; gauges that need the database are read from db
 * (skipped when db is NULL). Returns a malloc'd string or NULL. */
char *metrics_render(struct metrics *m, struct db *db);

#endif
