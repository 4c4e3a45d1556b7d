/* requests.h — intake of approved requests: validation and the handlers of
 * POST /v1/requests, GET /v1/requests/{no} and POST /v1/requests/{no}/cancel. */
#ifndef CARDD_REQUESTS_H
#define CARDD_REQUESTS_H

#include <jansson.h>
#include <stddef.h>
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

struct db;
struct db_res;

/* The holidays after day (a Riyadh day number), within three months,
 * sorted, at most max. Returns how many, or a DB_* code. */
int requests_load_holidays(struct db *db, long day, long *out, size_t max);

/* The columns of a requests_at_risk() row, in order. */
enum at_risk_col {
    AT_RISK_COL_REQUEST_NO,
    AT_RISK_COL_KIND,
    AT_RISK_COL_STATUS,
    AT_RISK_COL_EARLIEST, /* YYYY-MM-DD */
    AT_RISK_COL_LATEST,   /* YYYY-MM-DD */
    AT_RISK_COL_OVERDUE,  /* "t" when the latest delivery date has passed */
};

/* Requests that may break the promise to the citizen, as of now (Riyadh
 * days): not yet dispatched two working days before their latest delivery
 * date (that is, the latest date is no later than cutoff, the second
 * working day after today), and those with the courier whose latest date
 * has passed. Latest date first. cutoff (11 bytes) receives the cutoff
 * date; *res (columns of enum at_risk_col) is the caller's to free.
 * Returns 0 or a DB_* code. */
int requests_at_risk(struct db *db, time_t now, char cutoff[11], struct db_res **res);

/* How many requests_at_risk() lists. Returns 0 or a DB_* code. */
int requests_at_risk_count(struct db *db, time_t now, long *count);

void requests_create(struct http_req *rq);
void requests_get(struct http_req *rq);
void requests_cancel(struct http_req *rq);

#endif
