/* bench_production.c — cards per hour with 8 emulated stations (four hosts
 * of two, each with its own service instance, one database) at a printing
 * cycle, against the ceiling stations × 3600 / cycle. The emulated printer
 * takes exactly one cycle from feed to eject whatever the host does inside
 * it, so every second lost is the software's: claiming, recording, polling.
 *
 *   make bench                                  (cycle 16 s, 3 cards a station)
 *   BENCH_CYCLE_MS=4000 BENCH_CARDS=5 make bench
 */
#include "harness.h"
#include "line_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATIONS 8
#define HOSTS    (STATIONS / LINE_STATIONS_PER_HOST)

static long sql_long(const char *sql)
{
    char out[64] = "";
    if (harness_sql(out, sizeof(out), sql) != 0)
        return -1;
    return atol(out);
}

static double sql_double(const char *sql)
{
    char out[64] = "";
    if (harness_sql(out, sizeof(out), sql) != 0)
        return -1;
    return atof(out);
}

static int env_int(const char *name, int fallback)
{
    const char *s = getenv(name);
    return s && atoi(s) > 0 ? atoi(s) : fallback;
}

int main(void)
{
    int cycle_ms = env_int("BENCH_CYCLE_MS", 16000);
    int per_station = env_int("BENCH_CARDS", 3);
    int total = STATIONS * per_station;
    struct line_env line;
    struct service svc[HOSTS];
    char config[2048], token[128], operator_[128], body[256];
    int rc = 1;

    memset(svc, 0, sizeof(svc));
    if (line_env_start(&line, STATIONS, cycle_ms) != 0) {
        fprintf(stderr, "bench: the emulated line did not start\n");
        goto out;
    }
    for (int h = 0; h < HOSTS; h++) {
        line_env_config(&line, h, "st", config, sizeof(config));
        if ((h == 0 ? harness_setup(&svc[0], config) : harness_clone(&svc[0], &svc[h], config)) !=
            0)
            goto out;
    }
    if (line_env_keys(&line, svc[0].dir, "B-1") != 0 ||
        harness_token(&svc[0], "intake", "absher", token, sizeof(token)) ||
        harness_token(&svc[0], "operator", "op", operator_, sizeof(operator_)))
        goto out;

    /* The queue is full before the stations start, as on a working morning. */
    for (int h = 0; h < HOSTS; h++) {
        line_env_export(&line, h);
        if (h == 0 && harness_start(&svc[0]) != 0)
            goto out;
        line_env_unexport();
        if (h == 0) {
            struct reply r;
            for (int i = 0; i < total; i++) {
                char no[32], nine[16], nid[11];
                snprintf(no, sizeof(no), "RQ-B-%05d", i);
                snprintf(nine, sizeof(nine), "1%08d", 7000 + i);
                make_national_id(nine, nid);
                char *req = sample_request(no, nid, "national_id", "lost");
                http_post_json(&svc[0], token, "/v1/requests", req, &r);
                reply_free(&r);
                free(req);
            }
            /* Stations on host 1 would start early: hold them until all run. */
            harness_sql(NULL, 0, "UPDATE stations SET paused = true");
            snprintf(body, sizeof(body),
                     "{\"batch_no\":\"B-1\",\"first_serial\":\"B00000001\",\"count\":%d}",
                     total + 20);
            http_post_json(&svc[0], operator_, "/v1/stock/batches", body, &r);
            reply_free(&r);
        }
    }
    for (int h = 1; h < HOSTS; h++) {
        line_env_export(&line, h);
        if (harness_start(&svc[h]) != 0)
            goto out;
        line_env_unexport();
    }
    sleep(1);
    harness_sql(NULL, 0, "UPDATE stations SET paused = false");

    int limit_s = (per_station + 2) * cycle_ms / 1000 + 60;
    for (int i = 0; i < limit_s * 10; i++) {
        if (sql_long("SELECT count(*) FROM requests WHERE status = 'produced'") >= total)
            break;
        usleep(100000);
    }
    long produced = sql_long("SELECT count(*) FROM requests WHERE status = 'produced'");
    long spoiled = sql_long("SELECT count(*) FROM cards WHERE state = 'spoiled'");
    long stations_used = sql_long(
        "SELECT count(DISTINCT station_id) FROM production_attempts WHERE outcome = 'produced'");
    /* Each station's rate from its first claim to its last card recorded,
     * summed: the stations do not start at the same instant. */
    double per_hour =
        sql_double("SELECT sum(n / extract(epoch FROM last - first)) * 3600 FROM"
                   " (SELECT count(*) AS n, min(started_at) AS first, max(finished_at) AS last"
                   "  FROM production_attempts WHERE outcome = 'produced' GROUP BY station_id) s");
    double window = sql_double("SELECT extract(epoch FROM max(finished_at) - min(started_at))"
                               " FROM production_attempts");
    double gap = sql_double(
        "SELECT avg(extract(epoch FROM (p.started_at - q.finished_at)))"
        " FROM production_attempts p JOIN production_attempts q"
        " ON q.station_id = p.station_id AND q.id = (SELECT max(id) FROM production_attempts x"
        "  WHERE x.station_id = p.station_id AND x.id < p.id)");
    double ceiling = STATIONS * 3600.0 / (cycle_ms / 1000.0);
    printf("stations %d (%d service instances, one database), printing cycle %.1f s, %d cards\n",
           STATIONS, HOSTS, cycle_ms / 1000.0, total);
    printf("produced %ld, spoiled %ld, on %ld stations, in %.1f s\n", produced, spoiled,
           stations_used, window);
    printf("software time between two cards of a station: %.0f ms on average\n", gap * 1000);
    printf("cards per hour: %.0f; ceiling %d x 3600 / %.1f s = %.0f; ratio %.3f\n", per_hour,
           STATIONS, cycle_ms / 1000.0, ceiling, per_hour / ceiling);
    printf("reproduce: BENCH_CYCLE_MS=%d BENCH_CARDS=%d make bench\n", cycle_ms, per_station);
    rc = produced == total && spoiled == 0 ? 0 : 1;
out:
    for (int h = 0; h < HOSTS; h++)
        harness_stop(&svc[h], false);
    line_env_stop(&line);
    return rc;
}
