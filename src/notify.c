/* notify.c — the notification worker (see notify.h). */
#include "notify.h"
#include "app.h"
#include "backoff.h"
#include "db.h"
#include "claim.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_WAIT_MS       500
#define CONNECT_TIMEOUT_MS 2000L
#define SEND_TIMEOUT_MS    5000L

struct notifier {
    struct app *app;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

int notify_backoff_s(int attempts, int max_s)
{
    return (int)backoff_after(attempts, 1, max_s);
}

json_t *notify_body(const char *notification_id, const char *phone, const char *text_ar,
                    const char *text_en, const char *request_no, const char *status)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s}", "id", notification_id, "phone", phone,
                     "text", "ar", text_ar, "en", text_en, "request_no", request_no, "status",
                     status);
}

static size_t discard(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    (void)userp;
    return size * nmemb;
}

/* POSTs one body. Returns 0 on a 2xx answer, else -EIO with why filled. */
static int gateway_post(CURL *curl, const char *url, const char *body, char *why, size_t whylen)
{
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, SEND_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    if (cc != CURLE_OK) {
        snprintf(why, whylen, "%s", curl_easy_strerror(cc));
        return -EIO;
    }
    if (status < 200 || status > 299) {
        snprintf(why, whylen, "gateway answered %ld", status);
        return -EIO;
    }
    return 0;
}

/* Takes the earliest due notification whose request has no earlier one
 * pending, not taken by another instance, and leases it ($1 seconds): the
 * lease outlives the slowest send (claim.h), so no other instance sends it
 * while this one does. */
static const char claim_sql[] =
    "WITH due AS ("
    "  SELECT n.id FROM notifications n"
    "  WHERE n.delivered_at IS NULL AND n.next_attempt_at <= now()"
    "  AND NOT EXISTS (SELECT 1 FROM notifications e WHERE e.request_id = n.request_id"
    "                  AND e.delivered_at IS NULL AND e.id < n.id)"
    "  ORDER BY n.id LIMIT 1 FOR UPDATE OF n SKIP LOCKED)"
    " UPDATE notifications n SET attempts = n.attempts + 1,"
    "  next_attempt_at = now() + make_interval(secs => $1::integer)"
    " FROM due, requests r WHERE n.id = due.id AND r.id = n.request_id"
    " RETURNING n.id, n.notification_id, n.phone, n.text_ar, n.text_en,"
    "  r.request_no, n.status, n.attempts";

static int record(struct db *db, const char *id, int attempts, int max_backoff, const char *why)
{
    if (!why)
        return db_query(db, NULL,
                        "UPDATE notifications SET delivered_at = now(), last_error = NULL"
                        " WHERE id = $1::bigint",
                        id);
    char wait[16];
    snprintf(wait, sizeof(wait), "%d", notify_backoff_s(attempts, max_backoff));
    return db_query(
        db, NULL,
        "UPDATE notifications SET next_attempt_at = now() + make_interval(secs => $2::integer),"
        " last_error = $3 WHERE id = $1::bigint AND delivered_at IS NULL",
        id, wait, why);
}

/* Claims one notification in a transaction of its own, committed before
 * the send. Returns 1 with *row, 0 when none is due, or a DB_* code. */
static int claim_one(struct db *db, int lease_s, struct db_res **row)
{
    char lease[16];
    snprintf(lease, sizeof(lease), "%d", lease_s);
    *row = NULL;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, row, claim_sql, lease);
    if (!rc)
        rc = db_commit(db);
    if (rc || db_rows(*row) == 0) {
        db_rollback(db);
        db_res_free(*row);
        *row = NULL;
        return rc;
    }
    return 1;
}

