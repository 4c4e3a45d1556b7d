/* store_card.h — the card aggregate: blank-stock batches, every card of
 * them, and the production attempts that use them. The only module that
 * writes stock_batches, cards and production_attempts.
 *
 * For each batch, received = used + spoiled + destroyed + in_production +
 * available, always: a card is one row whose state says where it is, and
 * the state moves only along card_transitions[] (from, event, to), through
 * card_apply(), which writes the card and its audit entry in the caller's
 * transaction. No card state is citizen-visible, so no notification.
 *
 * To add a transition: add its row to card_transitions[] in store_card.c
 * and to the expected list of tests/unit/test_store_card.c, and call
 * card_apply() with its event. */
#ifndef CARDD_STORE_CARD_H
#define CARDD_STORE_CARD_H

#include <stdbool.h>
#include <stddef.h>

#include "audit.h"

struct db;
struct db_res;
struct job;

#define CARD_SERIAL_MAX 9      /* the TD1 document number field */
#define STOCK_MAX_BATCH 100000 /* cards in one batch */

/* The serial count places after first ("A00000001" + 2 = "A00000003"),
 * keeping the width of the numeric tail. Returns 0, or -EINVAL when first
 * has no numeric tail or the tail would overflow its width. */
int card_serial_add(const char *first, long count, char out[CARD_SERIAL_MAX + 1]);

/* 1 to 9 of A-Z 0-9. */
bool card_serial_valid(const char *s);

/* ---- the card's life ---- */

extern const struct transition card_transitions[];
extern const size_t card_ntransitions;

struct card_change {
    struct change ch;       /* actor, detail, request_no and station_id of the audit entry */
    const char *request_id; /* claim: the request the card is made for */
    const char *reason;     /* spoil, recover, void: why (the card's spoil_reason) */
    const char *witness;    /* destroy: the second operator; ch.actor destroyed it */
};

/* Locks the card and applies event. state (16 bytes, may be NULL)
 * receives the state it had. Returns 0, -ENOENT (no such card), -EPERM
 * (not allowed from its state), or a DB_* code. */
int card_apply(struct db *db, const char *serial, const char *event, const struct card_change *c,
               char state[16]);

/* Dual control: a blank card leaves the stock only on two people's word.
 * stock_card_spoil spoils an available blank by hand, stock_card_destroy
 * destroys a spoiled card; actor did it, witness (another operator, already
 * checked with auth_witness) countersigned; both are in the audit log. Each
 * in its own transaction. Returns 0, -ENOENT (no such card), -EBUSY (not
 * in the right state; state says which it is) or a DB_* code. */
int stock_card_spoil(struct db *db, const char *serial, const char *reason, const char *actor,
                     const char *witness, char state[16]);
int stock_card_destroy(struct db *db, const char *serial, const char *actor, const char *witness,
                       char state[16]);

/* Voids (spoils) every card already produced for a cancelled request. */
int card_void_for_request(struct db *db, const char *request_id, const char *request_no,
                          const char *actor);

/* ---- production ---- */

/* Claims the next available blank card for job (request and station
 * filled) and starts its attempt on instance: job's card_serial, batch_no
 * and attempt_id are filled. Returns 0, -ENOSPC when no blank card is
 * available, or a DB_* code. */
int card_claim_next(struct db *db, struct job *job, const char *instance);

/* Appends one step of a job (card.fed, chip.encoded) to the audit log. */
int card_audit_step(struct db *db, const struct job *job, const char *action,
                    const char *detail_json);

/* Ends a job's attempt: outcome produced, spoiled, unknown or cancelled. */
int card_attempt_finish(struct db *db, const char *attempt_id, const char *outcome,
                        const char *step, const char *reason);

/* Resolves every attempt still in progress on the station after a crash:
 * the attempt is 'unknown', its card spoiled ("fate unknown after restart:
 * rejected"), with the audit entry. *lost receives one row per attempt:
 * request id, request_no, card serial; the caller's to free. Returns 0 or
 * a DB_* code. */
int card_recover_station(struct db *db, const char *station_id, const char *actor,
                         struct db_res **lost);

/* The data a request's card carries, as a station would print it: the
 * holder's fields of job, the card serial of the request's last produced or
 * in-production card ("" when it has none yet), and the issue and expiry
 * dates (Riyadh dates; issued when that card was claimed, else today;
 * valid 10 years). attempt_id, request_id and station_id are filled as
 * known. Returns 0, -ENOENT when there is no such request, or a DB_* code. */
int card_face_data(struct db *db, const char *request_no, struct job *job);

/* ---- batches ---- */

/* A rule of POST /v1/stock/batches that a batch breaks: the field and the
 * code the API answers for it ("format", "range", "no_room_for_count"). */
struct stock_problem {
    const char *field;
    const char *code;
};

/* Checks a batch against the rules for receiving it: batch_no as a request
 * number, first_serial a card serial, count 1 to STOCK_MAX_BATCH, and room
 * in first_serial's numeric tail for count cards. A NULL batch_no or first,
 * or a NULL count, is not checked (the caller reports it missing), and the
 * room is checked only when everything else is present and valid. Fills
 * problems with every rule broken, in field order, and returns how many (0
 * to 3); on 0 with every field given, last is the batch's last serial. */
int stock_batch_check(const char *batch_no, const char *first, const long *count,
                      struct stock_problem problems[3], char last[CARD_SERIAL_MAX + 1]);

/* What stock_batch_receive() found. */
enum {
    STOCK_RECEIVED = 0,   /* a new batch: its cards are available */
    STOCK_SAME_BATCH = 1, /* the same delivery again: nothing changed */
};

/* Receives a batch of blank cards: the batch and one available card per
 * serial, with the audit log (actor), in one transaction. The fields must
 * pass stock_batch_check(); last receives the last serial. Returns
 * STOCK_RECEIVED, STOCK_SAME_BATCH, -EINVAL (a rule is broken), -EEXIST (a
 * different batch with this number exists), -EADDRINUSE (some serials
 * belong to another batch; nothing is kept) or a DB_* code
 * (db_error_message() says why). */
int stock_batch_receive(struct db *db, const char *batch_no, const char *first, long count,
                        const char *actor, char last[CARD_SERIAL_MAX + 1]);

/* The states a card of a batch can be counted in, received first. */
enum stock_count {
    STOCK_COUNT_RECEIVED,
    STOCK_COUNT_USED,
    STOCK_COUNT_SPOILED,
    STOCK_COUNT_DESTROYED,
    STOCK_COUNT_IN_PRODUCTION,
    STOCK_COUNT_AVAILABLE,
    STOCK_NCOUNTS,
};

/* Their names as GET /v1/stock writes them. */
extern const char *const stock_count_name[STOCK_NCOUNTS];

struct stock_batch {
    char batch_no[33];
    char first_serial[CARD_SERIAL_MAX + 1];
    char received_at[24]; /* RFC 3339, UTC */
    long count[STOCK_NCOUNTS];
};

/* Every batch, oldest first, with its cards counted by state, and the
 * totals over all batches. *out is an array of *n batches to free() (NULL
 * when there is none). A batch whose cards on record differ from the count
 * received is logged as an error. Returns 0, -ENOMEM or a DB_* code. */
int stock_census(struct db *db, struct stock_batch **out, size_t *n, long totals[STOCK_NCOUNTS]);

#endif
