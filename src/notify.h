/* notify.h — the notification worker: a thread of cardd that delivers the
 * rows of `notifications` to the SMS gateway (sms_gateway_url).
 *
 * Delivery is at least once and in order per request: a notification is not
 * sent while an earlier one of the same request is still pending. Rows are
 * claimed one at a time with FOR UPDATE SKIP LOCKED and leased (claim.h)
 * for longer than the slowest send, so several instances can share one
 * database and none sends a row another is sending; a lease that runs out
 * (an instance that died mid-send) makes the row due again. A failed send is retried with
 * exponential backoff, capped at notify_max_backoff_s. The worker has its own
 * database connection from the pool only while it claims or records, never
 * while it waits on the gateway, and HTTP handlers never wait on it. */
#ifndef CARDD_NOTIFY_H
#define CARDD_NOTIFY_H

#include <jansson.h>

struct app;
struct notifier;

/* Starts the worker thread. Returns 0 or -errno. */
int notify_start(struct notifier **out, struct app *app);

/* Asks the worker to stop and wakes it, without waiting: a stop starts
 * every worker's end at once. NULL-safe. */
void notify_request_stop(struct notifier *n);

/* Asks the worker to stop, wakes it and waits for it: a send in flight ends
 * within its time-out. NULL-safe. */
void notify_stop(struct notifier *n);

/* Seconds to wait before attempt number `attempts + 1` after `attempts`
 * failures: 1, 2, 4, ... capped at max_s. */
int notify_backoff_s(int attempts, int max_s);

/* The JSON body the gateway receives for one notification. */
json_t *notify_body(const char *notification_id, const char *phone, const char *text_ar,
                    const char *text_en, const char *request_no, const char *status);

#endif
