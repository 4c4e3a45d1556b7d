/* callbacks.c — the callback outbox and its worker (see callbacks.h). */
#include "callbacks.h"
#include "backoff.h"
#include "audit.h"
#include "app.h"
#include "claim.h"
#include "db.h"
#include "log.h"
#include "status.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 200 /* how often the worker looks for due callbacks */

/* One callback for each of many changes, one per request, in the order
 * given ($1: [{"request_id", "status", "at", "ar", "en"}]). */
static const struct db_stmt callbacks_enqueue_stmt = {
    "callbacks_enqueue",
    "WITH x AS (SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (request_id bigint,"
    "  status text, at timestamptz, ar text, en text))"
    "  WITH ORDINALITY AS x(request_id, status, at, ar, en, ord)),"
    " n AS (SELECT x.*, gen_random_uuid() AS u,"
    "  coalesce((SELECT max(sequence) FROM callbacks c WHERE c.request_id = x.request_id), 0)"
    "  + 1 AS seq, coalesce(x.at, now()) AS at_ FROM x),"
    " r AS (SELECT n.ord, r.id, r.request_no, r.national_id,"
    "  coalesce(p.failed_attempts, 0) + CASE WHEN n.status IN ('out_for_delivery','delivered')"
    "   THEN 1 ELSE 0 END AS attempts, to_char(p.collect_by, 'YYYY-MM-DD') AS collect_by,"
    "  CASE WHEN b.branch_id IS NULL THEN 'null'::jsonb ELSE jsonb_build_object("
    "   'branch_id', b.branch_id, 'name', jsonb_build_object('ar', b.name_ar, 'en', b.name_en),"
    "   'city', b.city, 'lat', b.lat, 'lon', b.lon) END AS branch"
    "  FROM n JOIN requests r ON r.id = n.request_id LEFT JOIN parcels p ON p.request_id = r.id"
    "  LEFT JOIN branches b ON b.branch_id = p.branch_id)"
    " INSERT INTO callbacks (callback_id, request_id, sequence, status, payload)"
    " SELECT n.u, r.id, n.seq, n.status, jsonb_build_object('callback_id', n.u,"
    "  'request_no', r.request_no, 'national_id', r.national_id, 'status', n.status,"
    "  'status_label', jsonb_build_object('ar', n.ar, 'en', n.en),"
    "  'at', rfc3339(n.at_), 'sequence', n.seq,"
    "  'delivery', jsonb_build_object("
    "   'method', CASE WHEN r.branch = 'null'::jsonb THEN 'home' ELSE 'branch' END,"
    "   'attempts', r.attempts, 'branch', r.branch, 'collect_by', r.collect_by))"
    " FROM n JOIN r ON r.ord = n.ord ORDER BY n.ord",
    1,
};

int callbacks_enqueue_many(struct db *db, json_t *changes)
{
    size_t i;
    json_t *c;
    if (json_array_size(changes) == 0)
        return 0;
    json_array_foreach(changes, i, c)
    {
        const char *status = json_string_value(json_object_get(c, "status"));
        const struct status_label *l = status ? status_find(status) : NULL;
        if (!l)
            return -EINVAL;
        json_object_set_new(c, "ar", json_string(l->ar));
        json_object_set_new(c, "en", json_string(l->en));
    }
    /* The payload is what the citizen would see at this change; the
     * delivery part is read as track.c reads it. The caller's status update
     * holds the request's row, so the next sequence cannot be taken twice. */
    char *text = json_dumps(changes, JSON_COMPACT);
    int rc = text ? db_query_stmt(db, NULL, &callbacks_enqueue_stmt, text) : -ENOMEM;
    free(text);
    return rc;
}

int callbacks_enqueue(struct db *db, const char *request_id, const char *status, const char *at)
{
    json_t *one =
        json_pack("[{s:s, s:s, s:s?}]", "request_id", request_id, "status", status, "at", at);
    int rc = one ? callbacks_enqueue_many(db, one) : -ENOMEM;
    json_decref(one);
    return rc;
}

