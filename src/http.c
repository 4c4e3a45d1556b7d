/* http.c — libmicrohttpd behind a route table.
 *
 * Each connection has its own thread (MHD_USE_THREAD_PER_CONNECTION): a
 * handler blocks on the database only its own connection, never others.
 * The first call of the access handler only checks framing and size; the
 * answer is always queued from a later call, which keeps connections alive
 * (libmicrohttpd closes a connection answered from the first call, which is
 * what we want for a request whose framing we refuse). */
#include "http.h"
#include "app.h"
#include "auth.h"
#include "db.h"
#include "clientaddr.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "web.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Each connection's thread stack. jansson parses nested arrays and objects
 * by recursion, up to depth 2048: under 256 KiB, so 512 KiB leaves room.
 * ThreadSanitizer keeps about 800 KiB of per-thread state in static TLS,
 * which glibc takes out of the same allocation: its builds ask for more. */
#define CONN_STACK_SIZE ((size_t)512 * 1024)

/* Each connection's memory pool in libmicrohttpd: the request's headers
 * and the read and write buffers (bodies are copied out, append_body).
 * libmicrohttpd zeroes the whole pool between two requests of a
 * connection, so its size is paid on every call: 32 KiB (its default)
 * holds headers of 16 KiB and more. */
#define CONN_MEMORY ((size_t)32 * 1024)
#if defined(__SANITIZE_THREAD__)
#define CONN_STACK_EXTRA ((size_t)1024 * 1024)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONN_STACK_EXTRA ((size_t)1024 * 1024)
#endif
#endif
#ifndef CONN_STACK_EXTRA
#define CONN_STACK_EXTRA ((size_t)0)
#endif

struct http_server {
    struct MHD_Daemon *daemon;
    struct app *app;
    const struct http_route *routes;
    size_t nroutes;
    /* Database connections held by anonymous calls (tracking, readiness):
     * at most db_public_connections of the pool, so that however many come,
     * authenticated calls and the station workers always find one. */
    pthread_mutex_t public_lock;
    struct slot_waiter *public_head, *public_tail; /* waiting, first come first */
    int public_in_use, public_max;
    /* Calls without a token, per client address (NULL: not limited): past
     * the rate they are refused before any work. */
    struct ratelimit *public_rate;
    /* Connections open per client address (an IPv4 address or an IPv6 /64):
     * per_ip_connections served, per_ip_held_connections more answered 429,
     * any further one closed at once. */
    struct ratelimit *conns;
    /* Repeated messages of libmicrohttpd (a flood of refused connections)
     * are counted, not written one line each. */
    pthread_mutex_t mhd_log_lock;
    char mhd_last[256];
    long long mhd_last_ms;
    long mhd_repeats;
};

/* A call waiting for an anonymous slot. A slot given back goes to the
 * longest waiting call, never to one that came later: under a flood every
 * call waits its turn, and none waits the whole time-out while others pass. */
struct slot_waiter {
    pthread_cond_t cond;
    bool granted;
    struct slot_waiter *next;
};

