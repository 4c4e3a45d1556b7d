/* journal.h — what happens to a request is written in three places, always
 * inside the caller's transaction: the request's status and event history,
 * the holder's notification, and the append-only audit log. */
#ifndef CARDD_JOURNAL_H
#define CARDD_JOURNAL_H

struct db;

/* Moves request (by id) to a citizen-visible status: updates the request,
 * appends an event (at: RFC 3339 or NULL for now) and writes the holder's
 * notification and the approval platform's callback (callbacks.h). detail_json may be NULL. Returns 0 or a DB_* code. */
int journal_status(struct db *db, const char *request_id, const char *status, const char *actor,
                   const char *at, const char *detail_json);

/* Appends an event that does not change the status (e.g. a late courier scan). */
int journal_event(struct db *db, const char *request_id, const char *actor, const char *at,
                  const char *detail_json);

/* Appends to the audit log. Any of request_no, card_serial, station_id and
 * detail_json may be NULL. */
int audit(struct db *db, const char *actor, const char *action, const char *request_no,
          const char *card_serial, const char *station_id, const char *detail_json);

#endif
