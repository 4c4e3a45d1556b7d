/* ops.c — liveness, readiness and metrics. */
#include "ops.h"
#include "app.h"
#include "db.h"
#include "metrics.h"

#include <stdlib.h>

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
    db_pool_release(rq->app->pool, db);
    if (!text) {
        http_internal_error(rq, "metrics could not be rendered");
        return;
    }
    http_text(rq, 200, "text/plain; version=0.0.4; charset=utf-8", text);
    free(text);
}
