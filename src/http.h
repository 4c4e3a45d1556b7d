/* http.h — the HTTP front of the service: framing, limits, authentication,
 * JSON bodies, problem details and the route table. Only http.c includes
 * microhttpd.h; handlers see a struct http_req. */
#ifndef CARDD_HTTP_H
#define CARDD_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct app;
struct db;

/* Body limits (API.md): 64 KiB, 512 KiB on routes marked ROUTE_LARGE_BODY
 * (a batch of 500 courier events). A body over its limit is answered 413
 * before it is read, and the connection closed. */
#define HTTP_MAX_BODY       (64 * 1024)
#define HTTP_MAX_LARGE_BODY (512 * 1024)

/* The longest path parameter ({} of a route); longer ones, and any with a
 * byte outside A-Z a-z 0-9 - _ ., match no route (404). */
#define HTTP_MAX_PARAM 64

/* Roles, as bits of a route's permission mask. Admin is every role. */
enum {
    ROLE_INTAKE = 1u << 0,
    ROLE_OPERATOR = 1u << 1,
    ROLE_COURIER = 1u << 2,
    ROLE_BRANCH = 1u << 3,
    ROLE_ADMIN = 1u << 4,
};
#define ROLES_PUBLIC 0u

/* Route flags. */
enum {
    ROUTE_BODY = 1u << 0,          /* a JSON object body is required */
    ROUTE_BODY_OPTIONAL = 1u << 1, /* a JSON object body may be sent */
    ROUTE_SIGNED = 1u << 2,        /* courier calls: X-Signature over the raw body */
    ROUTE_LARGE_BODY = 1u << 3,    /* the body may reach HTTP_MAX_LARGE_BODY */
};

struct identity {
    long token_id;
    unsigned role; /* one ROLE_* bit */
    char name[65];
    char branch[33]; /* a branch token's branch; "" for every other role */
    /* The courier whose token this is ("" for none) and the salt its
     * signing secret is derived with (not a secret: see auth.h). */
    char courier_id[24];
    unsigned char courier_salt[16];
};

struct http_req {
    struct app *app;
    const char *method;
    const char *path;
    const char *request_id;
    char client_ip[64];
    char param[2][128]; /* the {} captures of the route, in order */
    const char *body;   /* raw body, NUL-terminated */
    size_t body_len;
    json_t *json;        /* the parsed body object, or NULL */
    struct identity who; /* set when the route needs a role */
    struct db *db;       /* set by http_db(); released after the handler */

    /* The answer, set by the handler through the functions below. */
    int status;
    json_t *reply;
    char *reply_text;
    const char *reply_type;
    char retry_after[16];
    char allow[64];
    bool www_authenticate;

    void *priv; /* http.c's own state */
};

typedef void (*http_handler)(struct http_req *rq);

struct http_route {
    const char *method;
    const char *pattern; /* "/v1/requests/{}/cancel" */
    unsigned roles;      /* ROLES_PUBLIC or a mask of ROLE_* */
    unsigned flags;
    http_handler handler;
};

struct http_server;

/* Starts listening with a thread per connection, so that one slow query
 * stalls only the connection that made it. Returns 0 or -errno. */
int http_start(struct http_server **out, struct app *app, const struct http_route *routes,
               size_t nroutes);
/* The port actually bound (useful with port 0). */
int http_port(const struct http_server *srv);
/* Stops accepting, waits for connections in flight, frees. NULL-safe. */
void http_stop(struct http_server *srv);

/* ---- for handlers ---- */

/* Answers with a JSON body; takes the reference to body. */
void http_json(struct http_req *rq, int status, json_t *body);
/* Answers with plain text (e.g. Prometheus); copies text. */
void http_text(struct http_req *rq, int status, const char *content_type, const char *text);
/* Answers with RFC 9457 problem details. code is the last part of the type
 * URI. errors (may be NULL) is a list of {"field","code"}; its reference is taken. */
void http_problem(struct http_req *rq, int status, const char *code, const char *title,
                  const char *detail, json_t *errors);
/* A 5xx that says the server is at fault without leaking internals; what
 * went wrong goes to the log with the request id. */
void http_internal_error(struct http_req *rq, const char *what);

/* A database connection for this request, or NULL after answering 503. */
struct db *http_db(struct http_req *rq);

/* The value of a query-string argument, or NULL. */
const char *http_query(struct http_req *rq, const char *name);

/* The value of a request header, or NULL. */
const char *http_header(struct http_req *rq, const char *name);

#endif