long callbacks_backoff_ms(int attempts, int max_s, double jitter, long retry_after_s)
{
    long base = backoff_after(attempts, 1000, (long)max_s * 1000);
    if (jitter < 0 || jitter >= 1)
        jitter = 0;
    long wait = base - (long)(jitter * (double)(base / 2));
    if (retry_after_s > CALLBACK_MAX_RETRY_AFTER_S)
        retry_after_s = CALLBACK_MAX_RETRY_AFTER_S;
    if (retry_after_s > 0 && retry_after_s * 1000 > wait)
        wait = retry_after_s * 1000;
    return wait;
}

bool callbacks_retryable(long http_status)
{
    return http_status == 0 || http_status == 408 || http_status == 429 || http_status >= 500;
}

int callbacks_secret_new(struct db *db, const uint8_t master[32], char out[AUTH_SECRET_HEX_LEN + 1])
{
    uint8_t salt[16];
    char hex[33];
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return -EIO;
    for (int i = 0; i < 16; i++)
        sprintf(hex + 2 * i, "%02x", salt[i]);
    int rc =
        db_query(db, NULL,
                 "INSERT INTO platform_secret (one, secret_salt) VALUES (true, decode($1, 'hex'))"
                 " ON CONFLICT (one) DO UPDATE SET secret_salt = EXCLUDED.secret_salt,"
                 " created_at = now()",
                 hex);
    if (!rc)
        auth_platform_secret(master, salt, out);
    OPENSSL_cleanse(salt, sizeof(salt));
    return rc;
}

int callbacks_list(struct db *db, bool failed_only,
                   void (*fn)(const struct callback_row *row, void *ctx), void *ctx)
{
    struct db_res *res = NULL;
    int rc = db_query(
        db, &res,
        "WITH unsent AS (SELECT * FROM callbacks WHERE state <> 'sent'),"
        " head AS (SELECT DISTINCT ON (request_id) * FROM unsent ORDER BY request_id, sequence)"
        " SELECT r.request_no,"
        "  (SELECT count(*) FROM unsent u WHERE u.request_id = h.request_id"
        "   AND u.state = 'waiting'),"
        "  (SELECT count(*) FROM unsent u WHERE u.request_id = h.request_id"
        "   AND u.state = 'failed'),"
        "  h.sequence, h.state, h.attempts, rfc3339(h.next_try), h.last_error,"
        "  rfc3339(h.created_at)"
        " FROM head h JOIN requests r ON r.id = h.request_id"
        " WHERE NOT $1::boolean OR EXISTS (SELECT 1 FROM unsent u"
        "  WHERE u.request_id = h.request_id AND u.state = 'failed')"
        " ORDER BY h.created_at, h.id",
        failed_only ? "true" : "false");
    if (rc)
        return rc;
    for (size_t i = 0; i < db_rows(res); i++) {
        struct callback_row row = {
            .request_no = db_get(res, i, 0),
            .waiting = db_get_long(res, i, 1, 0),
            .failed = db_get_long(res, i, 2, 0),
            .head_sequence = db_get_long(res, i, 3, 0),
            .head_state = db_get(res, i, 4),
            .head_attempts = db_get_long(res, i, 5, 0),
            .next_try = db_get(res, i, 6),
            .last_error = db_get(res, i, 7),
            .oldest = db_get(res, i, 8),
        };
        fn(&row, ctx);
    }
    db_res_free(res);
    return 0;
}

int callbacks_retry(struct db *db, const char *request_no, const char *actor, long *count)
{
    struct db_res *res = NULL;
    *count = 0;
    int rc = db_begin(db);
    if (!rc && request_no) {
        rc = db_query(db, &res, "SELECT 1 FROM requests WHERE request_no = $1", request_no);
        if (!rc && db_rows(res) != 1)
            rc = -ENOENT;
        db_res_free(res);
        res = NULL;
    }
    /* Due now, from the first attempt's backoff again; they go out in
     * sequence because each waits for the one before. */
    if (!rc)
        rc = db_query(db, &res,
                      "UPDATE callbacks c SET state = 'waiting', next_try = now(), attempts = 0,"
                      " claimed_by = NULL, claim_until = NULL FROM requests r"
                      " WHERE r.id = c.request_id AND c.state = 'failed'"
                      " AND ($1::text IS NULL OR r.request_no = $1) RETURNING r.request_no",
                      request_no);
    for (size_t i = 0; !rc && i < db_rows(res); i++)
        rc = audit_append(db, actor, "callbacks.retry", db_get(res, i, 0), NULL, NULL, NULL);
    if (!rc) {
        *count = (long)db_rows(res);
        rc = db_commit(db);
    }
    if (rc)
        db_rollback(db);
    db_res_free(res);
    return rc;
}

