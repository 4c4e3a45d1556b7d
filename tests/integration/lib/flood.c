/* flood.c — see flood.h. */
#define _GNU_SOURCE /* memmem */
#include "flood.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define FLOOD_MAX_CLIENTS 64

struct flooder {
    struct flood *f;
    pthread_t th;
    struct flood_stats st;
    bool retry_after, problem, close; /* the last answer's headers */
};

struct flood {
    atomic_int running;
    char url[128], address[64], body[256];
    int clients;
    struct flooder fl[FLOOD_MAX_CLIENTS];
};

static size_t discard(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    (void)userp;
    return size * nmemb;
}

static size_t header_seen(char *data, size_t size, size_t nmemb, void *userp)
{
    struct flooder *fl = userp;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0)
        fl->retry_after = true;
    if (n > 13 && strncasecmp(data, "Content-Type:", 13) == 0 &&
        memmem(data, n, "application/problem+json", 24))
        fl->problem = true;
    if (n > 11 && strncasecmp(data, "Connection:", 11) == 0 && memmem(data, n, "close", 5))
        fl->close = true;
    return n;
}

static void *flood_client(void *arg)
{
    struct flooder *fl = arg;
    struct flood *f = fl->f;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, f->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_seen);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, fl);
    curl_easy_setopt(c, CURLOPT_INTERFACE, f->address);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    while (f->running) {
        long status = 0;
        fl->retry_after = fl->problem = fl->close = false;
        if (curl_easy_perform(c) != CURLE_OK) {
            fl->st.failed++; /* refused at the door: over the address's connections */
            usleep(5000);
            continue;
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200)
            fl->st.ok++;
        else if (status == 429 && fl->retry_after && fl->problem && fl->close)
            fl->st.held++;
        else if (status == 429 && fl->retry_after && fl->problem)
            fl->st.limited++;
        else if (status == 503)
            fl->st.busy++;
        else
            fl->st.other++;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

int flood_start(struct flood **out, struct service *svc, const char *address, const char *body,
                int clients)
{
    *out = NULL;
    if (clients < 1 || clients > FLOOD_MAX_CLIENTS)
        return -1;
    struct flood *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->url, sizeof(f->url), "%s/v1/track", svc->base);
    snprintf(f->address, sizeof(f->address), "%s", address);
    snprintf(f->body, sizeof(f->body), "%s", body);
    f->running = 1;
    for (int i = 0; i < clients; i++) {
        f->fl[i].f = f;
        if (pthread_create(&f->fl[i].th, NULL, flood_client, &f->fl[i]) != 0) {
            f->running = 0;
            for (int k = 0; k < i; k++)
                pthread_join(f->fl[k].th, NULL);
            free(f);
            return -1;
        }
        f->clients++;
    }
    *out = f;
    return 0;
}

void flood_stop(struct flood *f, struct flood_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!f)
        return;
    f->running = 0;
    for (int i = 0; i < f->clients; i++) {
        pthread_join(f->fl[i].th, NULL);
        st->ok += f->fl[i].st.ok;
        st->limited += f->fl[i].st.limited;
        st->held += f->fl[i].st.held;
        st->busy += f->fl[i].st.busy;
        st->other += f->fl[i].st.other;
        st->failed += f->fl[i].st.failed;
    }
    free(f);
}

int flood_target(struct service *svc, const char *intake_token, char *body, size_t len)
{
    char no[40], nid[11];
    struct reply r;
    harness_fresh_no("RQ-FLD", no, sizeof(no));
    harness_fresh_nid(nid);
    char *req = sample_request(no, nid, "family_record", "lost");
    int rc = req ? http_post_json(svc, intake_token, "/v1/requests", req, &r) : -1;
    free(req);
    if (rc != 0)
        return -1;
    rc = r.status == 201 ? 0 : -1;
    reply_free(&r);
    snprintf(body, len, "{\"request_no\":\"%s\",\"national_id\":\"%s\"}", no, nid);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int intake_run(struct service *svc, const char *intake_token, double *lat, int n, int gap_ms)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char no[40], nid[11];
        struct reply r;
        harness_fresh_no("RQ-BUD", no, sizeof(no));
        harness_fresh_nid(nid);
        char *body = sample_request(no, nid, i % 3 ? "family_record" : "national_id", "lost");
        double t0 = now_s();
        int rc = body ? http_post_json(svc, intake_token, "/v1/requests", body, &r) : -1;
        lat[i] = now_s() - t0;
        if (rc != 0 || r.status != 201) {
            fprintf(stderr, "intake %d answered %ld: %s\n", i, rc ? 0 : r.status,
                    rc == 0 && r.body ? r.body : "");
            bad++;
        }
        if (rc == 0)
            reply_free(&r);
        free(body);
        usleep((useconds_t)gap_ms * 1000);
    }
    return bad;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double percentile(double *v, int n, double p)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
    int i = (int)(p * n);
    return v[i >= n ? n - 1 : i];
}

long cards_produced(void)
{
    return harness_sql_long("SELECT count(*) FROM requests WHERE status = 'produced'");
}