/* Sends one claimed notification and records how it went. */
static void send_one(struct notifier *n, CURL *curl, struct db_res *res)
{
    struct config *cfg = n->app->cfg;
    const char *id = db_get(res, 0, 0);
    char why[256] = "";
    json_t *body = notify_body(db_get(res, 0, 1), db_get(res, 0, 2), db_get(res, 0, 3),
                               db_get(res, 0, 4), db_get(res, 0, 5), db_get(res, 0, 6));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int sent = text ? gateway_post(curl, cfg->sms_gateway_url, text, why, sizeof(why)) : -ENOMEM;
    free(text);
    if (sent && !why[0])
        snprintf(why, sizeof(why), "out of memory");
    int attempts = (int)db_get_long(res, 0, 7, 1);
    struct db *db = db_pool_acquire(n->app->pool, 2000);
    if (!db) {
        /* The lease runs out and the row is sent again: at least once. */
        log_warn("notification %s: no database connection to record the send", id);
        return;
    }
    if (record(db, id, attempts, cfg->notify_max_backoff_s, sent ? why : NULL) != 0)
        log_warn("notification %s: recording failed: %s", id, db_error_message(db));
    db_pool_release(n->app->pool, db);
    if (sent)
        log_warn("notification %s for %s not delivered (attempt %d): %s", id, db_get(res, 0, 5),
                 attempts, why);
}

/* One round: up to notify_batch notifications, each claimed, sent and
 * recorded in turn. Returns how many it claimed, or a negative code. */
static int round_once(struct notifier *n, CURL *curl)
{
    /* The send's time-out covers its connection too. */
    int lease_s = (int)((claim_ms(SEND_TIMEOUT_MS, 1) + 999) / 1000);
    int done = 0;
    while (done < n->app->cfg->notify_batch) {
        struct db_res *res = NULL;
        struct db *db = db_pool_acquire(n->app->pool, 2000);
        if (!db)
            return done ? done : DB_EDOWN;
        int rc = claim_one(db, lease_s, &res);
        db_pool_release(n->app->pool, db);
        if (rc <= 0)
            return done ? done : rc;
        send_one(n, curl, res);
        db_res_free(res);
        done++;
        pthread_mutex_lock(&n->lock);
        bool stop = n->stop;
        pthread_mutex_unlock(&n->lock);
        if (stop)
            break;
    }
    return done;
}

static void *worker(void *arg)
{
    struct notifier *n = arg;
    CURL *curl = curl_easy_init();
    log_set_request_id("notify");
    if (!curl)
        log_error("notifications: cannot initialise libcurl; none will be sent");
    struct backoff wait = BACKOFF_INIT(IDLE_WAIT_MS, 10000);
    struct condition db_down = { 0 };
    for (;;) {
        int claimed = 0, wait_ms = IDLE_WAIT_MS;
        if (curl && n->app->cfg->sms_gateway_url[0]) {
            claimed = round_once(n, curl);
            if (claimed < 0) {
                /* Once per change, then a growing wait: no line per round. */
                condition_set(&db_down, "notifications", "database unreachable (%d); waiting",
                              claimed);
                wait_ms = backoff_next(&wait);
            } else if (condition_clear(&db_down, "notifications", "database reachable again")) {
                backoff_reset(&wait);
            }
        }
        pthread_mutex_lock(&n->lock);
        if (!n->stop && claimed <= 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += wait_ms / 1000;
            until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&n->wake, &n->lock, &until);
        }
        bool stop = n->stop;
        pthread_mutex_unlock(&n->lock);
        if (stop)
            break;
    }
    curl_easy_cleanup(curl);
    log_set_request_id(NULL);
    return NULL;
}

int notify_start(struct notifier **out, struct app *app)
{
    *out = NULL;
    /* Called before any thread of ours uses libcurl. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    struct notifier *n = calloc(1, sizeof(*n));
    if (!n) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    n->app = app;
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->wake, NULL);
    int rc = pthread_create(&n->thread, NULL, worker, n);
    if (rc) {
        pthread_mutex_destroy(&n->lock);
        pthread_cond_destroy(&n->wake);
        free(n);
        curl_global_cleanup();
        return -rc;
    }
    *out = n;
    return 0;
}

void notify_request_stop(struct notifier *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    n->stop = true;
    pthread_cond_signal(&n->wake);
    pthread_mutex_unlock(&n->lock);
}

void notify_stop(struct notifier *n)
{
    if (!n)
        return;
    notify_request_stop(n);
    pthread_join(n->thread, NULL);
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->wake);
    free(n);
    curl_global_cleanup();
}
