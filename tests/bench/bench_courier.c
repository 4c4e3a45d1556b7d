/* bench_courier.c — courier events per second through cardd, against the
 * database's ceiling for the same table measured in the same run: pgbench
 * doing one INSERT into courier_events per transaction.
 *
 * On a private database with the bench's base data (the requests and their
 * timelines, BENCH_REQUESTS of them) and, on top of it
 * (tests/bench/courier_data.sql), a dispatch and a parcel per request shared
 * by BENCH_COURIERS couriers, it runs for BENCH_SECONDS each:
 *   ceiling  pgbench -M prepared -c16 -j2, one INSERT per transaction;
 *   single   wrk -t2 -c64: one signed event per call;
 *   batch    wrk -t2 -c16 with {"events": [...]} of 100, then of 500 events.
 * Each parcel gets picked_up, in_transit, out_for_delivery and delivered in
 * that order (three of the four move its status, with the notification,
 * callback and audit entry that go with it). The calls are signed before
 * wrk starts (tests/bench/courier.lua sends them), their timestamps inside
 * the allowed skew. It prints committed events/s, p50 and p99 of a call,
 * the ratios single/ceiling and batch/single, cardd's resident memory, and
 * spot-checks the events that landed (rows counted, every parcel's status).
 *
 *   make bench                                     (1,000,000 requests, 20 s a run)
 *   BENCH_REQUESTS=50000 BENCH_SECONDS=10 make bench
 *
 * BENCH_RUNS=single,b100 runs only those (of ceiling, single, b100, b500).
 * BENCH_PROFILE=1 prints where the database's time went (pg_stat_statements,
 * which the cluster must preload: pg_virtualenv -o
 * shared_preload_libraries=pg_stat_statements build/tests/bench_courier).
 */
#include "auth.h"
#include "flow.h"
#include "harness.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS      2
#define MAX_COURIERS 8
#define MIN_BLOCK    256 /* parcels whose events a thread interleaves, at least */
#define STEPS        4

static const char *const step_code[STEPS] = { "picked_up", "in_transit", "out_for_delivery",
                                              "delivered" };
/* What a parcel's request shows after its first k events (k = 1..4). */
static const char *const after_steps[STEPS + 1] = { "dispatched", "in_transit", "in_transit",
                                                    "out_for_delivery", "delivered" };

struct courier {
    char name[32], token[128], secret[128];
};

struct parcel {
    char tracking[14];
    int courier;
};

struct figures {
    double rate, p50_ms, p99_ms, seconds;
    long calls, non2xx, errors, events;
    double cardd_cpu_ms, db_cpu_ms; /* CPU time a run took, in all */
};

static struct courier couriers[MAX_COURIERS];
static int ncouriers;
static struct parcel *parcels;
static long nparcels;

static int env_int(const char *name, int fallback)
{
    const char *s = getenv(name);
    return s && atoi(s) > 0 ? atoi(s) : fallback;
}

static long sql_long(const char *sql)
{
    char out[64] = "";
    if (harness_sql(out, sizeof(out), sql) != 0)
        return -1;
    return atol(out);
}

/* A whole file with every "BENCH_REQUESTS" in it replaced by n. */
static char *sql_file(const char *rel, long n)
{
    char path[512], num[24];
    size_t len = 0;
    if (rel[0] == '/')
        snprintf(path, sizeof(path), "%s", rel);
    else
        harness_src(rel, path, sizeof(path));
    char *text = (char *)harness_slurp(path, &len);
    if (!text) {
        fprintf(stderr, "bench: cannot read %s\n", path);
        return NULL;
    }
    text[len] = '\0'; /* harness_slurp leaves a byte for it */
    snprintf(num, sizeof(num), "%ld", n);
    const char *key = "BENCH_REQUESTS";
    size_t out_len = len + 1, hits = 0;
    for (const char *p = text; (p = strstr(p, key)) != NULL; p += strlen(key))
        hits++;
    out_len += hits * strlen(num);
    char *out = malloc(out_len), *o = out;
    const char *p = text, *q;
    while (out && (q = strstr(p, key)) != NULL) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, num, strlen(num));
        o += strlen(num);
        p = q + strlen(key);
    }
    if (out)
        memcpy(o, p, strlen(p) + 1);
    free(text);
    return out;
}

