/* flood.h — an anonymous flood of tracking look-ups from one loopback
 * address, and intake measured while it runs: what it_budget checks and
 * bench_flood measures. */
#ifndef CARDD_TEST_FLOOD_H
#define CARDD_TEST_FLOOD_H

#include "harness.h"

#include <stdbool.h>

/* The flood's answers, added up over its clients. */
struct flood_stats {
    long ok;      /* 200 */
    long limited; /* 429 past the address's rate, with Retry-After and problem+json */
    long held;    /* 429 past the address's connections, the same and Connection: close */
    long busy;    /* 503 */
    long other;   /* any other answer, or a 429 without its header or type */
    long failed;  /* no answer: the connection refused at the door */
};

struct flood;

/* clients threads look up the request (body: the look-up's JSON) from
 * address, each on one kept-alive connection, as fast as they are
 * answered, Retry-After ignored. Returns 0 or -1. */
int flood_start(struct flood **out, struct service *svc, const char *address, const char *body,
                int clients);
/* Stops them and adds up what they got. */
void flood_stop(struct flood *f, struct flood_stats *st);

/* Submits a fresh request and returns, in body, the look-up that finds it. */
int flood_target(struct service *svc, const char *intake_token, char *body, size_t len);

/* n intake submissions, one every gap_ms; lat[i] receives each one's time
 * in seconds. Returns how many were not answered 201. */
int intake_run(struct service *svc, const char *intake_token, double *lat, int n, int gap_ms);

/* The p-th percentile (0..1) of n times, which it sorts. */
double percentile(double *v, int n, double p);

/* Cards produced so far in the test database. */
long cards_produced(void);

#endif
