/* callbacks.h — status callbacks to the approval platform (API.md, "Status
 * callbacks to the approval platform").
 *
 * The outbox: every citizen-visible status change writes one row of
 * `callbacks` in the caller's transaction (callbacks_enqueue, called from
 * request_apply only, src/store_request.c), with its payload as it stands at that change, a
 * callback_id that stays the same across retries and a sequence that counts
 * the request's callbacks from 1.
 *
 * The worker: a thread of cardd that POSTs them to platform_callback_url,
 * signed with the platform secret (X-Signature: t=<unix>,v1=<hex
 * HMAC-SHA256(secret, "<t>.<raw body>")>). At least once and in order per
 * request: a callback is claimed only when every earlier one of its request
 * is sent. Several sends are in flight at once (callback_max_in_flight), each
 * for a different request, and new ones are claimed while others wait on the
 * platform, so one slow or failing request never holds back the others; the
 * SMS worker is a thread of its own. A claim (claimed_by, claim_until) is
 * committed before the send and lasts the send's time-out and a margin
 * (claim.h), so two instances never send one callback at once. 2xx: sent. 408, 429, 5xx, network errors: tried again after a capped
 * exponential backoff with jitter, or Retry-After when that is longer. Any
 * other answer: the callback is 'failed' and its request's later callbacks
 * wait behind it until an operator retries (cardctl callbacks retry). */
#ifndef CARDD_CALLBACKS_H
#define CARDD_CALLBACKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"

struct app;
struct db;
struct callback_worker;

/* Retry-After is honoured up to a day. */
#define CALLBACK_MAX_RETRY_AFTER_S 86400

/* Writes the callback of a status change of request (by id), in the caller's
 * transaction, which must already hold the request's row lock (the status
 * update takes it). at: RFC 3339 or NULL for now. Returns 0 or a DB_* code. */
int callbacks_enqueue(struct db *db, const char *request_id, const char *status, const char *at);

/* The same for many changes, at most one per request, in one statement:
 * changes is an array of {"request_id", "status", "at" (or null)}, written
 * in its order (the status labels are added to it). */
int callbacks_enqueue_many(struct db *db, json_t *changes);

/* Starts and stops the worker thread (it idles while platform_callback_url
 * is empty, no platform secret was made or the master key is missing). Stop aborts sends in flight; their
 * claims run out and they are sent again. NULL-safe stop. */
int callbacks_start(struct callback_worker **out, struct app *app);
void callbacks_stop(struct callback_worker *w);

/* Milliseconds to wait after `attempts` failed sends: 1 s, 2 s, 4 s, ...
 * capped at max_s, of which a random half (jitter in [0, 1)) is taken off;
 * retry_after_s (0: none) is honoured when longer, up to
 * CALLBACK_MAX_RETRY_AFTER_S. */
long callbacks_backoff_ms(int attempts, int max_s, double jitter, long retry_after_s);

/* Whether an HTTP answer (0: no answer, a network error) is tried again. */
bool callbacks_retryable(long http_status);

/* Makes a new platform secret (a new salt; the old secret stops working) and
 * fills out with it, to be shown once. Returns 0 or a DB_* code, or -EIO. */
int callbacks_secret_new(struct db *db, const uint8_t master[32],
                         char out[AUTH_SECRET_HEX_LEN + 1]);

/* One line of `cardctl callbacks`: a request with callbacks not yet sent. */
struct callback_row {
    const char *request_no;
    long waiting, failed;
    long head_sequence; /* the first one not sent */
    const char *head_state;
    long head_attempts;
    const char *next_try; /* RFC 3339 */
    const char *last_error;
    const char *oldest; /* RFC 3339: when the first unsent one was written */
};

/* Calls fn for each request with callbacks waiting or failed (only failed
 * ones when failed_only), oldest first. Returns 0 or a DB_* code. */
int callbacks_list(struct db *db, bool failed_only,
                   void (*fn)(const struct callback_row *row, void *ctx), void *ctx);

/* Puts the failed callbacks of one request (or of all, request_no NULL) back
 * to waiting, due now; they go out in order. Audited as actor's. *count gets
 * how many. Returns 0, -ENOENT for an unknown request, or a DB_* code. */
int callbacks_retry(struct db *db, const char *request_no, const char *actor, long *count);

#endif
