/* flow.h — set-up shared by the dispatch, courier and notification tests:
 * couriers, signed courier calls, and requests brought to `produced`. */
#ifndef CARDD_TEST_FLOW_H
#define CARDD_TEST_FLOW_H

#include "harness.h"

/* cardctl courier add NAME: fills its token and signing secret. Returns 0 or -1. */
int flow_courier_add(struct service *svc, const char *name, char *token, size_t toklen,
                     char *secret, size_t seclen);

/* A courier call signed with secret at time t (0: now). method "POST" with a
 * JSON body or "GET" with none. Returns 0 (r filled) or -1. */
int flow_signed(struct service *svc, const char *method, const char *path, const char *token,
                const char *secret, long t, const char *body, struct reply *r);

/* Submits request (a body as sample_json gives, taken) through intake and
 * sets it `produced` directly in the database — the state the production
 * line leaves it in. Returns 0 or -1. */
int flow_produced(struct service *svc, const char *intake_token, json_t *request);

/* Dispatches one request to courier; tracking receives its number. Returns 0 or -1. */
int flow_dispatch(struct service *svc, const char *operator_token, const char *courier,
                  const char *request_no, char tracking[14]);

/* One courier event as JSON text (reason may be NULL); the caller frees it. */
char *flow_event(const char *event_id, const char *tracking_no, const char *code, const char *at,
                 const char *reason);

/* "YYYY-MM-DDTHH:MM:SSZ" of now + offset seconds. */
void flow_time(long offset, char out[21]);

/* A member of a JSON object as a string, or "" when absent. */
const char *flow_str(json_t *obj, const char *key);

/* One field of one row: harness_sql with a formatted statement. */
int flow_sql(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A number from the test database (the first field of a statement built as
 * printf would), or -1 when the statement fails. */
long flow_count(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Seconds on the monotonic clock. */
double flow_now(void);

/* NULL when the production bookkeeping adds up for a stock of cards
 * blanks: every card counted once, a card in production belongs to one job
 * in progress and back, used cards match produced attempts, spoiled cards
 * say why and count on their stations; else which rule failed. */
const char *flow_stock_problem(long cards);

#endif