struct conn_state {
    struct http_req rq;
    bool public_slot; /* holds one of the anonymous calls' connections */
    bool throttled;   /* over its address's rate: answered 429 once the body is read */
    bool close_after; /* the connection is closed after the answer */
    struct MHD_Connection *conn;
    struct http_server *srv;
    char request_id[65];
    char *buf;
    size_t len, cap;
    size_t max_body; /* the route's limit */
    struct timespec started;
    int route;                     /* index for metrics, -1 when no route matched */
    const struct web_asset *asset; /* a page's file to answer with, or NULL */
};

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The text of a peer's address ("" when it is neither IPv4 nor IPv6). */
static void peer_text(const struct sockaddr *sa, char *out, size_t len)
{
    out[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

/* A connection's own state, from its start to its close. */
struct conn_ctx {
    char key[CLIENT_KEY_LEN]; /* its client address, for the connection limit */
    bool counted;             /* counted in srv->conns */
    enum rl_conn what;        /* served, or past its address's limit */
};

/* ---- answers ---- */

static void reset_reply(struct http_req *rq)
{
    json_decref(rq->reply);
    rq->reply = NULL;
    free(rq->reply_text);
    rq->reply_text = NULL;
}

void http_json(struct http_req *rq, int status, json_t *body)
{
    reset_reply(rq);
    rq->status = status;
    rq->reply = body;
    rq->reply_type = "application/json";
}

void http_text(struct http_req *rq, int status, const char *content_type, const char *text)
{
    reset_reply(rq);
    rq->status = status;
    rq->reply_text = strdup(text);
    rq->reply_type = content_type;
}

void http_problem(struct http_req *rq, int status, const char *code, const char *title,
                  const char *detail, json_t *errors)
{
    char type[512];
    snprintf(type, sizeof(type), "%s%s", rq->app->cfg->problem_base, code);
    json_t *p = json_pack("{s:s, s:s, s:i}", "type", type, "title", title, "status", status);
    if (p && detail)
        json_object_set_new(p, "detail", json_string(detail));
    if (p && errors)
        json_object_set_new(p, "errors", errors);
    else
        json_decref(errors);
    http_json(rq, status, p);
    rq->reply_type = "application/problem+json";
}

/* Seconds a client is told to wait when the database cannot answer. */
#define HTTP_RETRY_AFTER_S 2

/* The database cannot answer now: 503 with Retry-After, never 500. */
static void db_unavailable_reply(struct http_req *rq)
{
    http_problem(rq, 503, "unavailable", "Service unavailable",
                 "The database is not reachable or too busy; try again later.", NULL);
    snprintf(rq->retry_after, sizeof(rq->retry_after), "%d", HTTP_RETRY_AFTER_S);
}

void http_internal_error(struct http_req *rq, const char *what)
{
    if (db_unavailable(rq->db)) {
        /* Logged once per change by the pool, or a time-out: no line per call. */
        log_debug("%s %s: database unavailable: %s", rq->method, rq->path, what);
        db_unavailable_reply(rq);
        return;
    }
    log_error("%s %s failed: %s", rq->method, rq->path, what);
    http_problem(rq, 500, "internal", "Internal error",
                 "The server failed to complete the request; it has been logged.", NULL);
}

/* Takes one of the anonymous calls' connection slots, waiting up to
 * timeout_ms in line behind the calls that came first. */
static bool public_slot_take(struct http_server *srv, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->public_lock);
    if (!srv->public_head && srv->public_in_use < srv->public_max) {
        srv->public_in_use++;
        pthread_mutex_unlock(&srv->public_lock);
        return true;
    }
    struct slot_waiter me = { .granted = false, .next = NULL };
    pthread_cond_init(&me.cond, NULL);
    if (srv->public_tail)
        srv->public_tail->next = &me;
    else
        srv->public_head = &me;
    srv->public_tail = &me;
    while (!me.granted) {
        if (pthread_cond_timedwait(&me.cond, &srv->public_lock, &deadline) == ETIMEDOUT &&
            !me.granted) {
            /* Out of line; a slot is never handed to a call that left. */
            struct slot_waiter **pp = &srv->public_head, *prev = NULL;
            while (*pp != &me)
                prev = *pp, pp = &(*pp)->next;
            *pp = me.next;
            if (srv->public_tail == &me)
                srv->public_tail = prev;
            break;
        }
    }
    pthread_mutex_unlock(&srv->public_lock);
    pthread_cond_destroy(&me.cond);
    return me.granted;
}

/* Hands the slot to the longest waiting call, or frees it. */
static void public_slot_give(struct conn_state *cs)
{
    if (!cs->public_slot)
        return;
    cs->public_slot = false;
    struct http_server *srv = cs->srv;
    pthread_mutex_lock(&srv->public_lock);
    struct slot_waiter *w = srv->public_head;
    if (w) {
        srv->public_head = w->next;
        if (!srv->public_head)
            srv->public_tail = NULL;
        w->granted = true;
        pthread_cond_signal(&w->cond);
    } else {
        srv->public_in_use--;
    }
    pthread_mutex_unlock(&srv->public_lock);
}

/* Gives the request's connection back to the pool. */
static void release_db(struct conn_state *cs)
{
    if (cs->rq.db) {
        db_pool_release(cs->srv->app->pool, cs->rq.db);
        cs->rq.db = NULL;
    }
    public_slot_give(cs);
}

struct db *http_db(struct http_req *rq)
{
    if (rq->db)
        return rq->db;
    struct conn_state *cs = rq->priv;
    bool anonymous = cs->route < 0 || cs->srv->routes[cs->route].roles == ROLES_PUBLIC;
    if (anonymous && !cs->public_slot) {
        if (!public_slot_take(cs->srv, 1000)) {
            http_problem(rq, 503, "busy", "Service busy",
                         "Too many anonymous requests at once; try again shortly.", NULL);
            snprintf(rq->retry_after, sizeof(rq->retry_after), "1");
            return NULL;
        }
        cs->public_slot = true;
    }
    rq->db = db_pool_acquire(rq->app->pool, rq->app->cfg->db_acquire_timeout_ms);
    if (!rq->db) {
        /* Logged once per change by the pool: no line per call. */
        public_slot_give(cs);
        db_unavailable_reply(rq);
    }
    return rq->db;
}

const char *http_query(struct http_req *rq, const char *name)
{
    struct conn_state *cs = rq->priv;
    return MHD_lookup_connection_value(cs->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(struct http_req *rq, const char *name)
{
    struct conn_state *cs = rq->priv;
    return MHD_lookup_connection_value(cs->conn, MHD_HEADER_KIND, name);
}

/* ---- request id ---- */

static bool valid_request_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._:-", s[i]))
            return false;
    return true;
}

static void make_request_id(char out[65])
{
    unsigned char raw[12];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(out, 65, "t%lx%lx", (long)ts.tv_sec, ts.tv_nsec);
        return;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        sprintf(out + 2 * i, "%02x", raw[i]);
}

/* ---- routing ---- */

/* Path parameters are identifiers (request numbers, tracking numbers,
 * station, branch and card ids): a byte outside this set — a NUL, a line
 * feed, invalid UTF-8 once libmicrohttpd has decoded %XX — never reaches a
 * handler or the database. */
static bool param_byte_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* Matches path against pattern, capturing each {} segment. */
static bool route_match(const char *pattern, const char *path, char param[2][128])
{
    int np = 0;
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n > HTTP_MAX_PARAM || np >= 2)
                return false;
            for (size_t i = 0; i < n; i++)
                if (!param_byte_ok((unsigned char)path[i]))
                    return false;
            memcpy(param[np], path, n);
            param[np][n] = '\0';
            np++;
            pattern += 2;
            path += n;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return *pattern == '\0' && *path == '\0';
}

/* Finds the route for method and path. Returns its index, -1 when no path
 * matches (404), or -2 when the path exists for other methods (405; allow
 * is filled). */
static int route_find(struct http_server *srv, const char *method, const char *path,
                      char param[2][128], char *allow, size_t allowlen)
{
    bool path_known = false;
    allow[0] = '\0';
    for (size_t i = 0; i < srv->nroutes; i++) {
        char tmp[2][128];
        if (!route_match(srv->routes[i].pattern, path, tmp))
            continue;
        if (strcmp(srv->routes[i].method, method) == 0) {
            memcpy(param, tmp, sizeof(tmp));
            return (int)i;
        }
        path_known = true;
        size_t used = strlen(allow);
        snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", srv->routes[i].method);
    }
    return path_known ? -2 : -1;
}

/* ---- the pipeline ---- */

static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    const char *rest = ct + 16;
    while (*rest == ' ')
        rest++;
    if (*rest == '\0')
        return true;
    if (*rest != ';')
        return false;
    rest++;
    while (*rest == ' ')
        rest++;
    return strncasecmp(rest, "charset=utf-8", 13) == 0 ||
           strncasecmp(rest, "charset=\"utf-8\"", 15) == 0;
}

