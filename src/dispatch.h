/* dispatch.h — POST /v1/dispatches: produced cards handed to a courier,
 * each under a new UPU S10 tracking number. */
#ifndef CARDD_DISPATCH_H
#define CARDD_DISPATCH_H

#include "http.h"
#include "store_parcel.h"

/* Items one call may hand over. */
#define DISPATCH_MAX_ITEMS 200

void dispatches_create(struct http_req *rq);

#endif
