/* audit.c — the append-only audit log (a trigger refuses updates and deletes). */
#include "audit.h"
#include "db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct transition *transition_find(const struct transition *table, size_t n, const char *from,
                                         const char *event)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].from, from) == 0 && strcmp(table[i].event, event) == 0)
            return &table[i];
    return NULL;
}

static const struct db_stmt audit_append_stmt = {
    "audit_append_stmt",
    "INSERT INTO audit_log (actor, action, request_no, card_serial, station_id, detail)"
    " VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb, '{}'::jsonb))",
    6,
};

int audit_append(struct db *db, const char *actor, const char *action, const char *request_no,
                 const char *card_serial, const char *station_id, const char *detail_json)
{
    return db_query_stmt(db, NULL, &audit_append_stmt, actor, action, request_no, card_serial,
                         station_id, detail_json);
}

static const struct db_stmt audit_append_many_stmt = {
    "audit_append_many",
    "INSERT INTO audit_log (actor, action, request_no, card_serial, station_id, detail)"
    " SELECT actor, action, request_no, card_serial, station_id,"
    " coalesce(detail::jsonb, '{}'::jsonb) FROM ROWS FROM (jsonb_to_recordset($1::jsonb)"
    "  AS (actor text, action text, request_no text, card_serial text, station_id text,"
    "  detail text)) WITH ORDINALITY"
    " AS x(actor, action, request_no, card_serial, station_id, detail, ord) ORDER BY ord",
    1,
};

int audit_append_many(struct db *db, json_t *entries)
{
    if (json_array_size(entries) == 0)
        return 0;
    char *text = json_dumps(entries, JSON_COMPACT);
    int rc = text ? db_query_stmt(db, NULL, &audit_append_many_stmt, text) : -ENOMEM;
    free(text);
    return rc;
}

int audit_change(struct db *db, const char *action, const struct change *ch)
{
    return audit_append(db, ch->actor, action, ch->request_no, ch->card_serial, ch->station_id,
                        ch->detail_json);
}