static bool authenticate(struct conn_state *cs, const struct http_route *route)
{
    struct http_req *rq = &cs->rq;
    const char *h = http_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        rq->www_authenticate = true;
        http_problem(rq, 401, "unauthorized", "Unauthorized", "A bearer token is required.", NULL);
        return false;
    }
    struct db *db = http_db(rq);
    if (!db)
        return false;
    int rc = auth_lookup(db, h + 7, &rq->who);
    if (rc == -ENOENT) {
        rq->www_authenticate = true;
        http_problem(rq, 401, "unauthorized", "Unauthorized", "The token is not valid.", NULL);
        return false;
    }
    if (rc) {
        http_internal_error(rq, "token look-up failed");
        return false;
    }
    if (rq->who.role != ROLE_ADMIN && !(rq->who.role & route->roles)) {
        http_problem(rq, 403, "forbidden", "Forbidden",
                     "This token's role may not use this endpoint.", NULL);
        return false;
    }
    return true;
}

/* Verifies a courier's X-Signature with the secret derived for its name
 * and salt (read with its token, auth_lookup). */
static bool verify_signature(struct conn_state *cs)
{
    struct http_req *rq = &cs->rq;
    char secret[AUTH_SECRET_HEX_LEN + 1];
    if (!rq->app->have_master_key) {
        http_internal_error(rq, "no master key: courier signatures cannot be checked");
        return false;
    }
    if (!rq->who.courier_id[0]) {
        http_problem(rq, 403, "forbidden", "Forbidden", "This token belongs to no courier.", NULL);
        return false;
    }
    auth_courier_secret(rq->app->master_key, rq->who.name, rq->who.courier_salt, secret);
    size_t signed_len = 0;
    char *signed_text = auth_signed_text(rq->method, rq->path, rq->body, rq->body_len, &signed_len);
    int rc = signed_text ? auth_verify_signature(http_header(rq, "X-Signature"), signed_text,
                                                 signed_len, secret, (long)time(NULL))
                         : -ENOMEM;
    free(signed_text);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc == -ENOMEM) {
        http_internal_error(rq, "out of memory");
        return false;
    }
    if (rc != 0) {
        rq->www_authenticate = false;
        http_problem(rq, 401, "bad_signature", "Unauthorized",
                     rc == -EINVAL  ? "X-Signature is missing or malformed."
                     : rc == -ETIME ? "The signature's timestamp is outside the allowed window."
                                    : "The signature does not match.",
                     NULL);
        return false;
    }
    return true;
}

