/* store_station.h — the station aggregate: the only module that writes
 * the stations table.
 *
 * A station's state (idle, busy, error, offline; paused is a flag beside
 * it) moves only along station_transitions[] (from, event, to), through
 * station_apply(), which writes the state and its audit entry in the
 * caller's transaction. The moves of a job (claim, finish) are audited as
 * the card's job.* entries, which name the station.
 *
 * To add a transition: add its row to station_transitions[] in
 * store_station.c and to the expected list of
 * tests/unit/test_store_station.c, and call station_apply() with its event. */
#ifndef CARDD_STORE_STATION_H
#define CARDD_STORE_STATION_H

#include <stdbool.h>
#include <stddef.h>

#include "audit.h"

struct db;
struct db_res;
struct config;
struct station_config;

extern const struct transition station_transitions[];
extern const size_t station_ntransitions;

/* Locks the station and applies event. reason is the error_reason of an
 * error or offline state (kept as it was when the state does not change).
 * An error keeps its first reason; an offline station takes the new one.
 * A move to the same state with the same reason (the same error again)
 * writes nothing; pause and resume always write.
 * state (16 bytes, may be NULL) receives the state after. Returns 0,
 * -ENOENT, -EPERM (not allowed from its state) or a DB_* code. */
int station_apply(struct db *db, const char *station_id, const char *event, const char *reason,
                  const struct change *ch, char state[16]);

/* station_apply() in its own transaction; for the worker's moves. */
int station_apply_alone(struct db *db, const char *station_id, const char *event,
                        const char *reason, const char *actor);

/* Clears the station's error if it is still the given reason (one the
 * worker raised and saw go away, such as signer_unavailable), in its own
 * transaction; an error with another reason stays for an operator.
 * Returns 1 when it was ended, 0 when the station was not in that error,
 * or a DB_* code. */
int station_clear_error(struct db *db, const char *station_id, const char *reason,
                        const char *actor);

/* Adds to the station's counters of cards produced and spoiled. */
int station_count_cards(struct db *db, const char *station_id, long produced, long spoiled);

/* A job ended on the station: its counters, and the move back to idle,
 * or to error with station_error when that is not empty. A station an
 * operator moved meanwhile keeps its state. */
int station_job_done(struct db *db, const char *station_id, bool produced, bool spoiled,
                     const char *station_error, const char *actor);

/* Records this instance's configured stations that no instance recorded
 * yet, so that every instance sharing the database shows them; a station
 * already there is left to its worker (station_take). Returns 0 or a DB_*
 * code. */
int stations_register(struct db *db, const struct config *cfg);

/* Takes the station's lock on db, a connection of the worker's own, for as
 * long as that connection lives; *got is false when another session holds
 * it. Returns 0 or a DB_* code. */
int station_try_lock(struct db *db, const char *station_id, bool *got);

/* The worker of instance holds the station's lock: the station is this
 * instance's, with this configuration; an earlier refusal is cleared.
 * Returns 0 or a DB_* code. */
int station_take(struct db *db, const struct station_config *st, const char *instance);

/* instance is configured with a station another live instance holds, and
 * refuses it: shown in GET /v1/stations. Returns 0 or a DB_* code. */
int station_refused(struct db *db, const char *station_id, const char *instance);

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
    STATION_COL_REFUSED_BY,     /* an instance that refused it (another holds it), or NULL */
    STATION_COL_REFUSED_AT,     /* RFC 3339, when it last did */
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

/* Whether the station may take a job: not paused and not in error.
 * Returns 1, 0, or a DB_* code. When reason is not NULL it receives the
 * error reason of a station in error ("" otherwise). */
int station_ready(struct db *db, const char *station_id, char reason[32]);

#endif
