/* audit.h — the append-only audit log, and the change every store module's
 * transition function is given. Only the store modules (src/store_*.c)
 * write the audit log, each for its own aggregate, inside the caller's
 * transaction. */
#ifndef CARDD_AUDIT_H
#define CARDD_AUDIT_H

#include <jansson.h>
#include <stddef.h>

struct db;

/* Who made a change, when, and why; handed to request_apply, card_apply and
 * station_apply. Every field but actor may be NULL. */
struct change {
    const char *actor;       /* token name, "station:ID", "cardctl:USER" */
    const char *at;          /* RFC 3339 when it happened; NULL: now */
    const char *detail_json; /* the event's and the audit entry's detail */
    const char *request_no;  /* named by the audit entry, when known */
    const char *card_serial;
    const char *station_id;
};

/* One allowed move of an aggregate's state: the tables request_transitions[],
 * card_transitions[] and station_transitions[] are made of these. */
struct transition {
    const char *from;         /* "" for a record not stored yet */
    const char *event;        /* what happens: "cancel", "claim", "courier.delivered" ... */
    const char *to;           /* the state after */
    const char *audit_action; /* the audit log's action for it; NULL when the
                               * same change is audited by another aggregate */
};

/* The row of table (n rows) for (from, event), or NULL when not allowed. */
const struct transition *transition_find(const struct transition *table, size_t n, const char *from,
                                         const char *event);

/* Appends to the audit log. Any of request_no, card_serial, station_id and
 * detail_json may be NULL. Returns 0 or a DB_* code. */
int audit_append(struct db *db, const char *actor, const char *action, const char *request_no,
                 const char *card_serial, const char *station_id, const char *detail_json);

/* Many entries in one statement: entries is an array of {"actor",
 * "action", "request_no", "card_serial", "station_id", "detail" (JSON
 * text)}, any but the first two null, appended in its order. */
int audit_append_many(struct db *db, json_t *entries);

/* The same, naming what ch names. */
int audit_change(struct db *db, const char *action, const struct change *ch);

#endif
