/* courier.h — what a courier's system calls, every call signed:
 *   POST /v1/courier/events               one event, or {"events": [...]}
 *   GET  /v1/courier/parcels/{tracking_no} what to do with a parcel now
 *
 * A single event is answered with its result object (200), or 404 / 422 as
 * problem details. A batch is answered 200 with {"results": [...]}, one
 * result per event in the order sent:
 *   {"event_id", "result": "applied" | "recorded" | "duplicate",
 *    "tracking_no", "status", "failed_attempts", "action", "branch", "collect_by"}
 *   {"event_id", "result": "not_found"}
 *   {"event_id", "result": "invalid", "errors": [{"field", "code"}]}
 *   {"event_id", "result": "error"}   (server fault; send that event again)
 * "applied": the event moved the parcel; "recorded": it joined the history
 * without moving it (late, out of order, or after delivery); "duplicate":
 * its event_id was seen before and nothing changed. A batch in which any
 * event met a server fault is answered 503 (problem details) that still
 * carries "results"; resending the whole batch is safe.
 * "action" is "deliver", "return_to_branch" (with "branch") or "none". */
#ifndef CARDD_COURIER_H
#define CARDD_COURIER_H

#include "http.h"

#define COURIER_MAX_EVENTS 500

void courier_events_post(struct http_req *rq);
void courier_parcel_get(struct http_req *rq);

#endif
