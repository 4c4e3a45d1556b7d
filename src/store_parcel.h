/* store_parcel.h — the parcel aggregate: a produced card handed to a
 * courier (dispatches, parcels) and the courier's events about it
 * (courier_events). The only module that writes those tables.
 *
 * A parcel has no state column of its own: its state is worked out from
 * all of its courier events (parcel_fold, src/parcel.c) — kept as its
 * request's status and its failed attempts, which an event later than all
 * the others moves by one step (parcel_step) — and moves the
 * request's status through request_apply() with the courier events of
 * request_transitions[] (store_request.c), which write the status, its
 * event, the holder's notification and the audit entry. The handover at a
 * branch is the request's "hand_over". */
#ifndef CARDD_STORE_PARCEL_H
#define CARDD_STORE_PARCEL_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

struct db;

/* ---- dispatch ---- */

/* The service-indicator letters of our tracking numbers ("RR": registered). */
#define DISPATCH_TRACKING_PREFIX "RR"

/* What parcel_dispatch() answers besides its code. */
struct dispatch_result {
    char dispatch_id[24];
    json_t *items;        /* 0: [{"request_no","tracking_no"}] in the order given */
    json_t *unknown;      /* -ENOENT: [{"field": "request_nos[i]", "code": "unknown"}] */
    json_t *not_produced; /* -EPERM: [{"request_no","status"}] */
};

/* Hands the requests (a JSON array text of request numbers, each at most
 * once) to the courier (by name) under new tracking numbers, in one
 * transaction: all are dispatched or none. Returns 0, -ENOENT (unknown
 * request numbers), -EPERM (some are not produced), -ERANGE (tracking
 * numbers exhausted) or a DB_* code. The caller frees out's JSON. */
int parcel_dispatch(struct db *db, const char *courier_id, const char *courier_name,
                    const char *request_nos_json, const char *actor, struct dispatch_result *out);

/* ---- courier events ---- */

/* One courier event, checked (courier.c). */
struct courier_event {
    const char *event_id;
    const char *tracking_no;
    const char *reason;
    const char *location;
    int code; /* enum parcel_code */
    time_t at;
    char at_text[21];
};

/* The rules an event is applied under (configuration). */
struct parcel_rules {
    const char *actor;   /* the courier's token name */
    int max_failed;      /* delivery_attempts */
    int collection_days; /* working days a branch keeps a card */
};

/* What became of one event. BEFORE_DISPATCH: dated before the card was
 * handed over (beyond the clock skew allowed), which cannot be true. */
enum parcel_result {
    PARCEL_APPLIED,   /* it moved the parcel */
    PARCEL_RECORDED,  /* it joined the history without moving it */
    PARCEL_DUPLICATE, /* its event_id was seen before: nothing changed */
    PARCEL_NOT_FOUND,
    PARCEL_FAILED, /* a server fault; *rc says which */
    PARCEL_BEFORE_DISPATCH,
};

#define PARCEL_FUTURE_SKEW_S 300

/* Applies one event in its own transaction (retried on a serialisation
 * failure): stored once, added to the request's history, and the parcel
 * and its request moved to what all of its events say. view (may be NULL)
 * receives what parcel_view() gives, for an applied, recorded or duplicate
 * event. */
enum parcel_result parcel_apply_event(struct db *db, const char *courier_id,
                                      const struct courier_event *ev,
                                      const struct parcel_rules *rules, json_t *view, int *rc);

/* One event of a batch (ev NULL: it failed its checks, and is skipped)
 * and what became of it; view (may be NULL) as parcel_apply_event's. */
struct parcel_batch_item {
    const struct courier_event *ev;
    enum parcel_result result;
    json_t *view;
};

/* Applies a courier's batch of events in one transaction (retried on a
 * serialisation failure), with the outcome each event would have had,
 * applied one after the other in the order given: its parcels locked at
 * once, its new events stored with one statement, their history entries
 * with another, every change of status through the request's transition
 * table in the order the events made it, and each parcel's new state
 * written once. Returns 0, or a negative code when nothing was applied
 * (every item is then PARCEL_FAILED). */
int parcel_apply_batch(struct db *db, const char *courier_id, struct parcel_batch_item *items,
                       size_t n, const struct parcel_rules *rules);

/* Adds tracking_no, status, failed_attempts, action, branch and collect_by
 * of a parcel to obj. Returns 0 or a negative code. */
int parcel_view(struct db *db, const char *parcel_id, json_t *obj);

/* The courier named name (id: 24 bytes). Returns 0, -ENOENT or a DB_* code. */
int parcel_courier_by_name(struct db *db, const char *name, char id[24]);

/* The courier's parcel with this tracking number (parcel_id: 24 bytes).
 * Returns 0, -ENOENT or a DB_* code. */
int parcel_find(struct db *db, const char *tracking_no, const char *courier_id, char parcel_id[24]);

/* ---- handover ---- */

/* The holder collects the card at branch_id, in one transaction. status
 * (32 bytes) receives the request's status when it is not ready. Returns
 * 0, -EALREADY (this branch handed it over already), -ENOENT (no request
 * with this number and national ID), -EXDEV (the card is not at this
 * branch), -EPERM (not ready for collection yet) or a DB_* code. */
int parcel_hand_over(struct db *db, const char *branch_id, const char *request_no,
                     const char *national_id, const char *actor, char status[32]);

#endif
