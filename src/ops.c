/* ops.c — liveness, readiness and metrics. */
#define _GNU_SOURCE /* asprintf */
#include "ops.h"
#include "app.h"
#include "db.h"
#include "ds.h"
#include "metrics.h"
#include "store_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ops_healthz(struct http_req *rq)
{
    http_json(rq, 200, json_pack("{s:s}", "status", "ok"));
}

void ops_readyz(struct http_req *rq)
{
    /* Through the anonymous calls' share of the pool, like tracking. */
    struct db *db = http_db(rq);
    if (!db)
        return;
    int version = db_schema_version(db);
    if (version != DB_SCHEMA_VERSION) {
        http_problem(rq, 503, "not_ready", "Not ready",
                     version < 0 ? "The database is not reachable."
                                 : "The database schema is not current; run cardd migrate.",
                     NULL);
        return;
    }
    if (rq->app->cfg->station_count > 0) {
        /* An instance that produces cards signs their chips. */
        struct ds_cert_info info;
        if (ds_cert_read(rq->app->cfg, time(NULL), &info) != 0) {
            char detail[256];
            snprintf(detail, sizeof(detail), "No valid Document Signer certificate: %s.", info.why);
            http_problem(rq, 503, "not_ready", "Not ready", detail, NULL);
            return;
        }
    }
    http_json(rq, 200, json_pack("{s:s, s:i}", "status", "ready", "schema_version", version));
}

void ops_metrics(struct http_req *rq)
{
    /* The request's own connection (the token was checked with it);
     * metrics_render reads the database's gauges only when its copy is
     * stale: at most one round of table scans every few seconds. */
    struct db *db = http_db(rq);
    if (!db)
        return;
    char *text = metrics_render(rq->app->metrics, db);
    long at_risk = 0;
    bool have_risk = requests_at_risk_count(db, time(NULL), &at_risk) == 0;
    char *ds = rq->app->cfg->station_count > 0 ? ds_metrics(rq->app->cfg) : NULL;
    if (text && ds) {
        char *both = NULL;
        if (asprintf(&both, "%s%s", text, ds) < 0)
            both = NULL;
        free(text);
        text = both;
    }
    free(ds);
    if (!text) {
        http_internal_error(rq, "metrics could not be rendered");
        return;
    }
    char *all = NULL;
    if (have_risk &&
        asprintf(&all,
                 "%s# HELP cardd_requests_at_risk Requests that may miss their latest delivery"
                 " date (see GET /v1/production/at-risk).\n"
                 "# TYPE cardd_requests_at_risk gauge\ncardd_requests_at_risk %ld\n",
                 text, at_risk) < 0)
        all = NULL;
    http_text(rq, 200, "text/plain; version=0.0.4; charset=utf-8", all ? all : text);
    free(all);
    free(text);
}
