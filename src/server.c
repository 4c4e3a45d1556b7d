/* server.c — wiring: configuration, database pool, routes, workers. */
#include "server.h"
#include "app.h"
#include "auth.h"
#include "branch.h"
#include "callbacks.h"
#include "clientaddr.h"
#include "courier.h"
#include "db.h"
#include "ds.h"
#include "dispatch.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "ops.h"
#include "privileges.h"
#include "ratelimit.h"
#include "requests.h"
#include "station_worker.h"
#include "stations.h"
#include "stock.h"
#include "track.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long the station workers get to stop (their part of the 10 s a stop
 * may take). */
#define STATIONS_STOP_MS 5000

/* Every endpoint of API.md: method, path, who may call it, body, handler. */
static const struct http_route routes[] = {
    { "POST", "/v1/requests", ROLE_INTAKE, ROUTE_BODY, requests_create },
    { "GET", "/v1/requests/{}", ROLE_INTAKE | ROLE_OPERATOR, 0, requests_get },
    { "POST", "/v1/requests/{}/cancel", ROLE_INTAKE, ROUTE_BODY_OPTIONAL, requests_cancel },
    { "POST", "/v1/requests/{}/release", ROLE_OPERATOR, ROUTE_BODY_OPTIONAL, request_release },
    { "GET", "/v1/stations", ROLE_OPERATOR, 0, stations_list },
    { "POST", "/v1/stations/{}/pause", ROLE_OPERATOR, ROUTE_BODY_OPTIONAL, station_pause },
    { "POST", "/v1/stations/{}/resume", ROLE_OPERATOR, ROUTE_BODY_OPTIONAL, station_resume },
    { "GET", "/v1/production/queue", ROLE_OPERATOR, 0, production_queue },
    { "GET", "/v1/production/summary", ROLE_OPERATOR, 0, production_summary },
    { "GET", "/v1/production/at-risk", ROLE_OPERATOR, 0, production_at_risk },
    { "POST", "/v1/stock/batches", ROLE_OPERATOR, ROUTE_BODY, stock_batch_create },
    { "GET", "/v1/stock", ROLE_OPERATOR, 0, stock_list },
    { "POST", "/v1/cards/{}/spoil", ROLE_OPERATOR, ROUTE_BODY, card_spoil },
    { "POST", "/v1/cards/{}/destroy", ROLE_OPERATOR, ROUTE_BODY, card_destroy },
    { "POST", "/v1/dispatches", ROLE_OPERATOR, ROUTE_BODY, dispatches_create },
    { "POST", "/v1/courier/events", ROLE_COURIER, ROUTE_BODY | ROUTE_SIGNED | ROUTE_LARGE_BODY,
      courier_events_post },
    { "GET", "/v1/courier/parcels/{}", ROLE_COURIER, ROUTE_SIGNED, courier_parcel_get },
    { "POST", "/v1/branches/{}/handover", ROLE_BRANCH, ROUTE_BODY, branches_handover },
    { "POST", "/v1/track", ROLES_PUBLIC, ROUTE_BODY, track_lookup },
    { "GET", "/healthz", ROLES_PUBLIC, 0, ops_healthz },
    { "GET", "/readyz", ROLES_PUBLIC, 0, ops_readyz },
    { "GET", "/metrics", ROLE_OPERATOR, 0, ops_metrics },
};

const struct http_route *server_routes(size_t *count)
{
    *count = sizeof(routes) / sizeof(routes[0]);
    return routes;
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -EIO;
    return rename(tmp, path) == 0 ? 0 : -errno;
}

/* The master key, from which couriers' secrets are derived; without one
 * the service runs but cannot verify courier signatures. */
static int load_master_key(struct app *app)
{
    const struct config *cfg = app->cfg;
    int rc = auth_load_master_key(cfg->master_key_file, app->master_key);
    if (rc == -EPERM || rc == -EINVAL) {
        log_error("master key %s %s; refusing to start", cfg->master_key_file,
                  rc == -EPERM ? "is a symlink, not the service's own, or readable by others"
                               : "is not a regular file of 64 hex digits");
        return rc;
    }
    app->have_master_key = rc == 0;
    return 0;
}

/* Stations sign chips: only with a signer production accepts. */
static int check_signer(const struct config *cfg)
{
    if (cfg->station_count == 0)
        return 0;
    char why[256];
    if (ds_config_check(cfg, why, sizeof(why)) != 0) {
        log_error("%s; refusing to start", why);
        return -EPERM;
    }
    ds_cert_watch(cfg);
    return 0;
}

/* The database is reachable and its schema current; this instance's
 * stations are recorded in it. */
static int check_database(struct app *app)
{
    struct db *db = db_pool_acquire(app->pool, 5000);
    if (!db) {
        log_error("cannot reach the database");
        return DB_EDOWN;
    }
    int version = db_schema_version(db);
    if (version == DB_SCHEMA_VERSION && stations_register(db, app->cfg) != 0) {
        log_error("cannot record the stations: %s", db_error_message(db));
        version = -1;
    }
    /* Couriers' secrets derive from the master key: without it every courier
     * call would fail, so once couriers exist the service does not start. */
    bool couriers = false, refuse = false;
    if (version == DB_SCHEMA_VERSION && !app->have_master_key &&
        auth_couriers_exist(db, &couriers) == 0) {
        if (couriers) {
            log_error("no master key at %s, and couriers exist whose signatures need it;"
                      " refusing to start",
                      app->cfg->master_key_file);
            refuse = true;
        } else {
            log_warn("no master key at %s: courier signatures cannot be verified",
                     app->cfg->master_key_file);
        }
    }
    bool powerful = false;
    if (privileges_is_powerful(db, &powerful) == 0 && powerful)
        log_warn("the service connects as a superuser or the owner of the schema: it could rewrite"
                 " the audit log; give it a role of its own (service_role, README)");
    db_pool_release(app->pool, db);
    if (version != DB_SCHEMA_VERSION) {
        log_error("database schema is version %d, this build needs %d: run cardd migrate", version,
                  DB_SCHEMA_VERSION);
        return -EINVAL;
    }
    return refuse ? -EPERM : 0;
}

