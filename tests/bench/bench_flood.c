/* bench_flood.c — intake's latency while one address floods anonymous
 * tracking, as a ratio to intake's latency without a flood, measured in the
 * same run. Two service instances share one database: "unlimited" with
 * public_rate = 0 and per_ip_held_connections = 0 (only the per-address
 * connection limit, whose extra connections are closed at once, and the
 * anonymous calls' share of the database pool hold the flood), and
 * "limited" with the defaults (public_rate, public_burst,
 * per_ip_held_connections, refusal_delay_ms); the latter also runs two
 * emulated stations. Rounds alternate the phases — each
 * instance without, then under, the flood — so that whatever else the
 * machine does falls on all of them alike.
 *
 *   make bench                                   (5 rounds of 60 intake calls a phase)
 *   BENCH_FLOOD_ROUNDS=5 BENCH_FLOOD_INTAKES=60 make bench
 */
#include "flood.h"
#include "harness.h"
#include "line_env.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLOODERS    env_int("BENCH_FLOOD_CLIENTS", 32)
#define FLOOD_ADDR  "127.0.0.41"
#define MAX_SAMPLES 4096

struct phase {
    const char *name;
    double lat[MAX_SAMPLES];
    int n, bad;
    long produced;
    double seconds; /* the intake calls' time, the flood's start excluded */
    struct flood_stats st;
};

static int env_int(const char *name, int fallback)
{
    const char *s = getenv(name);
    return s && atoi(s) > 0 ? atoi(s) : fallback;
}

/* One phase: n intake calls to svc, under a flood of it when flood_body is
 * given; samples, failures and cards produced meanwhile added to ph. */
static int run_phase(struct service *svc, const char *intake, const char *flood_body, int n,
                     struct phase *ph)
{
    struct flood *f = NULL;
    if (flood_body) {
        if (flood_start(&f, svc, FLOOD_ADDR, flood_body, FLOODERS) != 0)
            return -1;
        usleep(500000);
    }
    long before = cards_produced();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (ph->n + n > MAX_SAMPLES)
        n = MAX_SAMPLES - ph->n;
    ph->bad += intake_run(svc, intake, ph->lat + ph->n, n, 20);
    ph->n += n;
    ph->produced += cards_produced() - before;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ph->seconds += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (f) {
        struct flood_stats st;
        flood_stop(f, &st);
        ph->st.ok += st.ok;
        ph->st.limited += st.limited;
        ph->st.held += st.held;
        ph->st.busy += st.busy;
        ph->st.other += st.other;
        ph->st.failed += st.failed;
        sleep(1); /* the flood's connections close; its limit's bucket refills */
    }
    return 0;
}

static void report(struct phase *alone, struct phase *flood)
{
    double a50 = percentile(alone->lat, alone->n, 0.5),
           a99 = percentile(alone->lat, alone->n, 0.99);
    double f50 = percentile(flood->lat, flood->n, 0.5),
           f99 = percentile(flood->lat, flood->n, 0.99);
    printf("%-9s intake alone: p50 %6.1f ms, p99 %6.1f ms (%d calls, %d not 201)\n", alone->name,
           a50 * 1000, a99 * 1000, alone->n, alone->bad);
    printf("%-9s under flood:  p50 %6.1f ms, p99 %6.1f ms (%d calls, %d not 201); "
           "p99 ratio %.2f, p50 ratio %.2f\n",
           flood->name, f50 * 1000, f99 * 1000, flood->n, flood->bad, f99 / a99, f50 / a50);
    printf("%-9s flood: %ld answered, %ld limited (429), %ld past its connections (429, "
           "closed), %ld busy (503), %ld other, %ld connections closed at once; cards a minute "
           "alone %.1f, under flood %.1f\n",
           flood->name, flood->st.ok, flood->st.limited, flood->st.held, flood->st.busy,
           flood->st.other, flood->st.failed, alone->produced * 60.0 / alone->seconds,
           flood->produced * 60.0 / flood->seconds);
}

int main(void)
{
    int rounds = env_int("BENCH_FLOOD_ROUNDS", 5);
    int per_phase = env_int("BENCH_FLOOD_INTAKES", 60);
    static struct phase ph[4] = { { .name = "unlimited" },
                                  { .name = "unlimited" },
                                  { .name = "limited" },
                                  { .name = "limited" } };
    struct line_env line;
    struct service limited, unlimited;
    char config[4096], intake[128], operator_[128], body_l[160], body_u[160];
    int rc = 1;

    curl_global_init(CURL_GLOBAL_ALL);
    memset(&limited, 0, sizeof(limited));
    memset(&unlimited, 0, sizeof(unlimited));
    if (line_env_start(&line, 2, 0) != 0) {
        fprintf(stderr, "bench: the emulated line did not start\n");
        goto out;
    }
    line_env_config(&line, 0, "st", config, sizeof(config));
    if (harness_setup(&limited, config) != 0 || line_env_keys(&line, limited.dir, "B-FLD") != 0 ||
        harness_clone(&limited, &unlimited,
                      "instance = unlimited\npublic_rate = 0\nper_ip_held_connections = 0\n") !=
            0 ||
        harness_token(&limited, "intake", "absher", intake, sizeof(intake)) ||
        harness_token(&limited, "operator", "op-1", operator_, sizeof(operator_)))
        goto out;
    line_env_export(&line, 0);
    int started = harness_start(&limited);
    line_env_unexport();
    if (started != 0 || harness_start(&unlimited) != 0)
        goto out;
    struct reply r;
    if (http_post_json(&limited, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"B-FLD\",\"first_serial\":\"A00000001\",\"count\":2000}",
                       &r) != 0)
        goto out;
    reply_free(&r);
    if (flood_target(&limited, intake, body_l, sizeof(body_l)) != 0 ||
        flood_target(&limited, intake, body_u, sizeof(body_u)) != 0)
        goto out;

    for (int k = 0; k < rounds; k++) {
        if (run_phase(&unlimited, intake, NULL, per_phase, &ph[0]) ||
            run_phase(&unlimited, intake, body_u, per_phase, &ph[1]) ||
            run_phase(&limited, intake, NULL, per_phase, &ph[2]) ||
            run_phase(&limited, intake, body_l, per_phase, &ph[3]))
            goto out;
    }
    printf("flood: %d clients from one address, tracking as fast as answered; intake one call "
           "every 20 ms from another; %d rounds of %d calls a phase\n",
           FLOODERS, rounds, per_phase);
    report(&ph[0], &ph[1]);
    report(&ph[2], &ph[3]);
    printf("reproduce: BENCH_FLOOD_ROUNDS=%d BENCH_FLOOD_INTAKES=%d make bench\n", rounds,
           per_phase);
    rc = ph[0].bad + ph[1].bad + ph[2].bad + ph[3].bad == 0 ? 0 : 1;
out:
    harness_stop(&unlimited, false);
    harness_stop(&limited, false);
    line_env_stop(&line);
    curl_global_cleanup();
    return rc;
}
