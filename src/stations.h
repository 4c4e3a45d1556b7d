/* stations.h — production stations as operators see them, and the queue. */
#ifndef CARDD_STATIONS_H
#define CARDD_STATIONS_H

#include <stdbool.h>

#include "http.h"
#include "store_request.h"
#include "store_station.h"

void stations_list(struct http_req *rq);
/* POST /v1/requests/{request_no}/release: as cardctl request release. */
void request_release(struct http_req *rq);
/* GET /v1/production/summary: the line at a glance and cards an hour. */
void production_summary(struct http_req *rq);
/* GET /v1/production/at-risk: requests that may break the promised date. */
void production_at_risk(struct http_req *rq);
void station_pause(struct http_req *rq);
void station_resume(struct http_req *rq);
void production_queue(struct http_req *rq);

#endif