static int run_sql_file(const char *rel, long n)
{
    char *sql = sql_file(rel, n);
    int rc = sql ? harness_sql(NULL, 0, sql) : -1;
    free(sql);
    return rc;
}

/* The base data, then the couriers (cardctl) and their parcels. */
static int load(struct service *svc, long requests)
{
    const char *base = getenv("BENCH_BASE_SQL");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (run_sql_file(base ? base : "tests/bench/base_data.sql", requests) != 0)
        return -1;
    for (int i = 0; i < ncouriers; i++) {
        snprintf(couriers[i].name, sizeof(couriers[i].name), "bench-courier-%d", i);
        if (flow_courier_add(svc, couriers[i].name, couriers[i].token, sizeof(couriers[i].token),
                             couriers[i].secret, sizeof(couriers[i].secret)) != 0)
            return -1;
    }
    if (run_sql_file("tests/bench/courier_data.sql", requests) != 0)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("data: %ld requests, %ld parcels, %ld request events, loaded in %.0f s\n",
           sql_long("SELECT count(*) FROM requests"), sql_long("SELECT count(*) FROM parcels"),
           sql_long("SELECT count(*) FROM request_events"),
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}

/* The bench's parcels, oldest first, with the index of their courier. */
static int read_parcels(long want)
{
    PGconn *c = PQconnectdb("");
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT p.tracking_no, c.name FROM parcels p JOIN couriers c ON c.id = p.courier_id"
             " JOIN dispatches d ON d.id = p.dispatch_id WHERE d.created_by = 'bench-courier'"
             " ORDER BY p.id LIMIT %ld",
             want);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int rc = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        nparcels = PQntuples(r);
        parcels = calloc((size_t)nparcels + 1, sizeof(*parcels));
        for (long i = 0; parcels && i < nparcels; i++) {
            snprintf(parcels[i].tracking, sizeof(parcels[i].tracking), "%s",
                     PQgetvalue(r, (int)i, 0));
            for (int k = 0; k < ncouriers; k++)
                if (strcmp(couriers[k].name, PQgetvalue(r, (int)i, 1)) == 0)
                    parcels[i].courier = k;
        }
        rc = parcels ? 0 : -1;
    } else {
        fprintf(stderr, "bench: parcels: %s\n", PQerrorMessage(c));
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* Parcels of one courier list whose events are interleaved: twice what a
 * thread has in flight of that list, so that two events of one parcel are
 * never in flight at once (nor two calls on one parcel, which would wait
 * for each other's lock). */
static long block_for(int conns, int per_call)
{
    long span = 2L * conns / THREADS * per_call / ncouriers;
    return span > MIN_BLOCK ? span : MIN_BLOCK;
}

/* Writes the signed calls of one run: parcels [first, first + n), events
 * tagged tag, `per_call` events a call; <prefix>.<thread> for each wrk
 * thread. A thread's parcels are its own, and of each courier's, `block` at
 * a time get their STEPS events in order (step by step over the block), so
 * that every part of a run has the same mix of events. Returns the number
 * of calls, or -1. */
static long write_calls(const char *prefix, const char *tag, long first, long n, int per_call,
                        long block)
{
    time_t now = time(NULL);
    long calls = 0;
    size_t cap = (size_t)per_call * 200 + 64;
    char *body = malloc(cap);
    long *mine = malloc(sizeof(long) * (size_t)(n + 1));
    if (!body || !mine)
        goto fail;
    for (int t = 0; t < THREADS; t++) {
        char path[512];
        snprintf(path, sizeof(path), "%s.%d", prefix, t);
        FILE *f = fopen(path, "w");
        if (!f)
            goto fail;
        /* Each courier's calls come in turn: a call carries one courier's events. */
        long pos[MAX_COURIERS] = { 0 }, count[MAX_COURIERS] = { 0 };
        long *lists[MAX_COURIERS];
        long used = 0;
        for (int k = 0; k < ncouriers; k++) {
            lists[k] = mine + used;
            for (long i = t; i < n; i += THREADS)
                if (parcels[first + i].courier == k)
                    lists[k][count[k]++] = first + i;
            used += count[k];
        }
        bool more = true;
        while (more) {
            more = false;
            for (int k = 0; k < ncouriers; k++) {
                long total = count[k] * STEPS;
                if (pos[k] >= total)
                    continue;
                more = true;
                size_t len = 0;
                int in_call = 0;
                if (per_call > 1)
                    len += (size_t)snprintf(body + len, cap - len, "{\"events\":[");
                for (; in_call < per_call && pos[k] < total; in_call++, pos[k]++) {
                    /* block parcels, all their steps, then the next block. */
                    long nb = pos[k] / (block * STEPS), in_block = pos[k] % (block * STEPS);
                    long base = nb * block;
                    long width = count[k] - base < block ? count[k] - base : block;
                    int step = (int)(in_block / width);
                    long p = lists[k][base + in_block % width];
                    char at[21];
                    time_t when = now - 20 * 3600 + step * 600;
                    struct tm tm;
                    gmtime_r(&when, &tm);
                    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
                    len += (size_t)snprintf(
                        body + len, cap - len,
                        "%s{\"event_id\":\"%s-%ld-%d\",\"tracking_no\":\"%s\",\"code\":\"%s\","
                        "\"at\":\"%s\",\"location\":\"Riyadh\"}",
                        in_call ? "," : "", tag, p, step, parcels[p].tracking, step_code[step], at);
                }
                if (per_call > 1)
                    len += (size_t)snprintf(body + len, cap - len, "]}");
                char sig[200];
                auth_sign(couriers[k].secret, (long)now, body, len, sig, sizeof(sig));
                fprintf(f, "%s\t%s\t%s\n", couriers[k].token, sig, body);
                calls++;
            }
        }
        fclose(f);
    }
    free(body);
    free(mine);
    return calls;
fail:
    free(body);
    free(mine);
    return -1;
}

static long rss_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            kib = atol(line + strlen(field) + 1);
    if (f)
        fclose(f);
    return kib;
}

/* utime + stime of a process, in clock ticks; 0 when it is gone. */
static long cpu_ticks(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    long utime = 0, stime = 0;
    /* after "pid (comm)": state ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime stime */
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) != 2)
        return 0;
    return utime + stime;
}

