/* stations.h — production stations as operators see them, and the queue. */
#ifndef CARDD_STATIONS_H
#define CARDD_STATIONS_H

#include <stdbool.h>

#include "http.h"

struct db;
struct db_res;
struct config;

/* Records this instance's configured stations (insert or update), so that
 * every instance sharing the database shows them. Returns 0 or a DB_* code. */
int stations_register(struct db *db, const struct config *cfg);

/* The columns of a stations_fetch() row, in order. */
enum station_col {
    STATION_COL_ID,
    STATION_COL_INSTANCE,
    STATION_COL_PRINTER_DRIVER,
    STATION_COL_PRINTER_SERIAL,
    STATION_COL_READER,
    STATION_COL_STATE,  /* as shown: "paused" for a paused station that is not busy */
    STATION_COL_REASON, /* the printer's error reason, or NULL */
    STATION_COL_PAUSED, /* "t" or "f" */
    STATION_COL_PRODUCED,
    STATION_COL_SPOILED,
    STATION_COL_UPDATED_AT,     /* RFC 3339 */
    STATION_COL_JOB_REQUEST,    /* the request in production there, or NULL */
    STATION_COL_JOB_CARD,       /* and its card serial, or NULL */
    STATION_COL_PRODUCED_TODAY, /* cards produced there since midnight in Riyadh */
    STATION_COL_SPOILED_TODAY,  /* and spoiled (or of unknown fate) */
};

/* Every station, ordered by id, one row each with the columns of enum
 * station_col. On success *res is the caller's to free with db_res_free.
 * Returns 0 or a DB_* code. */
int stations_fetch(struct db *db, struct db_res **res);

/* Pauses or resumes a station and writes it to the audit log as actor, in
 * one transaction. Resuming also clears an error: an operator has seen to
 * the printer. state (16 bytes) receives the state shown after, as in
 * STATION_COL_STATE. Returns 0, -ENOENT when there is no such station, or a
 * DB_* code. */
int station_set_paused(struct db *db, const char *station_id, bool paused, const char *actor,
                       char state[16]);

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

void stations_list(struct http_req *rq);
/* POST /v1/requests/{request_no}/release: as cardctl request release. */
void request_release(struct http_req *rq);
/* GET /v1/production/summary: the line at a glance and cards an hour. */
void production_summary(struct http_req *rq);
/* GET /v1/production/at-risk: requests that may break the promised date. */
void production_at_risk(struct http_req *rq);
void station_pause(struct http_req *rq);
void station_resume(struct http_req *rq);
void production_queue(struct http_req *rq);

#endif
