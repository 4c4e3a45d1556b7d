/* bench_track.c — citizens' tracking (POST /v1/track) against the
 * database's ceiling for the same look-up, in one run on one machine.
 *
 * A private database gets the benches' data set (tests/bench/base_data.sql
 * and tests/bench/track_data.sql: BENCH_REQUESTS requests, 1,000,000 by
 * default, each out for delivery with a timeline of 6 entries); cardd
 * serves it while wrk (-t2 -c64) looks up random pairs, a share of them
 * (BENCH_TRACK_MISS_PERCENT, 10) matching nothing (tests/bench/track.lua);
 * in the same run pgbench (-M prepared -c16 -j2) runs the two statements
 * that a look-up took before (tests/bench/track_ceiling.pgbench). Each
 * side runs BENCH_TRACK_ROUNDS rounds of BENCH_TRACK_SECONDS, alternately;
 * the medians are compared. Answers are checked before and after the load,
 * and every answer under load is counted: one that is not a 200 with the
 * delivery or a 404 fails the bench.
 *
 *   make bench                    (every bench)
 *   ONLY=bench_track make bench   (this one: 1,000,000 requests, 3 rounds of 15 s)
 *   BENCH_REQUESTS=100000 BENCH_TRACK_SECONDS=5 BENCH_TRACK_ROUNDS=1 ONLY=bench_track make bench
 */
#include "harness.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECKS 20 /* pairs checked field by field, before and after the load */

struct side {
    double rate; /* look-ups per second */
    double p50_ms, p99_ms;
};

struct wrk_counts {
    long ok, not_found, other, bad, errors;
};

