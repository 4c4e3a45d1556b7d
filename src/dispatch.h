/* dispatch.h — POST /v1/dispatches: produced cards handed to a courier,
 * each under a new UPU S10 tracking number. */
#ifndef CARDD_DISPATCH_H
#define CARDD_DISPATCH_H

#include "http.h"

/* Items one call may hand over. */
#define DISPATCH_MAX_ITEMS 200

/* The service-indicator letters of our tracking numbers ("RR": registered). */
#define DISPATCH_TRACKING_PREFIX "RR"

void dispatches_create(struct http_req *rq);

#endif
