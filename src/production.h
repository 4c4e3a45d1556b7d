/* production.h — the production line's bookkeeping in the database: claim
 * the oldest waiting request and a blank card, record how the job ended,
 * and resolve jobs left in flight by a crash. Device work happens between
 * claim and finish (station.c); every step is in the audit log.
 *
 * Crash safety rests on one rule: the claim (request, card, attempt) is
 * committed before the printer touches a card, and the outcome is
 * committed in one transaction after. A crash in between leaves an
 * attempt 'in_progress' that production_recover() resolves on restart. */
#ifndef CARDD_PRODUCTION_H
#define CARDD_PRODUCTION_H

#include <stdbool.h>
#include <stddef.h>

struct db;
struct face_data;

struct job {
    char attempt_id[24];
    char request_id[24];
    char request_no[40];
    char kind[16]; /* national_id | family_record */
    char card_serial[16];
    char station_id[40];
    char batch_no[40];
    /* holder data for the chip and the face */
    char national_id[11];
    char name_ar[801];
    char name_en[101];
    char birth_date[11];
    char sex[2];
    char nationality[4];
    char issue_date[11];
    char expiry_date[11];
};

enum job_outcome {
    JOB_PRODUCED,  /* printed, verified, ejected */
    JOB_SPOILED,   /* the card was rejected or is known bad */
    JOB_NOT_TAKEN, /* no card left the feeder: it is still blank stock */
    JOB_UNKNOWN,   /* the card's fate is unknown: spoiled, operator told */
};

struct job_result {
    enum job_outcome outcome;
    char step[32];          /* where it ended: feed, encode, print, eject ... */
    char reason[160];       /* e.g. "update_binary: 6A84", "ribbon_out" */
    char station_error[32]; /* a printer state that needs an operator, or "" */
};

/* Claims the oldest request waiting for a card and the next available
 * blank card, and starts an attempt, in one committed transaction.
 * Returns 0, -ENOENT when nothing waits, -ENOSPC when no blank card is
 * available (nothing is claimed then), or a DB_* code. */
int production_claim(struct db *db, const char *station_id, const char *instance, struct job *job);

/* Records the end of a job in one transaction: the card's state, the
 * attempt, the request (produced, or back to the queue, or held after
 * spoil_limit spoiled cards), the station's counters and state, the audit
 * log. A request cancelled while in production has its card voided.
 * Returns 0 or a DB_* code. */
int production_finish(struct db *db, const struct job *job, const struct job_result *result,
                      int spoil_limit);

/* Appends one step of a job to the audit log. */
int production_step(struct db *db, const struct job *job, const char *action,
                    const char *detail_json);

/* Resolves every attempt still in progress on the given station: its card
 * is spoiled ("fate unknown after restart") and its request requeued.
 * Returns how many were resolved, or a DB_* code. */
int production_recover(struct db *db, const char *station_id, const char *actor);

/* Station state shown to operators. A station in error stays so (only an
 * error replaces an error): an operator's resume clears it. */
int production_station_state(struct db *db, const char *station_id, const char *state,
                             const char *reason);

/* Clears the station's error if it is still the given reason (one the
 * worker raised and saw go away, such as signer_unavailable); an error
 * with another reason stays for an operator. Returns 0 or a DB error. */
int production_station_clear(struct db *db, const char *station_id, const char *reason);

/* Whether the station may take a job: not paused and not in error.
 * Returns 1, 0, or a DB_* code. */
int production_station_ready(struct db *db, const char *station_id);

/* The data a request's card carries, as a station would print it: the
 * holder's fields of job, the card serial of the request's last produced or
 * in-production card ("" when it has none yet), and the issue and expiry
 * dates (Riyadh dates; issued when that card was claimed, else today;
 * valid 10 years). attempt_id, request_id and station_id are filled as
 * known. Returns 0, -ENOENT when there is no such request, or a DB_* code. */
int production_card_data(struct db *db, const char *request_no, struct job *job);

/* The face of job's card (national ID card or family record): the holder's
 * fields and the job's issue and expiry dates; serial, when not NULL,
 * replaces the job's card serial (a preview). The strings point into job. */
void production_face_data(const struct job *job, const char *serial, struct face_data *fd);

/* Releases a request held for an operator after too many spoiled cards:
 * the hold is cleared so production takes it again, its count of spoiled
 * cards stays (one more spoiled card holds it again), and the audit log
 * says who released it. The hold reason it had is copied to reason when
 * reason is not NULL. Returns 0, -ENOENT when there is no such request,
 * -EALREADY when it is not held (or no longer waits for a card), or a DB_*
 * code. */
int production_release(struct db *db, const char *request_no, const char *actor, char *reason,
                       size_t reason_len);

/* The line at a glance. Requests: waiting for a card (not held), held for
 * an operator, with a card in production now. Cards: produced and spoiled
 * since midnight in Riyadh, and produced in the last window_min minutes.
 * Stations by the state shown to operators. */
struct production_progress {
    long waiting, held, in_production;
    long produced_today, spoiled_today;
    long produced_window;
    int window_min;
    long busy, idle, error, paused, offline;
};

/* Fills *p. window_min is 1 to 1440. Returns 0, -EINVAL or a DB_* code. */
int production_progress(struct db *db, int window_min, struct production_progress *p);

/* Cards finished in one hour: produced, and spoiled or of unknown fate. */
struct production_hour {
    char start[24]; /* the hour's start, RFC 3339 UTC */
    long produced, spoiled;
};

#define PRODUCTION_HOURS 24

/* The last PRODUCTION_HOURS hours, oldest first, the current hour last.
 * Returns 0 or a DB_* code. */
int production_hourly(struct db *db, struct production_hour out[PRODUCTION_HOURS]);

/* Cards an hour at the pace of p's window. */
double production_cards_per_hour(const struct production_progress *p);

#endif
