/* requests.h — intake of approved requests: validation and the handlers of
 * POST /v1/requests, GET /v1/requests/{no} and POST /v1/requests/{no}/cancel. */
#ifndef CARDD_REQUESTS_H
#define CARDD_REQUESTS_H

#include <jansson.h>
#include <time.h>

#include "http.h"

/* Checks an approved request against every rule of API.md. Appends one
 * {"field","code"} per failing field to errors (an array) and returns how
 * many it appended. now is the current time (timestamps may not be later). */
int request_validate(json_t *body, time_t now, json_t *errors);

/* The 5th and 7th working day after the Riyadh date of approved, skipping
 * weekends and the sorted holidays. */
void request_estimate(time_t approved, const long *holidays, size_t nholidays, long *earliest,
                      long *latest);

void requests_create(struct http_req *rq);
void requests_get(struct http_req *rq);
void requests_cancel(struct http_req *rq);

#endif
