/* store_request.h — the request aggregate: the only module that writes
 * requests, request_addresses, request_documents, request_events and the
 * holder's notifications.
 *
 * A request's status moves only along request_transitions[] (from, event,
 * to). request_apply() is the one function that moves it: inside the
 * caller's transaction it writes the new status, its event in the
 * request's history, the holder's notification (every status is one the
 * citizen sees) and the audit entry.
 *
 * To add a transition: add its row to request_transitions[] in
 * store_request.c, the same row to the expected list of
 * tests/unit/test_store_request.c, and call request_apply() with its
 * event where the change happens. */
#ifndef CARDD_STORE_REQUEST_H
#define CARDD_STORE_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "audit.h"

struct db;
struct db_res;
struct job;

/* Every move a request's status may make; `to` is a status of status.h. */
extern const struct transition request_transitions[];
extern const size_t request_ntransitions;

/* The row for (from, event), or NULL when that move is not allowed. */
const struct transition *request_transition_find(const char *from, const char *event);

/* The event that moves a dispatched card to the courier-driven status
 * (in_transit ... delivered), or NULL for any other status. */
const char *request_courier_event(const char *status);

/* Locks the request (by id), and applies event: new status, event (ch->at,
 * or now), notification, audit entry (ch->actor, ch->detail_json, and
 * ch->card_serial and ch->station_id when set). Runs in the caller's
 * transaction. Returns 0, -ENOENT (no such request), -EPERM (the event is
 * not allowed from the request's status), -EINVAL or a DB_* code. */
int request_apply(struct db *db, const char *request_id, const char *event,
                  const struct change *ch);

/* What request_apply() reads of the request it locks. */
struct request_row {
    const char *id, *status, *request_no, *kind, *phone;
};

/* request_apply() for a caller that has locked the request in this
 * transaction (SELECT ... FOR UPDATE) and read row with it: the same
 * writes, without looking the request up again. */
int request_apply_locked(struct db *db, const struct request_row *row, const char *event,
                         const struct change *ch);

/* One move of request_apply_many(). */
struct request_move {
    struct request_row row; /* locked by the caller; row.status is the one it moves from */
    const char *event;
    struct change ch;
};

/* request_apply_locked() for many requests at once, at most one move each
 * (a request that moves twice takes a second call): the same writes, in a
 * few statements whatever their number. Returns 0, -EPERM when a move is
 * not allowed or -EINVAL when a request moves twice (nothing written then),
 * or a DB_* code. */
int request_apply_many(struct db *db, const struct request_move *moves, size_t n);

/* Appends an event that does not change the status (a late courier scan). */
int request_note(struct db *db, const char *request_id, const struct change *ch);

/* request_note() for many, by one actor, in one statement: notes is an
 * array of {"request_id", "at" (RFC 3339), "detail" (an object)}, written
 * in its order. */
int request_notes(struct db *db, const char *actor, json_t *notes);

/* ---- intake ---- */

/* What request_create() stores besides the body's own fields. */
struct request_intake {
    json_t *body;          /* a body that passed request_validate() */
    const char *canonical; /* its canonical text (sorted keys, compact) */
    const char *body_hash; /* "\\x" + SHA-256 of canonical, hex */
    const char *earliest;  /* the estimated delivery window, YYYY-MM-DD */
    const char *latest;
};

/* Stores a new request with its address and documents, queued (event
 * "receive"), in one transaction. Returns 0, -EEXIST when request_no is
 * already known (nothing written), -EBUSY when the holder has an active
 * request of this kind, or a DB_* code. */
int request_create(struct db *db, const struct request_intake *in, const char *actor);

/* The whole record of a request (GET /v1/requests/{no}) into *record.
 * When body_hash is not NULL, *same says whether the stored body has it.
 * Returns 0, -ENOENT, -ENOMEM or a DB_* code. */
int request_record(struct db *db, const char *request_no, const char *body_hash, bool *same,
                   json_t **record);

/* Cancels a request, voiding a card already produced for it, in one
 * transaction. status (32 bytes) receives the status it had. Returns 0,
 * -EALREADY when it was cancelled already, -EPERM when it can no longer be
 * cancelled, -ENOENT, or a DB_* code. */
int request_cancel(struct db *db, const char *request_no, const char *actor,
                   const char *detail_json, char status[32]);

/* ---- tracking ---- */

/* The columns of request_tracking()'s rows, in order. Every row repeats
 * the request's columns (TRACK_COL_ID to the branch's); each row holds one
 * entry of its timeline, unordered (TRACK_COL_TL_*, all NULL on the one
 * row of a request without any). */
