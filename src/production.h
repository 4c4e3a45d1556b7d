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

/* The face of job's card (national ID card or family record): the holder's
 * fields and the job's issue and expiry dates; serial, when not NULL,
 * replaces the job's card serial (a preview). The strings point into job. */
void production_face_data(const struct job *job, const char *serial, struct face_data *fd);

#endif
