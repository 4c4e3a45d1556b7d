/* ops.c — liveness, readiness and metrics. */
#define _GNU_SOURCE
#include "ops.h"
#include "app.h"
#include "db.h"
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
    struct db *db = db_pool_acquire(rq->app->pool, 2000);
    if (!db) {
        http_problem(rq, 503, "not_ready", "Not ready", "The database is not reachable.", NULL);
        return;
    }
    int version = db_schema_version(db);
    db_pool_release(rq->app->pool, db);
    if (version != DB_SCHEMA_VERSION) {
        http_problem(rq, 503, "not_ready", "Not ready",
                     version < 0 ? "The database is not reachable."
                                 : "The database schema is not current; run cardd migrate.",
                     NULL);
        return;
    }
    http_json(rq, 200, json_pack("{s:s, s:i}", "status", "ready", "schema_version", version));
}

void ops_metrics(struct http_req *rq)
{
    struct db *db = db_pool_acquire(rq->app->pool, 2000);
    char *text = metrics_render(rq->app->metrics, db);
    long at_risk = 0;
    bool have_risk = db && requests_at_risk_count(db, time(NULL), &at_risk) == 0;
    db_pool_release(rq->app->pool, db);
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
