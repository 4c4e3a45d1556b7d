/* journal.c — status changes, events, notifications and the audit log. */
#include "journal.h"
#include "callbacks.h"
#include "db.h"
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* For a card sent to or waiting at a branch: the branch and the last day
 * to collect, in the notification's texts. */
static int branch_text(struct db *db, const char *request_id, const char *status, char *ar,
                       size_t arlen, char *en, size_t enlen)
{
    if (strcmp(status, "redirected_to_branch") != 0 && strcmp(status, "ready_for_collection") != 0)
        return 0;
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT b.name_ar, b.name_en, to_char(p.collect_by, 'YYYY-MM-DD')"
                      " FROM parcels p JOIN branches b ON b.branch_id = p.branch_id"
                      " WHERE p.request_id = $1::bigint",
                      request_id);
    if (rc)
        return rc;
    if (db_rows(res) == 1) {
        struct status_branch b = { db_get(res, 0, 0), db_get(res, 0, 1),
                                   db_is_null(res, 0, 2) ? NULL : db_get(res, 0, 2) };
        status_branch_text(status, &b, ar, arlen, en, enlen);
    }
    db_res_free(res);
    return 0;
}

int journal_status(struct db *db, const char *request_id, const char *status, const char *actor,
                   const char *at, const char *detail_json)
{
    struct db_res *res = NULL;
    char ar[512], en[512];
    if (!status_find(status))
        return -EINVAL;
    int rc = db_query(db, &res,
                      "UPDATE requests SET status = $2, updated_at = now() WHERE id = $1::bigint"
                      " RETURNING request_no, kind, phone",
                      request_id, status);
    if (rc)
        return rc;
    if (db_rows(res) != 1) {
        db_res_free(res);
        return -ENOENT;
    }
    status_notification_text(status, db_get(res, 0, 0), db_get(res, 0, 1), ar, sizeof(ar), en,
                             sizeof(en));
    rc = branch_text(db, request_id, status, ar, sizeof(ar), en, sizeof(en));
    if (rc) {
        db_res_free(res);
        return rc;
    }
    rc = db_query(db, NULL,
                  "INSERT INTO request_events (request_id, at, status, actor, detail)"
                  " VALUES ($1::bigint, coalesce($2::timestamptz, now()), $3, $4,"
                  " coalesce($5::jsonb, '{}'::jsonb))",
                  request_id, at, status, actor, detail_json);
    if (!rc)
        rc = db_query(db, NULL,
                      "INSERT INTO notifications (request_id, status, phone, text_ar, text_en)"
                      " VALUES ($1::bigint, $2, $3, $4, $5)",
                      request_id, status, db_get(res, 0, 2), ar, en);
    if (!rc)
        rc = callbacks_enqueue(db, request_id, status, at);
    db_res_free(res);
    return rc;
}

int journal_event(struct db *db, const char *request_id, const char *actor, const char *at,
                  const char *detail_json)
{
    return db_query(db, NULL,
                    "INSERT INTO request_events (request_id, at, status, actor, detail)"
                    " VALUES ($1::bigint, coalesce($2::timestamptz, now()), NULL, $3,"
                    " coalesce($4::jsonb, '{}'::jsonb))",
                    request_id, at, actor, detail_json);
}

int audit(struct db *db, const char *actor, const char *action, const char *request_no,
          const char *card_serial, const char *station_id, const char *detail_json)
{
    return db_query(
        db, NULL,
        "INSERT INTO audit_log (actor, action, request_no, card_serial, station_id, detail)"
        " VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb, '{}'::jsonb))",
        actor, action, request_no, card_serial, station_id, detail_json);
}