/* ---- the worker ---- */

struct transfer {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char id[24];
    char callback_id[40];
    char request_no[40];
    int attempts;
    char error[CURL_ERROR_SIZE];
};

struct callback_worker {
    struct app *app;
    pthread_t thread;
    pthread_mutex_t lock;
    CURLM *multi;
    bool stop;
    char claimer[80]; /* claimed_by: instance name and a random tag */
    char user_agent[120];
    struct transfer *slots; /* callback_max_in_flight of them; easy == NULL: free */
    int nslots, in_flight;
    unsigned seed;
    /* Whether the platform is failing to take callbacks, and why: a change
     * is logged once, each attempt only at debug level, so an outage of
     * many requests does not flood the log. */
    bool failing;
    char failing_why[300];
};

static bool stopping(struct callback_worker *w)
{
    pthread_mutex_lock(&w->lock);
    bool stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    (void)userp;
    return size * nmemb;
}

static void transfer_free(struct callback_worker *w, struct transfer *t)
{
    if (!t->easy)
        return;
    curl_multi_remove_handle(w->multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->body);
    memset(t, 0, sizeof(*t));
    w->in_flight--;
}

/* Starts one send: the body as stored, signed now. Returns 0 or -ENOMEM. */
static int transfer_start(struct callback_worker *w, struct transfer *t, const char *secret)
{
    struct config *cfg = w->app->cfg;
    char sig[200], header[220];
    auth_sign(secret, (long)time(NULL), t->body, strlen(t->body), sig, sizeof(sig));
    snprintf(header, sizeof(header), "X-Signature: %s", sig);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL;
    struct curl_slist *h3 = h2 ? curl_slist_append(h2, header) : NULL;
    t->easy = curl_easy_init();
    if (!h3 || !t->easy) {
        curl_slist_free_all(h);
        if (t->easy)
            curl_easy_cleanup(t->easy);
        t->easy = NULL;
        return -ENOMEM;
    }
    t->headers = h3;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, cfg->platform_callback_url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(t->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, w->user_agent);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->callback_connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->callback_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    OPENSSL_cleanse(sig, sizeof(sig));
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        curl_slist_free_all(t->headers);
        t->easy = NULL;
        t->headers = NULL;
        return -ENOMEM;
    }
    w->in_flight++;
    return 0;
}

/* Claims up to the free slots' worth of due callbacks — the first unsent one
 * of requests whose earlier callbacks are all sent, not claimed by anyone —
 * commits the claim and starts their sends. Returns how many started, or a
 * negative code. */