static void dispatch(struct conn_state *cs)
{
    struct http_req *rq = &cs->rq;
    struct http_server *srv = cs->srv;
    int idx = route_find(srv, rq->method, rq->path, rq->param, rq->allow, sizeof(rq->allow));
    cs->route = idx;
    if (idx == -1 && (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0) &&
        (cs->asset = web_asset_find(rq->path)) != NULL) {
        rq->status = 200;
        rq->reply_type = cs->asset->type;
        return;
    }
    if (idx == -1) {
        http_problem(rq, 404, "not_found", "Not found", "No such resource.", NULL);
        return;
    }
    if (idx == -2) {
        http_problem(rq, 405, "method_not_allowed", "Method not allowed", NULL, NULL);
        return;
    }
    const struct http_route *route = &srv->routes[idx];
    if (route->roles != ROLES_PUBLIC && !authenticate(cs, route))
        return;
    rq->body = cs->buf ? cs->buf : "";
    rq->body_len = cs->len;
    if (route->flags & ROUTE_SIGNED && !verify_signature(cs))
        return;
    bool takes_body = route->flags & (ROUTE_BODY | ROUTE_BODY_OPTIONAL);
    if (takes_body && (cs->len > 0 || route->flags & ROUTE_BODY)) {
        if (!is_json_type(http_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE))) {
            http_problem(rq, 415, "unsupported_media_type", "Unsupported media type",
                         "Send the body as application/json.", NULL);
            return;
        }
        json_error_t jerr;
        rq->json = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!rq->json) {
            char detail[256];
            snprintf(detail, sizeof(detail), "Malformed JSON at line %d, column %d: %s", jerr.line,
                     jerr.column, jerr.text);
            http_problem(rq, 400, "malformed_json", "Malformed JSON", detail, NULL);
            return;
        }
        if (!json_is_object(rq->json)) {
            http_problem(rq, 400, "malformed_json", "Malformed JSON",
                         "The body must be a JSON object.", NULL);
            return;
        }
    } else if (cs->len > 0 && !takes_body) {
        http_problem(rq, 400, "unexpected_body", "Bad request", "This endpoint takes no body.",
                     NULL);
        return;
    }
    route->handler(rq);
    if (rq->status == 0)
        http_internal_error(rq, "handler gave no answer");
}