enum track_col {
    TRACK_COL_ID,
    TRACK_COL_REQUEST_NO,
    TRACK_COL_KIND,
    TRACK_COL_REASON,
    TRACK_COL_STATUS,
    TRACK_COL_UPDATED_AT, /* RFC 3339 */
    TRACK_COL_EARLIEST,   /* YYYY-MM-DD */
    TRACK_COL_LATEST,
    TRACK_COL_CITY,
    TRACK_COL_DISTRICT,
    TRACK_COL_ATTEMPTS,   /* delivery attempts made: failed ones, and the one under way or done */
    TRACK_COL_COLLECT_BY, /* YYYY-MM-DD or NULL */
    TRACK_COL_BRANCH,     /* branch_id, name_en, name_ar, city, lat, lon; NULL when none */
    /* The timeline's entry: a status change that no courier event made
     * (source 0) or a courier event of the request's parcel (source 1). */
    TRACK_COL_HOLDER = TRACK_COL_BRANCH + 6, /* the holder's national ID: compared, not shown */
    TRACK_COL_TL_SOURCE,
    TRACK_COL_TL_AT_US,    /* at, in Unix microseconds */
    TRACK_COL_TL_AT,       /* at, RFC 3339 */
    TRACK_COL_TL_STATUS,   /* the status, or the courier's code */
    TRACK_COL_TL_EVENT_ID, /* the courier's event_id; NULL for source 0 */
    TRACK_COL_TL_ORDER,    /* ties: the status change's row id; 0 */
};

/* What the citizen may see of a request, when national_id is its
 * holder's: its rows (enum track_col), the caller's to free, read in one
 * round trip by one statement prepared once per connection. The same
 * statement does the same work whether or not the request exists (an
 * unknown one reads a stand-in request), and the national ID is compared
 * in constant time against the stored one or a stand-in, so the time taken
 * says nothing. Returns 0, -ENOENT (no such request, or not this
 * holder's) or a DB_* code. On -ENOENT *rows holds rows that are not the
 * caller's to show (another request's, or none): the caller builds its
 * answer from them all the same and drops it, so that a miss costs what a
 * match costs, then frees them. */
int request_tracking(struct db *db, const char *request_no, const char *national_id,
                     struct db_res **rows);

/* ---- the promise at risk ---- */

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

/* ---- production ---- */

/* Locks the oldest request waiting for a card (SKIP LOCKED) and fills the
 * holder's fields of job, with today's issue and expiry dates; queued
 * says whether the citizen still sees it as queued. Returns 0, -ENOENT
 * when nothing waits, or a DB_* code. */
int request_take_next(struct db *db, struct job *job, bool *queued);

/* The station producing the request now (NULL: none). */
int request_set_station(struct db *db, const char *request_id, const char *station_id);

/* Back to the queue after a card that was not produced; with spoiled, one
 * more spoiled card is counted and the request is held for an operator
 * once spoil_limit is reached, with the reasons of its spoiled cards. */
int request_requeue(struct db *db, const char *request_id, bool spoiled, int spoil_limit);

/* Off the line and held for an operator with reason: its data cannot be
 * made into a card (no blank was spent on it). */
int request_hold(struct db *db, const char *request_id, const char *reason);

/* Locks the request (FOR UPDATE) and gives its status (32 bytes). */
int request_lock_status(struct db *db, const char *request_id, char status[32]);

/* The columns of a production_queue_fetch() row, in order. */
enum queue_col {
    QUEUE_COL_ID, /* the cursor of the next page */
    QUEUE_COL_REQUEST_NO,
    QUEUE_COL_KIND,
    QUEUE_COL_REASON,
    QUEUE_COL_APPROVED_AT, /* RFC 3339 */
    QUEUE_COL_QUEUED_AT,   /* RFC 3339 */
    QUEUE_COL_SPOILED_CARDS,
    QUEUE_COL_HOLD_REASON, /* NULL unless held for an operator */
    QUEUE_COL_STATION,     /* the station producing it now, or NULL */
    QUEUE_COL_STATUS,
};

/* Requests that wait for a card or are in production, oldest first, those
 * after id `after` (0: from the start), at most limit rows; only the ones
 * held for an operator when held_only. Rows have the columns of enum
 * queue_col; *res is the caller's to free with db_res_free. Returns 0 or a
 * DB_* code. */
int production_queue_fetch(struct db *db, long after, long limit, bool held_only,
                           struct db_res **res);

/* Releases a request held for an operator after too many spoiled cards:
 * the hold is cleared so production takes it again, its count of spoiled
 * cards stays (one more spoiled card holds it again), and the audit log
 * says who released it. The hold reason it had is copied to reason when
 * reason is not NULL. Returns 0, -ENOENT when there is no such request,
 * -EALREADY when it is not held (or no longer waits for a card), or a DB_*
 * code. */
int request_release_hold(struct db *db, const char *request_no, const char *actor, char *reason,
                         size_t reason_len);

#endif
