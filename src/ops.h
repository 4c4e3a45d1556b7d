/* ops.h — /healthz, /readyz and /metrics. */
#ifndef CARDD_OPS_H
#define CARDD_OPS_H

#include "http.h"

void ops_healthz(struct http_req *rq);
void ops_readyz(struct http_req *rq);
void ops_metrics(struct http_req *rq);

#endif