static long postmaster = -1;

/* CPU ticks of the cluster's server processes now alive (its connections
 * stay open through a run: cardd's pool, pgbench's clients). */
static long db_ticks(void)
{
    long total = 0;
    if (postmaster < 0) {
        char dir[512] = "", path[600], line[64];
        harness_sql(dir, sizeof(dir), "SELECT current_setting('data_directory')");
        snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
        FILE *f = fopen(path, "r");
        postmaster = f && fgets(line, sizeof(line), f) ? atol(line) : 0;
        if (f)
            fclose(f);
    }
    FILE *p = popen("ps -e -o pid=,ppid=", "r");
    long pid, ppid;
    while (p && fscanf(p, "%ld %ld", &pid, &ppid) == 2)
        if (ppid == postmaster || pid == postmaster)
            total += cpu_ticks(pid);
    if (p)
        pclose(p);
    return total;
}

static double ticks_ms(long ticks)
{
    return (double)ticks * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int run_wrk(struct service *svc, const char *prefix, int seconds, int conns,
                   struct figures *fig)
{
    char cmd[1024], lua[512], line[512];
    snprintf(cmd, sizeof(cmd), "wrk -t%d -c%d -d%ds --timeout 10s -s %s %s -- %s 2>&1", THREADS,
             conns, seconds, harness_src("tests/bench/courier.lua", lua, sizeof(lua)), svc->base,
             prefix);
    FILE *p = popen(cmd, "r");
    long duration_us = 0, p50 = 0, p99 = 0;
    int got = 0;
    while (p && fgets(line, sizeof(line), p)) {
        if (sscanf(line,
                   "BENCH requests=%ld duration_us=%ld non2xx=%ld errors=%ld p50_us=%ld "
                   "p99_us=%ld",
                   &fig->calls, &duration_us, &fig->non2xx, &fig->errors, &p50, &p99) == 6)
            got = 1;
        else if (strstr(line, "rror") || strstr(line, "unable"))
            fputs(line, stderr);
    }
    if (!p || pclose(p) != 0 || !got) {
        fprintf(stderr, "bench: wrk failed (%s)\n", cmd);
        return -1;
    }
    fig->p50_ms = (double)p50 / 1000;
    fig->p99_ms = (double)p99 / 1000;
    fig->seconds = (double)duration_us / 1e6;
    return 0;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* pgbench: one INSERT into courier_events per transaction, prepared, 16
 * clients (cardd's pool), on the bench's parcels. */
static int run_ceiling(struct service *svc, int seconds, struct figures *fig)
{
    char script[400], cmd[1024], line[512];
    snprintf(script, sizeof(script), "%s/ceiling.sql", svc->dir);
    FILE *f = fopen(script, "w");
    if (!f)
        return -1;
    long lo = sql_long("SELECT min(id) FROM parcels"), hi = sql_long("SELECT max(id) FROM parcels");
    long courier = sql_long("SELECT min(id) FROM couriers");
    fprintf(f,
            "\\set p random(%ld, %ld)\n"
            "INSERT INTO courier_events (courier_id, event_id, parcel_id, code, at, moved_status)"
            " VALUES (%ld, 'pgb-' || gen_random_uuid(), :p, 'in_transit', now(), false);\n",
            lo, hi, courier);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "cd %s && pgbench -n -M prepared -c16 -j2 -T%d --log --log-prefix=pgb -f %s 2>&1",
             svc->dir, seconds, script);
    FILE *p = popen(cmd, "r");
    double tps = 0;
    while (p && fgets(line, sizeof(line), p)) {
        if (sscanf(line, "tps = %lf", &tps) == 1)
            continue;
        if (strstr(line, "rror") || strstr(line, "abort"))
            fputs(line, stderr);
    }
    if (!p || pclose(p) != 0 || tps <= 0) {
        fprintf(stderr, "bench: pgbench failed (%s)\n", cmd);
        return -1;
    }
    /* Latencies from the transaction logs: "client tx latency_us script epoch us". */
    snprintf(cmd, sizeof(cmd), "cat %s/pgb.* | awk '{ print $3 }'; rm -f %s/pgb.*", svc->dir,
             svc->dir);
    p = popen(cmd, "r");
    size_t n = 0, cap = 1 << 16;
    long *lat = malloc(cap * sizeof(long));
    while (p && lat && fgets(line, sizeof(line), p)) {
        if (n == cap) {
            long *nl = realloc(lat, (cap *= 2) * sizeof(long));
            if (!nl)
                break;
            lat = nl;
        }
        lat[n++] = atol(line);
    }
    if (p)
        pclose(p);
    if (lat && n > 0) {
        qsort(lat, n, sizeof(long), cmp_long);
        fig->p50_ms = (double)lat[n / 2] / 1000;
        fig->p99_ms = (double)lat[n * 99 / 100] / 1000;
    }
    free(lat);
    fig->rate = tps;
    fig->calls = (long)n;
    return 0;
}

/* One wrk run of tag's events; fills fig with the events committed per second. */
static int run_events(struct service *svc, const char *tag, long first, long n, int per_call,
                      int seconds, int conns, struct figures *fig)
{
    char prefix[400], sql[256];
    snprintf(prefix, sizeof(prefix), "%s/calls-%s", svc->dir, tag);
    long block = block_for(conns, per_call);
    if (n / THREADS / ncouriers < block)
        fprintf(stderr,
                "bench: %s: %ld parcels a courier and thread, fewer than the %ld that keep its"
                " calls on different parcels: raise BENCH_REQUESTS\n",
                tag, n / THREADS / ncouriers, block);
    long calls = write_calls(prefix, tag, first, n, per_call, block);
    if (calls < 0)
        return -1;
    long c0 = cpu_ticks(svc->pid), d0 = db_ticks();
    if (run_wrk(svc, prefix, seconds, conns, fig) != 0)
        return -1;
    fig->cardd_cpu_ms = ticks_ms(cpu_ticks(svc->pid) - c0);
    fig->db_cpu_ms = ticks_ms(db_ticks() - d0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM courier_events WHERE event_id LIKE '%s-%%'",
             tag);
    fig->events = sql_long(sql);
    fig->rate = fig->seconds > 0 ? (double)fig->events / fig->seconds : 0;
    if (fig->calls >= calls)
        fprintf(stderr, "bench: %s: all %ld calls were sent before the end; the rate is low\n", tag,
                calls);
    return 0;
}

/* Every parcel of the run shows what its events say, and its events joined
 * the request's history. Returns the number of parcels that do not. */
static long spot_check(const char *tag)
{
    char sql[1024];
    long wrong = 0;
    for (int k = 1; k <= STEPS; k++) {
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM (SELECT parcel_id FROM courier_events"
                 " WHERE event_id LIKE '%s-%%' GROUP BY parcel_id"
                 " HAVING count(*) = %d AND max(event_id) LIKE '%%-%d') e"
                 " JOIN parcels p ON p.id = e.parcel_id JOIN requests r ON r.id = p.request_id"
                 " WHERE r.status <> '%s'",
                 tag, k, k - 1, after_steps[k]);
        wrong += sql_long(sql);
    }
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM courier_events ce JOIN parcels p ON p.id = ce.parcel_id"
             " WHERE ce.event_id LIKE '%s-%%' AND NOT EXISTS (SELECT 1 FROM request_events re"
             " WHERE re.request_id = p.request_id AND re.detail->>'event_id' = ce.event_id)",
             tag);
    wrong += sql_long(sql);
    return wrong;
}

static bool wanted(const char *run)
{
    const char *runs = getenv("BENCH_RUNS");
    if (!runs || !runs[0])
        return true;
    size_t n = strlen(run);
    for (const char *p = runs; (p = strstr(p, run)) != NULL; p += n)
        if ((p == runs || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

/* The statements that took the database's time, most first. */
static void profile(void)
{
    PGconn *c = PQconnectdb("");
    PGresult *r = PQexec(c, "SELECT calls, round(total_exec_time)::bigint,"
                            " round((mean_exec_time * 1000)::numeric, 0),"
                            " regexp_replace(left(query, 150), '\\s+', ' ', 'g')"
                            " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        printf("profile: calls, total ms, mean us, statement\n");
        for (int i = 0; i < PQntuples(r); i++)
            printf("  %9s %8s %6s  %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                   PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
    } else {
        fprintf(stderr, "bench: profile: %s\n", PQerrorMessage(c));
    }
    PQclear(r);
    PQfinish(c);
}

static void print_run(const char *what, const struct figures *f)
{
    printf("%-28s %8.0f events/s  p50 %7.1f ms  p99 %7.1f ms  calls %ld  non-2xx %ld  errors "
           "%ld\n",
           what, f->rate, f->p50_ms, f->p99_ms, f->calls, f->non2xx, f->errors);
    if (f->events > 0)
        printf("%-28s CPU per event: cardd %.0f us, database %.0f us\n", "",
               f->cardd_cpu_ms * 1000 / (double)f->events, f->db_cpu_ms * 1000 / (double)f->events);
}

int main(void)
{
    long requests = env_int("BENCH_REQUESTS", 1000000);
    int seconds = env_int("BENCH_SECONDS", 20);
    int conns = env_int("BENCH_CONNECTIONS", 64);
    /* Batches: as many clients as the pool has connections (a courier's
     * system sends a few at a time; more would wait for a connection). */
    int bconns = env_int("BENCH_BATCH_CONNECTIONS", 16);
    ncouriers = env_int("BENCH_COURIERS", 4);
    if (ncouriers > MAX_COURIERS)
        ncouriers = MAX_COURIERS;
    struct service svc;
    struct figures ceiling = { 0 }, single = { 0 }, b100 = { 0 }, b500 = { 0 };
    int rc = 1;
    memset(&svc, 0, sizeof(svc));
    if (harness_setup(&svc, "db_pool_size = 16\nper_ip_connections = 1024\n"
                            "max_connections = 1024\n") != 0 ||
        load(&svc, requests) != 0 || harness_start(&svc) != 0)
        goto out;
    /* Enough parcels that no run spends its calls before its time is up
     * (about 10,000 events/s), each run its own. */
    long per_run = (long)seconds * 2500;
    if (per_run < block_for(bconns, 500) * THREADS * ncouriers)
        per_run = block_for(bconns, 500) * THREADS * ncouriers;
    if (read_parcels(per_run * 3) != 0)
        goto out;
    if (nparcels < per_run * 3)
        per_run = nparcels / 3;
    printf("cardd: db_pool_size 16; wrk -t%d, -c%d for single events, -c%d for batches, %d s a"
           " run; %d couriers; %ld parcels a run\n",
           THREADS, conns, bconns, seconds, ncouriers, per_run);

    bool prof = getenv("BENCH_PROFILE") && atoi(getenv("BENCH_PROFILE")) > 0;
    if (prof && harness_sql(NULL, 0,
                            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
                            " SELECT pg_stat_statements_reset()") != 0)
        goto out;
    if (wanted("ceiling") && run_ceiling(&svc, seconds, &ceiling) != 0)
        goto out;
    if (prof && wanted("ceiling"))
        harness_sql(NULL, 0, "SELECT pg_stat_statements_reset()");
    if (wanted("single") && run_events(&svc, "s", 0, per_run, 1, seconds, conns, &single) != 0)
        goto out;
    long rss_single = rss_kib(svc.pid, "VmRSS:");
    if ((wanted("b100") &&
         run_events(&svc, "b100", per_run, per_run, 100, seconds, bconns, &b100) != 0) ||
        (wanted("b500") &&
         run_events(&svc, "b500", 2 * per_run, per_run, 500, seconds, bconns, &b500) != 0))
        goto out;
    long rss = rss_kib(svc.pid, "VmRSS:"), hwm = rss_kib(svc.pid, "VmHWM:");
    if (prof)
        profile();

    print_run("ceiling (pgbench, 1 INSERT)", &ceiling);
    print_run("single events", &single);
    print_run("batches of 100", &b100);
    print_run("batches of 500", &b500);
    printf("ratio single / ceiling: %.2f (target 0.8)\n", single.rate / ceiling.rate);
    printf("ratio batch 100 / single: %.2f, batch 500 / single: %.2f (target 5)\n",
           b100.rate / single.rate, b500.rate / single.rate);
    printf("cardd resident memory: %ld KiB after single events, %ld KiB after batches, peak %ld "
           "KiB\n",
           rss_single, rss, hwm);
    long wrong = spot_check("s") + spot_check("b100") + spot_check("b500");
    printf("spot check: %ld events landed; %ld parcels or histories disagree with their events\n",
           single.events + b100.events + b500.events, wrong);
    printf("reproduce: BENCH_REQUESTS=%ld BENCH_SECONDS=%d BENCH_CONNECTIONS=%d"
           " BENCH_BATCH_CONNECTIONS=%d make bench\n",
           requests, seconds, conns, bconns);
    rc = wrong == 0 && (single.events > 0 || !wanted("single")) &&
                 (b100.events > 0 || !wanted("b100")) && (b500.events > 0 || !wanted("b500")) &&
                 single.non2xx == 0 && b100.non2xx == 0 && b500.non2xx == 0
             ? 0
             : 1;
out:
    harness_stop(&svc, false);
    free(parcels);
    return rc;
}