static enum MHD_Result send_reply(struct conn_state *cs)
{
    struct http_req *rq = &cs->rq;
    char *text = NULL;
    size_t len = 0;
    if (rq->reply) {
        text = json_dumps(rq->reply, JSON_COMPACT);
        if (!text) {
            rq->status = 500;
            rq->reply_type = "application/problem+json";
            text = strdup("{\"title\":\"Internal error\",\"status\":500}");
        }
    } else if (rq->reply_text) {
        text = rq->reply_text;
        rq->reply_text = NULL;
    } else {
        text = strdup("");
    }
    len = text ? strlen(text) : 0;
    struct MHD_Response *resp;
    if (cs->asset && rq->status == 200) {
        free(text);
        text = NULL;
        resp = MHD_create_response_from_buffer(cs->asset->len, (void *)cs->asset->data,
                                               MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(
            len, text ? text : (char *)"", text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    if (rq->reply_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rq->reply_type);
    MHD_add_response_header(resp, "X-Request-Id", cs->request_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            cs->asset ? "no-cache" : "no-store");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            cs->asset ? WEB_PAGE_CSP : WEB_API_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (rq->retry_after[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, rq->retry_after);
    if (rq->allow[0] && rq->status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rq->allow);
    if (rq->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (cs->close_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result r = MHD_queue_response(cs->conn, (unsigned)rq->status, resp);
    MHD_destroy_response(resp);
    return r;
}

static void too_large(struct conn_state *cs)
{
    http_problem(&cs->rq, 413, "too_large", "Payload too large",
                 cs->max_body > HTTP_MAX_BODY ? "Bodies are limited to 512 KiB on this endpoint."
                                              : "Bodies are limited to 64 KiB.",
                 NULL);
}

/* The body limit of route idx (64 KiB when none). */
static size_t body_limit(struct http_server *srv, int idx)
{
    return idx >= 0 && srv->routes[idx].flags & ROUTE_LARGE_BODY ? HTTP_MAX_LARGE_BODY
                                                                 : HTTP_MAX_BODY;
}

/* A call without a token (no Authorization header: tracking, health,
 * readiness, the pages, or any path called without one) from an address
 * past its rate: its 429 is made ready before any work is done for it, and
 * sent once the body is read (on_request). */
static bool over_public_rate(struct conn_state *cs)
{
    struct http_server *srv = cs->srv;
    if (!srv->public_rate || http_header(&cs->rq, MHD_HTTP_HEADER_AUTHORIZATION))
        return false;
    char client[CLIENT_KEY_LEN];
    clientaddr_of(&cs->rq, client);
    long wait_ms = ratelimit_take(srv->public_rate, client, monotonic_ms());
    if (wait_ms == 0)
        return false;
    struct http_req *rq = &cs->rq;
    http_problem(rq, 429, "too_many_requests", "Too many requests",
                 "Too many calls from this address; try again later.", NULL);
    int secs = wait_ms >= 3600000 ? 3600 : (int)((wait_ms + 999) / 1000);
    snprintf(rq->retry_after, sizeof(rq->retry_after), "%d", secs);
    return true;
}

/* A connection past its address's per_ip_connections (one of the
 * per_ip_held_connections more): answered 429 and closed, whoever calls. */
static bool over_connection_limit(struct conn_state *cs)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(cs->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    const struct conn_ctx *ctx = ci ? ci->socket_context : NULL;
    if (!ctx || ctx->what != RL_CONN_HOLD)
        return false;
    struct http_req *rq = &cs->rq;
    http_problem(rq, 429, "too_many_connections", "Too many requests",
                 "Too many connections from this address at once; try again later.", NULL);
    snprintf(rq->retry_after, sizeof(rq->retry_after), "1");
    cs->close_after = true;
    return true;
}

/* A refused call's answer is held this long (its own connection's thread
 * sleeps, nothing else waits), so that a client that ignores Retry-After
 * costs a sleeping thread, not a busy core. */
static void hold_refusal(const struct http_server *srv)
{
    int ms = srv->app->cfg->refusal_delay_ms;
    if (ms <= 0)
        return;
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Refuses framing that two parsers could read differently. */
static bool framing_is_ambiguous(struct MHD_Connection *conn)
{
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (te && cl)
        return true;
    if (te && strcasecmp(te, "chunked") != 0)
        return true;
    return false;
}

/* The first call for a request: its state, its id and client address,
 * and the refusals that need no body (ambiguous framing, chunked, too
 * large for its route). */
static enum MHD_Result start_request(struct http_server *srv, struct MHD_Connection *conn,
                                     const char *url, const char *method, void **con_cls)
{
    struct conn_state *cs = calloc(1, sizeof(*cs));
    if (!cs)
        return MHD_NO;
    *con_cls = cs;
    cs->conn = conn;
    cs->srv = srv;
    cs->route = -1;
    clock_gettime(CLOCK_MONOTONIC, &cs->started);
    struct http_req *rq = &cs->rq;
    rq->app = srv->app;
    rq->priv = cs;
    rq->method = method;
    rq->path = url;
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given && valid_request_id(given))
        snprintf(cs->request_id, sizeof(cs->request_id), "%s", given);
    else
        make_request_id(cs->request_id);
    rq->request_id = cs->request_id;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    peer_text(ci ? ci->client_addr : NULL, rq->client_ip, sizeof(rq->client_ip));
    log_set_request_id(cs->request_id);

    /* Early refusals answer at once and close the connection. */
    if (framing_is_ambiguous(conn)) {
        http_problem(rq, 400, "bad_framing", "Bad request",
                     "Transfer-Encoding and Content-Length are ambiguous.", NULL);
        return send_reply(cs);
    }
    /* A chunked body has no length to check before it is read, and
     * libmicrohttpd reads its framing leniently: refused (API.md). */
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        http_problem(rq, 411, "length_required", "Length required",
                     "Send the body with Content-Length; chunked bodies are not accepted.", NULL);
        return send_reply(cs);
    }
    char param[2][128], allow[64];
    int idx = route_find(srv, method, url, param, allow, sizeof(allow));
    cs->max_body = body_limit(srv, idx);
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || *end || n > cs->max_body) {
            too_large(cs);
            return send_reply(cs);
        }
    }
    cs->throttled = over_connection_limit(cs) || over_public_rate(cs);
    return MHD_YES;
}

/* Appends n bytes of the body. */
static enum MHD_Result append_body(struct conn_state *cs, const char *data, size_t n)
{
    if (cs->len + n > cs->max_body) {
        /* Only a body longer than its Content-Length said could get
         * here; libmicrohttpd takes no answer in the middle of a body,
         * so the connection is closed at once. */
        log_warn("%s %s: body over its limit; connection closed", cs->rq.method, cs->rq.path);
        return MHD_NO;
    }
    if (cs->len + n + 1 > cs->cap) {
        size_t cap = cs->cap ? cs->cap : 4096;
        while (cap < cs->len + n + 1)
            cap *= 2;
        char *nb = realloc(cs->buf, cap);
        if (!nb)
            return MHD_NO;
        cs->buf = nb;
        cs->cap = cap;
    }
    memcpy(cs->buf + cs->len, data, n);
    cs->len += n;
    cs->buf[cs->len] = '\0';
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct conn_state *cs = *con_cls;

    if (!cs)
        return start_request(srv, conn, url, method, con_cls);
    log_set_request_id(cs->request_id);
    if (cs->rq.status != 0 && !cs->throttled) {
        /* Already answered early: discard whatever still arrives. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        /* A refused call's body is read (the connection stays usable) and dropped. */
        return cs->throttled ? MHD_YES : append_body(cs, upload_data, n);
    }
    if (cs->throttled) {
        hold_refusal(srv);
        return send_reply(cs);
    }
    dispatch(cs);
    release_db(cs);
    return send_reply(cs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct http_server *srv = cls;
    struct conn_state *cs = *con_cls;
    if (!cs)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs = (double)(now.tv_sec - cs->started.tv_sec) +
                  (double)(now.tv_nsec - cs->started.tv_nsec) / 1e9;
    const char *route = cs->route >= 0 ? srv->routes[cs->route].pattern : "other";
    const char *method = cs->route >= 0 ? srv->routes[cs->route].method : "other";
    metrics_observe_request(srv->app->metrics, method, route, cs->rq.status, secs);
    log_info("%s %s -> %d (%.1f ms)", cs->rq.method, cs->rq.path, cs->rq.status, secs * 1000);
    log_set_request_id(NULL);
    release_db(cs);
    json_decref(cs->rq.json);
    reset_reply(&cs->rq);
    free(cs->buf);
    free(cs);
    *con_cls = NULL;
}

/* A new connection from an address whose connections fill its limit and
 * the held ones is closed at once, before a thread is made for it. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    struct http_server *srv = cls;
    char peer[64], key[CLIENT_KEY_LEN];
    peer_text(addr, peer, sizeof(peer));
    clientaddr_key(peer, NULL, NULL, key);
    return ratelimit_conn_full(srv->conns, key) ? MHD_NO : MHD_YES;
}

/* Counts each connection of an address from its start to its close. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    struct conn_ctx *ctx = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return; /* served, not counted */
        char peer[64];
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        peer_text(ci ? ci->client_addr : NULL, peer, sizeof(peer));
        clientaddr_key(peer, NULL, NULL, ctx->key);
        ctx->what = ratelimit_conn_open(srv->conns, ctx->key, time(NULL), &ctx->counted);
        *socket_context = ctx;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && ctx) {
        if (ctx->counted)
            ratelimit_conn_close(srv->conns, ctx->key);
        free(ctx);
        *socket_context = NULL;
    }
}

/* libmicrohttpd's messages; the same message again within a second of its
 * last line (a flood of connections refused over an address's limit) is
 * counted, and the count written as a line of its own once the second is
 * over or another message comes. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *srv = cls;
    char line[256], prev[256];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    long long now = monotonic_ms();
    long repeats = 0;
    pthread_mutex_lock(&srv->mhd_log_lock);
    bool same = strcmp(line, srv->mhd_last) == 0 && now - srv->mhd_last_ms < 1000;
    if (same) {
        srv->mhd_repeats++;
    } else {
        repeats = srv->mhd_repeats;
        memcpy(prev, srv->mhd_last, sizeof(prev));
        srv->mhd_repeats = 0;
        srv->mhd_last_ms = now;
        snprintf(srv->mhd_last, sizeof(srv->mhd_last), "%s", line);
    }
    pthread_mutex_unlock(&srv->mhd_log_lock);
    if (same)
        return;
    if (repeats > 0)
        log_warn("http: %s (%ld more times)", prev, repeats);
    log_warn("http: %s", line);
}

static void server_free(struct http_server *srv)
{
    pthread_mutex_destroy(&srv->public_lock);
    pthread_mutex_destroy(&srv->mhd_log_lock);
    ratelimit_free(srv->public_rate);
    ratelimit_free(srv->conns);
    free(srv);
}

int http_start(struct http_server **out, struct app *app, const struct http_route *routes,
               size_t nroutes)
{
    *out = NULL;
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->app = app;
    srv->routes = routes;
    srv->nroutes = nroutes;
    pthread_mutex_init(&srv->public_lock, NULL);
    pthread_mutex_init(&srv->mhd_log_lock, NULL);
    /* Calls without a token, per address (public_rate 0: no limit). */
    if (app->cfg->public_rate > 0 &&
        ratelimit_new_rate(&srv->public_rate, app->cfg->public_rate, app->cfg->public_burst) != 0) {
        server_free(srv);
        return -ENOMEM;
    }
    if (ratelimit_new_conns(&srv->conns, app->cfg->per_ip_connections,
                            app->cfg->per_ip_held_connections) != 0) {
        server_free(srv);
        return -ENOMEM;
    }
    /* Anonymous calls never hold the whole pool. */
    srv->public_max = app->cfg->db_public_connections;
    if (srv->public_max >= app->cfg->db_pool_size)
        srv->public_max = app->cfg->db_pool_size > 1 ? app->cfg->db_pool_size - 1 : 1;

    struct sockaddr_in6 a6 = { 0 };
    struct sockaddr_in a4 = { 0 };
    struct sockaddr *addr = NULL;
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, app->cfg->listen_address, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)app->cfg->port);
        addr = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, app->cfg->listen_address, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)app->cfg->port);
        addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        server_free(srv);
        return -EINVAL;
    }
    /* The per-address connection limit is accept_policy's and on_connection's,
     * by client address (IPv6 by /64), not libmicrohttpd's by exact address. */
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)app->cfg->port, accept_policy, srv, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)app->cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)app->cfg->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONN_MEMORY, MHD_OPTION_THREAD_STACK_SIZE,
        CONN_STACK_SIZE + CONN_STACK_EXTRA, MHD_OPTION_END);
    if (!srv->daemon) {
        server_free(srv);
        return -EADDRINUSE;
    }
    *out = srv;
    return 0;
}

int http_port(const struct http_server *srv)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : -1;
}

void http_stop(struct http_server *srv)
{
    if (!srv)
        return;
    MHD_stop_daemon(srv->daemon);
    server_free(srv);
}