static int env_int(const char *name, int fallback)
{
    const char *s = getenv(name);
    return s && atoi(s) > 0 ? atoi(s) : fallback;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The national ID of request i of base_data.sql: 1, i in 8 digits, Luhn digit. */
static void bench_nid(long i, char out[11])
{
    char nine[24];
    snprintf(nine, sizeof(nine), "1%08ld", i % 100000000);
    make_national_id(nine, out);
}

static void bench_no(long i, char *out, size_t len)
{
    snprintf(out, len, "RQ-B-%07ld", i);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One look-up from a client address of its own (the service trusts the
 * loopback as a proxy), so that failed look-ups are not held by the limit. */
static int track(struct service *svc, const char *no, const char *nid, struct reply *r)
{
    static unsigned client;
    char body[128], xff[64];
    client++;
    snprintf(body, sizeof(body), "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    snprintf(xff, sizeof(xff), "X-Forwarded-For: 198.19.%u.%u", (client >> 8) & 255,
             1 + client % 254);
    const char *headers[] = { "Content-Type: application/json", xff, NULL };
    return http_call(svc, "POST", "/v1/track", headers, body, strlen(body), r);
}

static const char *jstr(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Request i's answer, field by field, against its rows. */
static bool check_found(struct service *svc, long i)
{
    static const char *const steps[] = { "queued",     "in_production", "produced",
                                         "dispatched", "in_transit",    "out_for_delivery" };
    char no[32], nid[11], sql[256], want[64];
    struct reply r;
    bench_no(i, no, sizeof(no));
    bench_nid(i, nid);
    if (track(svc, no, nid, &r) != 0 || r.status != 200 || !r.json) {
        fprintf(stderr, "bench: %s answered %ld\n", no, r.status);
        reply_free(&r);
        return false;
    }
    json_t *j = r.json, *tl = json_object_get(j, "timeline");
    bool ok =
        same(jstr(j, "request_no", NULL), no) && same(jstr(j, "kind", NULL), "national_id") &&
        same(jstr(j, "reason", NULL), "lost") &&
        same(jstr(j, "status", NULL), "out_for_delivery") &&
        same(jstr(j, "status_label", "en"), "Out for delivery") &&
        same(jstr(j, "delivery", "method"), "home") &&
        same(jstr(j, "delivery", "address"), "Riyadh, Al Olaya, ****") &&
        json_integer_value(json_object_get(json_object_get(j, "delivery"), "attempts")) == 1 &&
        json_is_null(json_object_get(json_object_get(j, "delivery"), "branch")) &&
        json_array_size(tl) == 6 && !json_object_get(j, "national_id") &&
        !json_object_get(j, "phone");
    snprintf(sql, sizeof(sql), "SELECT rfc3339(updated_at) FROM requests WHERE id = %ld", i);
    ok = ok && harness_sql(want, sizeof(want), sql) == 0 && same(jstr(j, "updated_at", NULL), want);
    for (size_t k = 0; ok && k < 6; k++) {
        json_t *e = json_array_get(tl, k);
        snprintf(sql, sizeof(sql),
                 "SELECT rfc3339(at) FROM request_events WHERE request_id = %ld AND status = '%s'",
                 i, steps[k]);
        ok = same(jstr(e, "status", NULL), steps[k]) && harness_sql(want, sizeof(want), sql) == 0 &&
             same(jstr(e, "at", NULL), want);
    }
    if (!ok)
        fprintf(stderr, "bench: %s: wrong answer: %.400s\n", no, r.body ? r.body : "");
    reply_free(&r);
    return ok;
}

/* An unknown request number and another holder's ID: the same 404. */
static bool check_not_found(struct service *svc, long i, long n)
{
    char no[32], unknown[32], other[11];
    struct reply a, b;
    bench_no(i, no, sizeof(no));
    snprintf(unknown, sizeof(unknown), "RQ-X-%07ld", i);
    bench_nid(i % n + 1, other);
    bool ok = track(svc, unknown, other, &a) == 0 && track(svc, no, other, &b) == 0 &&
              a.status == 404 && b.status == 404 &&
              same(jstr(a.json, "type", NULL), jstr(b.json, "type", NULL)) &&
              same(jstr(a.json, "detail", NULL), jstr(b.json, "detail", NULL));
    if (!ok)
        fprintf(stderr, "bench: not-found look-ups answered %ld and %ld\n", a.status, b.status);
    reply_free(&a);
    reply_free(&b);
    return ok;
}

static bool spot_check(struct service *svc, long n)
{
    bool ok = check_found(svc, 1) && check_found(svc, n) && check_not_found(svc, n, n);
    for (int k = 0; ok && k < CHECKS; k++) {
        long i = 1 + (long)(((unsigned long)rand() * 7919UL) % (unsigned long)n);
        ok = check_found(svc, i) && check_not_found(svc, i, n);
    }
    return ok;
}

/* One at a time, alternately: the p50 of found and of not-found look-ups,
 * without a queue in front of either. */
static void found_vs_not_found(struct service *svc, long n, int calls, double *found_ms,
                               double *missing_ms)
{
    double *f = calloc((size_t)calls, sizeof(double)), *m = calloc((size_t)calls, sizeof(double));
    for (int k = 0; f && m && k < calls; k++) {
        long i = 1 + (long)(((unsigned long)rand() * 104729UL) % (unsigned long)n);
        char no[32], nid[11], unknown[32];
        struct reply r;
        bench_no(i, no, sizeof(no));
        bench_nid(i, nid);
        snprintf(unknown, sizeof(unknown), "RQ-X-%07ld", i);
        double t0 = now_s();
        track(svc, no, nid, &r);
        f[k] = (now_s() - t0) * 1000;
        reply_free(&r);
        t0 = now_s();
        track(svc, unknown, nid, &r);
        m[k] = (now_s() - t0) * 1000;
        reply_free(&r);
    }
    *found_ms = f && m ? median(f, calls) : 0;
    *missing_ms = f && m ? median(m, calls) : 0;
    free(f);
    free(m);
}

/* Runs a shell command; its standard output goes to out (at most len). */
static int run_capture(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    return pclose(p) == 0 ? 0 : -1;
}

/* The base data and tracking's on top (one session: the second uses the
 * first's functions), then VACUUM: the rows are all visible, as they are
 * long after they were written. */
static int load(long n)
{
    char base[512], track[512], cmd[1400];
    harness_src("tests/bench/base_data.sql", base, sizeof(base));
    harness_src("tests/bench/track_data.sql", track, sizeof(track));
    snprintf(cmd, sizeof(cmd),
             "(cat %s %s; echo 'VACUUM ANALYZE;') | sed 's/BENCH_REQUESTS/%ld/g'"
             " | psql -q -X -v ON_ERROR_STOP=1 >/dev/null",
             base, track, n);
    return system(cmd) == 0 ? 0 : -1;
}

/* pgbench's per-transaction logs in dir: the p50 and p99 of their latency. */
static void pgbench_percentiles(const char *dir, struct side *s)
{
    char pattern[600];
    glob_t g;
    size_t cap = 1 << 16, n = 0;
    double *v = malloc(cap * sizeof(double));
    snprintf(pattern, sizeof(pattern), "%s/pgb.*", dir);
    if (v && glob(pattern, 0, NULL, &g) == 0) {
        for (size_t f = 0; f < g.gl_pathc; f++) {
            FILE *in = fopen(g.gl_pathv[f], "r");
            long client, tx, us;
            while (in && fscanf(in, "%ld %ld %ld %*[^\n]", &client, &tx, &us) == 3) {
                if (n == cap) {
                    double *nv = realloc(v, (cap *= 2) * sizeof(double));
                    if (!nv)
                        break;
                    v = nv;
                }
                v[n++] = (double)us / 1000;
            }
            if (in)
                fclose(in);
            unlink(g.gl_pathv[f]);
        }
        globfree(&g);
    }
    if (n > 0) {
        qsort(v, n, sizeof(*v), cmp_double);
        s->p50_ms = v[n / 2];
        s->p99_ms = v[n * 99 / 100];
    }
    free(v);
}

static int run_pgbench(long n, int seconds, const char *dir, struct side *s)
{
    char script[512], cmd[1400], out[4096];
    harness_src("tests/bench/track_ceiling.pgbench", script, sizeof(script));
    snprintf(cmd, sizeof(cmd),
             "pgbench -n -M prepared -c16 -j2 -T%d -D requests=%ld -f %s -l --log-prefix=%s/pgb"
             " 2>/dev/null",
             seconds, n, script, dir);
    memset(s, 0, sizeof(*s));
    if (run_capture(cmd, out, sizeof(out)) != 0) {
        fprintf(stderr, "bench: pgbench failed:\n%s\n", out);
        return -1;
    }
    const char *tps = strstr(out, "tps = ");
    s->rate = tps ? atof(tps + 6) : 0;
    pgbench_percentiles(dir, s);
    return s->rate > 0 ? 0 : -1;
}

static int run_wrk(struct service *svc, long n, int seconds, int miss, struct side *s,
                   struct wrk_counts *c)
{
    char lua[512], cmd[1400], out[8192];
    harness_src("tests/bench/track.lua", lua, sizeof(lua));
    snprintf(cmd, sizeof(cmd), "wrk -t2 -c64 -d%ds --timeout 10s -s %s %s -- %ld %d 2>&1", seconds,
             lua, svc->base, n, miss);
    memset(s, 0, sizeof(*s));
    run_capture(cmd, out, sizeof(out));
    const char *line = strstr(out, "track: ");
    long requests = 0, p50 = 0, p99 = 0;
    double secs = 0;
    struct wrk_counts r = { 0 };
    if (!line || sscanf(line,
                        "track: ok %ld not_found %ld other %ld bad %ld requests %ld seconds %lf"
                        " p50_us %ld p99_us %ld errors %ld",
                        &r.ok, &r.not_found, &r.other, &r.bad, &requests, &secs, &p50, &p99,
                        &r.errors) != 9) {
        fprintf(stderr, "bench: wrk said:\n%s\n", out);
        return -1;
    }
    s->rate = secs > 0 ? (double)requests / secs : 0;
    s->p50_ms = (double)p50 / 1000;
    s->p99_ms = (double)p99 / 1000;
    c->ok += r.ok, c->not_found += r.not_found, c->other += r.other, c->bad += r.bad;
    c->errors += r.errors;
    return 0;
}

/* VmHWM and VmRSS of pid, in KiB. */
static void memory_of(pid_t pid, long *hwm_kib, long *rss_kib)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    *hwm_kib = *rss_kib = -1;
    while (f && fgets(line, sizeof(line), f)) {
        sscanf(line, "VmHWM: %ld", hwm_kib);
        sscanf(line, "VmRSS: %ld", rss_kib);
    }
    if (f)
        fclose(f);
}

/* The rounds, each side in turn; the medians land in db and us. */
static int rounds(struct service *svc, long n, int count, int seconds, int miss, struct side *db,
                  struct side *us, struct wrk_counts *c)
{
    double dr[16], dp50[16], dp99[16], ur[16], up50[16], up99[16];
    char dir[] = "/tmp/bench_track.XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    for (int k = 0; k < count; k++) {
        struct side d, u;
        if (run_pgbench(n, seconds, dir, &d) != 0 || run_wrk(svc, n, seconds, miss, &u, c) != 0) {
            rmdir(dir);
            return -1;
        }
        printf("round %d: pgbench %.0f/s p50 %.2f ms p99 %.2f ms; cardd %.0f/s p50 %.2f ms"
               " p99 %.2f ms\n",
               k + 1, d.rate, d.p50_ms, d.p99_ms, u.rate, u.p50_ms, u.p99_ms);
        fflush(stdout);
        dr[k] = d.rate, dp50[k] = d.p50_ms, dp99[k] = d.p99_ms;
        ur[k] = u.rate, up50[k] = u.p50_ms, up99[k] = u.p99_ms;
    }
    rmdir(dir);
    db->rate = median(dr, count), db->p50_ms = median(dp50, count);
    db->p99_ms = median(dp99, count);
    us->rate = median(ur, count), us->p50_ms = median(up50, count);
    us->p99_ms = median(up99, count);
    return 0;
}

int main(void)
{
    long n = env_int("BENCH_REQUESTS", 1000000);
    int seconds = env_int("BENCH_TRACK_SECONDS", 15);
    int count = env_int("BENCH_TRACK_ROUNDS", 3);
    int miss = env_int("BENCH_TRACK_MISS_PERCENT", 10);
    struct service svc;
    struct side db, us;
    struct wrk_counts c = { 0 };
    char out[512];
    int rc = 1;
    if (count > 16)
        count = 16;
    srand(13);
    /* pgbench's 16 sessions against cardd's pool: as many connections for
     * the anonymous look-ups, and room for 64 clients from one address. */
    if (harness_setup(&svc, "db_pool_size = 20\ndb_public_connections = 16\n"
                            "per_ip_connections = 128\ntrusted_proxies = 127.0.0.1\n"
                            "log_level = warn\n") != 0 ||
        harness_ctl(&svc, out, sizeof(out), "courier", "add", "bench-courier", NULL) != 0)
        goto out;
    double t0 = now_s();
    if (load(n) != 0) {
        fprintf(stderr, "bench: the data set did not load\n");
        goto out;
    }
    printf("data set: %ld requests x 6 timeline entries, loaded in %.0f s\n", n, now_s() - t0);
    if (harness_start(&svc) != 0)
        goto out;
    if (!spot_check(&svc, n)) {
        fprintf(stderr, "bench: wrong answers before the load\n");
        goto out;
    }
    double found_ms, missing_ms;
    found_vs_not_found(&svc, n, 1000, &found_ms, &missing_ms);
    if (rounds(&svc, n, count, seconds, miss, &db, &us, &c) != 0)
        goto out;
    long hwm, rss;
    memory_of(svc.pid, &hwm, &rss);
    bool after = spot_check(&svc, n);
    long total = c.ok + c.not_found + c.other + c.bad;
    printf("answers under load: %ld (200 with the delivery %ld, 404 %ld, other %ld, wrong %ld,"
           " socket errors %ld)\n",
           total, c.ok, c.not_found, c.other, c.bad, c.errors);
    printf("pgbench -M prepared -c16 -j2 (the two statements): %.0f/s, p50 %.2f ms, p99 %.2f ms\n",
           db.rate, db.p50_ms, db.p99_ms);
    printf("cardd POST /v1/track, wrk -t2 -c64, %d%% not found: %.0f/s, p50 %.2f ms, p99 %.2f ms\n",
           miss, us.rate, us.p50_ms, us.p99_ms);
    printf("ratio cardd/pgbench: %.2f (target >= 1.0); p99 %.2f ms (target <= 10)\n",
           us.rate / db.rate, us.p99_ms);
    printf("cardd memory: VmHWM %.1f MiB, VmRSS %.1f MiB (target <= 64)\n", hwm / 1024.0,
           rss / 1024.0);
    printf("one at a time: p50 found %.2f ms, not found %.2f ms (ratio %.2f, target within 10%%)\n",
           found_ms, missing_ms, missing_ms / found_ms);
    printf("reproduce: BENCH_REQUESTS=%ld BENCH_TRACK_SECONDS=%d BENCH_TRACK_ROUNDS=%d"
           " ONLY=bench_track make bench\n",
           n, seconds, count);
    rc = after && c.other == 0 && c.bad == 0 && c.ok > 0 ? 0 : 1;
    if (!after)
        fprintf(stderr, "bench: wrong answers after the load\n");
out:
    harness_stop(&svc, false);
    return rc;
}