static int claim(struct callback_worker *w)
{
    struct config *cfg = w->app->cfg;
    int free_slots = w->nslots - w->in_flight;
    if (free_slots <= 0)
        return 0;
    char limit[16], claim_for[24];
    snprintf(limit, sizeof(limit), "%d", free_slots);
    snprintf(claim_for, sizeof(claim_for), "%ld", claim_ms(cfg->callback_timeout_ms, 1));
    struct db *db = db_pool_acquire(w->app->pool, 2000);
    if (!db)
        return DB_EDOWN;
    struct db_res *res = NULL;
    int rc = db_query(
        db, &res,
        "WITH due AS ("
        "  SELECT c.id FROM callbacks c"
        "  WHERE c.state = 'waiting' AND c.next_try <= now()"
        "  AND (c.claim_until IS NULL OR c.claim_until < now())"
        "  AND EXISTS (SELECT 1 FROM platform_secret)"
        "  AND NOT EXISTS (SELECT 1 FROM callbacks e WHERE e.request_id = c.request_id"
        "                  AND e.state <> 'sent' AND e.sequence < c.sequence)"
        "  ORDER BY c.next_try, c.id LIMIT $1::integer FOR UPDATE OF c SKIP LOCKED)"
        " UPDATE callbacks c SET attempts = c.attempts + 1, claimed_by = $2,"
        "  claim_until = clock_timestamp() + make_interval(secs => $3::bigint / 1000.0)"
        " FROM due WHERE c.id = due.id"
        " RETURNING c.id, c.callback_id, c.payload->>'request_no', c.payload::text, c.attempts,"
        "  (SELECT encode(secret_salt, 'hex') FROM platform_secret)",
        limit, w->claimer, claim_for);
    db_pool_release(w->app->pool, db);
    if (rc)
        return rc;
    int started = 0;
    size_t rows = db_rows(res);
    char secret[AUTH_SECRET_HEX_LEN + 1] = "";
    uint8_t salt[16];
    if (rows > 0) {
        if (auth_hex_decode(db_get(res, 0, 5), salt, sizeof(salt)) != 0) {
            db_res_free(res);
            return -EINVAL;
        }
        auth_platform_secret(w->app->master_key, salt, secret);
        OPENSSL_cleanse(salt, sizeof(salt));
    }
    for (size_t i = 0, s = 0; i < rows; i++) {
        while (s < (size_t)w->nslots && w->slots[s].easy)
            s++;
        if (s == (size_t)w->nslots)
            break; /* cannot happen: no more rows than free slots */
        struct transfer *t = &w->slots[s];
        snprintf(t->id, sizeof(t->id), "%s", db_get(res, i, 0));
        snprintf(t->callback_id, sizeof(t->callback_id), "%s", db_get(res, i, 1));
        snprintf(t->request_no, sizeof(t->request_no), "%s", db_get(res, i, 2));
        t->attempts = (int)db_get_long(res, i, 4, 1);
        t->body = strdup(db_get(res, i, 3));
        if (!t->body || transfer_start(w, t, secret) != 0) {
            /* Its claim runs out and it is sent later. */
            free(t->body);
            memset(t, 0, sizeof(*t));
            log_warn("callback %s: out of memory", db_get(res, i, 1));
            continue;
        }
        started++;
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    db_res_free(res);
    return started;
}

/* Records how a send ended. A claim that is no longer ours is left alone,
 * unless the callback got through. */
static void record(struct callback_worker *w, struct transfer *t, CURLcode cc)
{
    struct config *cfg = w->app->cfg;
    long status = 0;
    curl_off_t retry_after = 0;
    char why[300] = "", code[16];
    if (cc == CURLE_OK) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after);
        if (status < 200 || status > 299)
            snprintf(why, sizeof(why), "platform answered %ld", status);
    } else {
        snprintf(why, sizeof(why), "%s", t->error[0] ? t->error : curl_easy_strerror(cc));
    }
    snprintf(code, sizeof(code), "%ld", status);
    bool sent = cc == CURLE_OK && status >= 200 && status <= 299;
    bool again = !sent && callbacks_retryable(status);
    struct db *db = db_pool_acquire(w->app->pool, 2000);
    if (!db) {
        log_warn("callback %s: no database connection to record the send; it is sent again",
                 t->callback_id);
        return;
    }
    int rc;
    if (sent && w->failing) {
        log_info("callbacks: the platform takes them again");
        w->failing = false;
    }
    if (sent) {
        rc = db_query(db, NULL,
                      "UPDATE callbacks SET state = 'sent', sent_at = now(), claimed_by = NULL,"
                      " claim_until = NULL, last_status = $2::integer, last_error = NULL"
                      " WHERE id = $1::bigint AND state = 'waiting'",
                      t->id, code);
    } else if (again) {
        double jitter = (double)rand_r(&w->seed) / ((double)RAND_MAX + 1.0);
        long wait = callbacks_backoff_ms(t->attempts, cfg->callback_max_backoff_s, jitter,
                                         (long)retry_after);
        char wait_ms[24];
        snprintf(wait_ms, sizeof(wait_ms), "%ld", wait);
        rc = db_query(db, NULL,
                      "UPDATE callbacks SET next_try = now() + make_interval(secs => $2::bigint"
                      " / 1000.0), claimed_by = NULL, claim_until = NULL,"
                      " last_status = nullif($3::integer, 0), last_error = $4"
                      " WHERE id = $1::bigint AND state = 'waiting' AND claimed_by = $5",
                      t->id, wait_ms, code, why, w->claimer);
        if (!w->failing || strcmp(w->failing_why, why) != 0)
            log_warn("callbacks: the platform does not take them (%s); they wait and are tried"
                     " again",
                     why);
        w->failing = true;
        snprintf(w->failing_why, sizeof(w->failing_why), "%s", why);
        log_debug("callback %s (%s #%d) not delivered: %s; next try in %ld ms", t->callback_id,
                  t->request_no, t->attempts, why, wait);
    } else {
        rc =
            db_query(db, NULL,
                     "UPDATE callbacks SET state = 'failed', claimed_by = NULL, claim_until = NULL,"
                     " last_status = $2::integer, last_error = $3"
                     " WHERE id = $1::bigint AND state = 'waiting' AND claimed_by = $4",
                     t->id, code, why, w->claimer);
        log_warn("callback %s (%s) refused: %s; the request's callbacks stop until retried",
                 t->callback_id, t->request_no, why);
    }
    if (rc)
        log_warn("callback %s: recording failed: %s", t->callback_id, db_error_message(db));
    db_pool_release(w->app->pool, db);
}