/* The workers that deliver what status changes wrote: the holders' SMS
 * and the approval platform's callbacks. */
static int start_outboxes(struct app *app, struct notifier **notifier,
                          struct callback_worker **callbacks)
{
    const struct config *cfg = app->cfg;
    int rc = notify_start(notifier, app);
    if (rc) {
        log_error("cannot start the notification worker");
        return rc;
    }
    if (!cfg->sms_gateway_url[0])
        log_warn("sms_gateway_url is empty: notifications wait until it is set");
    rc = callbacks_start(callbacks, app);
    if (rc) {
        log_error("cannot start the callback worker");
        return rc;
    }
    if (!cfg->platform_callback_url[0])
        log_warn("platform_callback_url is empty: status callbacks wait until it is set");
    else if (!app->have_master_key)
        log_warn("no master key: status callbacks cannot be signed and wait");
    return 0;
}

/* The pool, with the time-outs and keepalives of the configuration, and
 * the database checked (check_database). */
static int open_database(struct app *app)
{
    const struct config *cfg = app->cfg;
    struct db_options dbo = {
        .connect_timeout_s = cfg->db_connect_timeout_s,
        .statement_timeout_ms = cfg->db_statement_timeout_ms,
        .lock_timeout_ms = cfg->db_lock_timeout_ms,
        .idle_tx_timeout_ms = cfg->db_idle_tx_timeout_ms,
        .keepalive_idle_s = cfg->db_keepalive_idle_s,
    };
    int rc = db_pool_open(&app->pool, cfg->database, cfg->db_pool_size, &dbo);
    return rc ? rc : check_database(app);
}

/* Every worker starts its end at once; each then gets its share of the
 * 10 s a stop may take. Returns false when a station worker is still
 * inside a device call (left to the process's exit). */
static bool stop_workers(struct app *app, struct http_server *http, struct notifier *notifier,
                         struct callback_worker *callbacks, struct stations *stations)
{
    app_stop(app);
    notify_request_stop(notifier);
    /* Whatever the devices do, the stations get this long; a worker stuck
     * in a device call is left to the exit (start-up recovery resolves
     * its job). */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    bool stopped =
        stations_stop(stations, now.tv_sec * 1000L + now.tv_nsec / 1000000L + STATIONS_STOP_MS);
    http_stop(http);
    notify_stop(notifier);
    callbacks_stop(callbacks);
    return stopped;
}

/* A station thread is still inside a device call and may use what
 * server_run's frame and main() own: nothing is freed under it; the
 * process ends here, and start-up recovery resolves its job. */
static _Noreturn void exit_now(struct app *app, int rc)
{
    OPENSSL_cleanse(app->master_key, sizeof(app->master_key));
    log_warn("stopped with a station still in a device call");
    fflush(NULL);
    exit(rc == 0 ? 0 : 1);
}

int server_run(struct config *cfg, const char *port_file)
{
    struct app app = { .cfg = cfg };
    struct http_server *http = NULL;
    struct notifier *notifier = NULL;
    struct callback_worker *callbacks = NULL;
    struct stations *stations = NULL;
    int rc;
    sigset_t stop_signals;

    enum log_level level;
    if (log_parse_level(cfg->log_level, &level) == 0)
        log_set_level(level);

    /* The signals that stop us are taken synchronously by this thread;
     * every thread started from here inherits the mask. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!clientaddr_list_valid(cfg->trusted_proxies)) {
        log_error("trusted_proxies is not a list of addresses and networks: %s",
                  cfg->trusted_proxies);
        return -EINVAL;
    }
    rc = load_master_key(&app);
    if (!rc)
        rc = check_signer(cfg);
    if (rc)
        return rc;
    rc = open_database(&app);
    if (rc)
        goto out;
    rc = ratelimit_new(&app.track_limit, cfg->track_fail_limit, cfg->track_fail_window_s);
    if (!rc)
        rc = ratelimit_new(&app.handover_limit, cfg->track_fail_limit, cfg->track_fail_window_s);
    if (!rc)
        rc = metrics_new(&app.metrics);
    if (rc)
        goto out;

    rc = start_outboxes(&app, &notifier, &callbacks);
    if (rc)
        goto out;

    rc = http_start(&http, &app, routes, sizeof(routes) / sizeof(routes[0]));
    if (rc) {
        log_error("cannot listen on %s:%d", cfg->listen_address, cfg->port);
        goto out;
    }
    int port = http_port(http);
    log_info("listening on %s:%d (instance %s)", cfg->listen_address, port, cfg->instance);
    if (port_file && write_port_file(port_file, port) != 0)
        log_warn("cannot write %s", port_file);

    rc = stations_start(&app, &stations);
    if (rc) {
        log_error("cannot start the station workers");
        goto out;
    }

    int sig = 0;
    sigwait(&stop_signals, &sig);
    log_info("stopping on signal %d", sig);
    rc = 0;
out:
    if (!stop_workers(&app, http, notifier, callbacks, stations))
        exit_now(&app, rc);
    metrics_free(app.metrics);
    ratelimit_free(app.track_limit);
    ratelimit_free(app.handover_limit);
    db_pool_close(app.pool);
    OPENSSL_cleanse(app.master_key, sizeof(app.master_key));
    return rc;
}
