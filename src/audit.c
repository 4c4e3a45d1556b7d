/* audit.c — the append-only audit log (a trigger refuses updates and deletes). */
#include "audit.h"
#include "db.h"

#include <string.h>

const struct transition *transition_find(const struct transition *table, size_t n, const char *from,
                                         const char *event)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].from, from) == 0 && strcmp(table[i].event, event) == 0)
            return &table[i];
    return NULL;
}

int audit_append(struct db *db, const char *actor, const char *action, const char *request_no,
                 const char *card_serial, const char *station_id, const char *detail_json)
{
    return db_query(
        db, NULL,
        "INSERT INTO audit_log (actor, action, request_no, card_serial, station_id, detail)"
        " VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb, '{}'::jsonb))",
        actor, action, request_no, card_serial, station_id, detail_json);
}

int audit_change(struct db *db, const char *action, const struct change *ch)
{
    return audit_append(db, ch->actor, action, ch->request_no, ch->card_serial, ch->station_id,
                        ch->detail_json);
}