static void *worker(void *arg)
{
    struct callback_worker *w = arg;
    struct config *cfg = w->app->cfg;
    struct timespec last = { 0 };
    bool warned = false;
    log_set_request_id("callbacks");
    while (!stopping(w)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long since = (now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000;
        if (cfg->platform_callback_url[0] && w->app->have_master_key && since >= POLL_MS) {
            last = now;
            int rc = claim(w);
            if (rc < 0 && !warned) {
                log_warn("callbacks: claiming failed (%d)", rc);
                warned = true;
            } else if (rc >= 0) {
                warned = false;
            }
        }
        int running = 0;
        curl_multi_perform(w->multi, &running);
        CURLMsg *msg;
        int left = 0;
        bool finished = false;
        while ((msg = curl_multi_info_read(w->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            struct transfer *t = (struct transfer *)priv;
            CURLcode cc = msg->data.result;
            record(w, t, cc);
            transfer_free(w, t);
            finished = true;
        }
        if (finished) {
            last.tv_sec = 0; /* the request's next callback may be due: look now */
            continue;
        }
        curl_multi_poll(w->multi, NULL, 0, w->in_flight ? 50 : POLL_MS, NULL);
    }
    /* Sends in flight are dropped; their claims run out and they go again. */
    for (int i = 0; i < w->nslots; i++)
        transfer_free(w, &w->slots[i]);
    log_set_request_id(NULL);
    return NULL;
}

int callbacks_start(struct callback_worker **out, struct app *app)
{
    *out = NULL;
    /* Called before this worker's thread uses libcurl; counted by libcurl. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    struct callback_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    w->app = app;
    w->nslots = app->cfg->callback_max_in_flight;
    w->slots = calloc((size_t)w->nslots, sizeof(*w->slots));
    w->multi = curl_multi_init();
    uint8_t tag[4];
    if (!w->slots || !w->multi || RAND_bytes(tag, sizeof(tag)) != 1) {
        if (w->multi)
            curl_multi_cleanup(w->multi);
        free(w->slots);
        free(w);
        curl_global_cleanup();
        return -ENOMEM;
    }
    snprintf(w->claimer, sizeof(w->claimer), "%.60s/%02x%02x%02x%02x", app->cfg->instance, tag[0],
             tag[1], tag[2], tag[3]);
    snprintf(w->user_agent, sizeof(w->user_agent), "cardd (%.60s)", app->cfg->instance);
    w->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ tag[0];
    pthread_mutex_init(&w->lock, NULL);
    int rc = pthread_create(&w->thread, NULL, worker, w);
    if (rc) {
        pthread_mutex_destroy(&w->lock);
        curl_multi_cleanup(w->multi);
        free(w->slots);
        free(w);
        curl_global_cleanup();
        return -rc;
    }
    *out = w;
    return 0;
}

void callbacks_stop(struct callback_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_mutex_unlock(&w->lock);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    curl_multi_cleanup(w->multi);
    free(w->slots);
    free(w);
    curl_global_cleanup();
}
