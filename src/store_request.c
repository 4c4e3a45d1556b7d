/* store_request.c — the request aggregate (see store_request.h). */
#include "store_request.h"
#include "calendar.h"
#include "callbacks.h"
#include "db.h"
#include "log.h"
#include "production.h"
#include "refdata.h"
#include "status.h"
#include "store_card.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every move a request's status may make. The courier's moves follow the
 * parcel's events (src/parcel.c): forward only, a failed attempt may be
 * followed by the next one, and `delivered` ends the story from any of
 * them. */
const struct transition request_transitions[] = {
    { "", "receive", "queued", "request.received" },
    { "queued", "start_production", "in_production", "request.in_production" },
    { "in_production", "produce", "produced", "request.produced" },
    { "queued", "cancel", "cancelled", "request.cancelled" },
    { "in_production", "cancel", "cancelled", "request.cancelled" },
    { "produced", "cancel", "cancelled", "request.cancelled" },
    { "produced", "dispatch", "dispatched", "card.dispatched" },
    { "dispatched", "courier.in_transit", "in_transit", "parcel.in_transit" },
    { "dispatched", "courier.out_for_delivery", "out_for_delivery", "parcel.out_for_delivery" },
    { "in_transit", "courier.out_for_delivery", "out_for_delivery", "parcel.out_for_delivery" },
    { "delivery_failed", "courier.out_for_delivery", "out_for_delivery",
      "parcel.out_for_delivery" },
    { "dispatched", "courier.delivery_failed", "delivery_failed", "parcel.delivery_failed" },
    { "in_transit", "courier.delivery_failed", "delivery_failed", "parcel.delivery_failed" },
    { "out_for_delivery", "courier.delivery_failed", "delivery_failed", "parcel.delivery_failed" },
    { "dispatched", "courier.redirected_to_branch", "redirected_to_branch", "parcel.redirected" },
    { "in_transit", "courier.redirected_to_branch", "redirected_to_branch", "parcel.redirected" },
    { "out_for_delivery", "courier.redirected_to_branch", "redirected_to_branch",
      "parcel.redirected" },
    { "delivery_failed", "courier.redirected_to_branch", "redirected_to_branch",
      "parcel.redirected" },
    { "dispatched", "courier.ready_for_collection", "ready_for_collection", "parcel.at_branch" },
    { "in_transit", "courier.ready_for_collection", "ready_for_collection", "parcel.at_branch" },
    { "out_for_delivery", "courier.ready_for_collection", "ready_for_collection",
      "parcel.at_branch" },
    { "delivery_failed", "courier.ready_for_collection", "ready_for_collection",
      "parcel.at_branch" },
    { "redirected_to_branch", "courier.ready_for_collection", "ready_for_collection",
      "parcel.at_branch" },
    { "dispatched", "courier.delivered", "delivered", "parcel.delivered" },
    { "in_transit", "courier.delivered", "delivered", "parcel.delivered" },
    { "out_for_delivery", "courier.delivered", "delivered", "parcel.delivered" },
    { "delivery_failed", "courier.delivered", "delivered", "parcel.delivered" },
    { "redirected_to_branch", "courier.delivered", "delivered", "parcel.delivered" },
    { "ready_for_collection", "courier.delivered", "delivered", "parcel.delivered" },
    { "ready_for_collection", "hand_over", "collected", "card.handed_over" },
};
const size_t request_ntransitions = sizeof(request_transitions) / sizeof(request_transitions[0]);

const struct transition *request_transition_find(const char *from, const char *event)
{
    return transition_find(request_transitions, request_ntransitions, from, event);
}

const char *request_courier_event(const char *status)
{
    for (size_t i = 0; i < request_ntransitions; i++)
        if (strncmp(request_transitions[i].event, "courier.", 8) == 0 &&
            strcmp(request_transitions[i].to, status) == 0)
            return request_transitions[i].event;
    return NULL;
}

static const struct db_stmt request_branch_text_stmt = {
    "request_branch_text_stmt",
    "SELECT b.name_ar, b.name_en, to_char(p.collect_by, 'YYYY-MM-DD')"
    " FROM parcels p JOIN branches b ON b.branch_id = p.branch_id"
    " WHERE p.request_id = $1::bigint",
    1,
};

/* For a card sent to or waiting at a branch: the branch and the last day
 * to collect, in the notification's texts. */
static int branch_text(struct db *db, const char *request_id, const char *status, char *ar,
                       size_t arlen, char *en, size_t enlen)
{
    if (strcmp(status, "redirected_to_branch") != 0 && strcmp(status, "ready_for_collection") != 0)
        return 0;
    struct db_res *res = NULL;
    int rc = db_query_stmt(db, &res, &request_branch_text_stmt, request_id);
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

/* The moves' statuses, their events and the holder's notifications, for
 * any number of moves, one statement ($1: [{"id", "status", "at", "actor",
 * "detail", "phone", "ar", "en"}], at most one per request). */
static const struct db_stmt request_moves_stmt = {
    "request_moves",
    "WITH x AS (SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (id bigint,"
    "  status text, at timestamptz, actor text, detail text, phone text, ar text, en text))"
    "  WITH ORDINALITY AS x(id, status, at, actor, detail, phone, ar, en, ord)),"
    " u AS (UPDATE requests r SET status = x.status, updated_at = now() FROM x"
    "  WHERE r.id = x.id),"
    " e AS (INSERT INTO request_events (request_id, at, status, actor, detail)"
    "  SELECT id, coalesce(at, now()), status, actor, coalesce(detail::jsonb, '{}'::jsonb)"
    "  FROM x ORDER BY ord)"
    " INSERT INTO notifications (request_id, status, phone, text_ar, text_en)"
    " SELECT id, status, phone, ar, en FROM x ORDER BY ord",
    1,
};

/* Writes moves the table allows (ts[i] is moves[i]'s row): the statuses,
 * their events, the holders' notifications, the approval platform's
 * callbacks (callbacks.h) and the audit entries, a statement each
 * whatever their number. The one place a status is written. */
static int record_changes(struct db *db, const struct request_move *moves,
                          const struct transition *const *ts, size_t n)
{
    json_t *rows = json_array(), *calls = json_array(), *audits = json_array();
    int rc = rows && calls && audits ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        const struct request_row *row = &moves[i].row;
        const struct change *ch = &moves[i].ch;
        const char *to = ts[i]->to;
        char ar[512], en[512];
        status_notification_text(to, row->request_no, row->kind, ar, sizeof(ar), en, sizeof(en));
        rc = branch_text(db, row->id, to, ar, sizeof(ar), en, sizeof(en));
        if (rc)
            break;
        json_array_append_new(rows,
                              json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s, s:s, s:s}", "id", row->id,
                                        "status", to, "at", ch->at, "actor", ch->actor, "detail",
                                        ch->detail_json, "phone", row->phone, "ar", ar, "en", en));
        json_array_append_new(calls, json_pack("{s:s, s:s, s:s?}", "request_id", row->id, "status",
                                               to, "at", ch->at));
        json_array_append_new(audits,
                              json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?}", "actor", ch->actor,
                                        "action", ts[i]->audit_action, "request_no",
                                        row->request_no, "card_serial", ch->card_serial,
                                        "station_id", ch->station_id, "detail", ch->detail_json));
    }
    if (!rc &&
        (json_array_size(rows) != n || json_array_size(calls) != n || json_array_size(audits) != n))
        rc = -ENOMEM;
    char *text = rc ? NULL : json_dumps(rows, JSON_COMPACT);
    if (!rc)
        rc = text ? db_query_stmt(db, NULL, &request_moves_stmt, text) : -ENOMEM;
    free(text);
    if (!rc)
        rc = callbacks_enqueue_many(db, calls);
    if (!rc)
        rc = audit_append_many(db, audits);
    json_decref(rows);
    json_decref(calls);
    json_decref(audits);
    return rc;
}

/* Writes one move the table allows (see record_changes). */
static int record_change(struct db *db, const char *request_id, const char *request_no,
                         const char *kind, const char *phone, const struct transition *t,
                         const struct change *ch)
{
    const struct request_move move = { { request_id, "", request_no, kind, phone }, "", *ch };
    return record_changes(db, &move, &t, 1);
}

int request_apply_locked(struct db *db, const struct request_row *row, const char *event,
                         const struct change *ch)
{
    const struct transition *t = request_transition_find(row->status, event);
    if (!t)
        return -EPERM;
    return record_change(db, row->id, row->request_no, row->kind, row->phone, t, ch);
}

int request_apply_many(struct db *db, const struct request_move *moves, size_t n)
{
    const struct transition **ts = calloc(n ? n : 1, sizeof(*ts));
    if (!ts)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        ts[i] = request_transition_find(moves[i].row.status, moves[i].event);
        if (!ts[i])
            rc = -EPERM;
        for (size_t j = 0; !rc && j < i; j++)
            if (strcmp(moves[j].row.id, moves[i].row.id) == 0)
                rc = -EINVAL;
    }
    if (!rc && n)
        rc = record_changes(db, moves, ts, n);
    free(ts);
    return rc;
}

static const struct db_stmt request_lock_stmt = {
    "request_lock_stmt",
    "SELECT status, request_no, kind, phone FROM requests"
    " WHERE id = $1::bigint FOR UPDATE",
    1,
};

int request_apply(struct db *db, const char *request_id, const char *event, const struct change *ch)
{
    struct db_res *res = NULL;
    int rc = db_query_stmt(db, &res, &request_lock_stmt, request_id);
    if (rc)
        return rc;
    if (db_rows(res) != 1) {
        rc = -ENOENT;
    } else {
        const struct request_row row = { request_id, db_get(res, 0, 0), db_get(res, 0, 1),
                                         db_get(res, 0, 2), db_get(res, 0, 3) };
        rc = request_apply_locked(db, &row, event, ch);
    }
    db_res_free(res);
    return rc;
}

static const struct db_stmt request_note_stmt = {
    "request_note_stmt",
    "INSERT INTO request_events (request_id, at, status, actor, detail)"
    " VALUES ($1::bigint, coalesce($2::timestamptz, now()), NULL, $3,"
    " coalesce($4::jsonb, '{}'::jsonb))",
    4,
};

int request_note(struct db *db, const char *request_id, const struct change *ch)
{
    return db_query_stmt(db, NULL, &request_note_stmt, request_id, ch->at, ch->actor,
                         ch->detail_json);
}

static const struct db_stmt request_notes_stmt = {
    "request_notes_stmt",
    "INSERT INTO request_events (request_id, at, status, actor, detail)"
    " SELECT x.request_id, x.at, NULL, $1, x.detail"
    " FROM ROWS FROM (jsonb_to_recordset($2::jsonb)"
    "  AS (request_id bigint, at timestamptz, detail jsonb))"
    " WITH ORDINALITY AS x(request_id, at, detail, n) ORDER BY x.n",
    2,
};

int request_notes(struct db *db, const char *actor, json_t *notes)
{
    if (json_array_size(notes) == 0)
        return 0;
    char *text = json_dumps(notes, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    int rc = db_query_stmt(db, NULL, &request_notes_stmt, actor, text);
    free(text);
    return rc;
}

/* ---- intake ---- */

static const char *opt_string(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static char *opt_number(json_t *obj, const char *key, char *buf, size_t len)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return NULL;
    snprintf(buf, len, "%.7f", json_number_value(v));
    return buf;
}

/* The request's own row; id receives its id. -EEXIST when the number is known. */
static int insert_request(struct db *db, const struct request_intake *in, char id[24])
{
    struct db_res *res = NULL;
    json_t *body = in->body, *h = json_object_get(in->body, "holder");
    int rc =
        db_query(db, &res,
                 "INSERT INTO requests (request_no, kind, reason, national_id, name_ar, name_en,"
                 " birth_date, sex, nationality, phone, body_sha256, body, terms_accepted_at,"
                 " approved_at, estimated_earliest, estimated_latest)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7::date, $8, $9, $10, $11::bytea, $12::jsonb,"
                 " $13::timestamptz, $14::timestamptz, $15::date, $16::date)"
                 " ON CONFLICT (request_no) DO NOTHING RETURNING id",
                 opt_string(body, "request_no"), opt_string(body, "kind"),
                 opt_string(body, "reason"), opt_string(body, "national_id"),
                 opt_string(h, "name_ar"), opt_string(h, "name_en"), opt_string(h, "birth_date"),
                 opt_string(h, "sex"), opt_string(h, "nationality"), opt_string(body, "phone"),
                 in->body_hash, in->canonical, opt_string(body, "terms_accepted_at"),
                 opt_string(body, "approved_at"), in->earliest, in->latest);
    if (rc == DB_ECONFLICT && strcmp(db_error_constraint(db), "requests_one_active") == 0)
        return -EBUSY;
    if (rc)
        return rc;
    if (db_rows(res) == 0)
        rc = -EEXIST;
    else
        snprintf(id, 24, "%s", db_get(res, 0, 0));
    db_res_free(res);
    return rc;
}

static int insert_address_and_documents(struct db *db, const char *id, json_t *body)
{
    json_t *addr = json_object_get(body, "address");
    char lat[32], lon[32];
    int rc = db_query(db, NULL,
                      "INSERT INTO request_addresses (request_id, short_address, building_no,"
                      " street, district, city, postal_code, additional_no, lat, lon)"
                      " VALUES ($1::bigint, $2, $3, $4, $5, $6, $7, $8, $9::float8, $10::float8)",
                      id, opt_string(addr, "short_address"), opt_string(addr, "building_no"),
                      opt_string(addr, "street"), opt_string(addr, "district"),
                      opt_string(addr, "city"), opt_string(addr, "postal_code"),
                      opt_string(addr, "additional_no"), opt_number(addr, "lat", lat, sizeof(lat)),
                      opt_number(addr, "lon", lon, sizeof(lon)));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(body, "documents"), i, d)
    {
        if (rc)
            break;
        rc = db_query(db, NULL,
                      "INSERT INTO request_documents (request_id, doc_type, sha256, uri)"
                      " VALUES ($1::bigint, $2, $3, $4)",
                      id, opt_string(d, "type"), opt_string(d, "sha256"), opt_string(d, "uri"));
    }
    return rc;
}

int request_create(struct db *db, const struct request_intake *in, const char *actor)
{
    char id[24];
    const char *request_no = opt_string(in->body, "request_no");
    const struct change ch = { .actor = actor };
    int rc = db_begin(db);
    if (!rc)
        rc = insert_request(db, in, id);
    if (!rc)
        rc = insert_address_and_documents(db, id, in->body);
    if (!rc)
        rc = record_change(db, id, request_no, opt_string(in->body, "kind"),
                           opt_string(in->body, "phone"), request_transition_find("", "receive"),
                           &ch);
    if (!rc)
        rc = db_commit(db);
    if (rc)
        db_rollback(db);
    return rc;
}

int request_record(struct db *db, const char *request_no, const char *body_hash, bool *same,
                   json_t **record)
{
    struct db_res *res = NULL;
    *record = NULL;
    int rc = db_query(db, &res,
                      "SELECT request_record(id)::text, body_sha256 = $2::bytea FROM requests"
                      " WHERE request_no = $1",
                      request_no, body_hash);
    if (rc)
        return rc;
    if (db_rows(res) != 1) {
        rc = -ENOENT;
    } else {
        *record = json_loads(db_get(res, 0, 0), 0, NULL);
        if (!*record)
            rc = -ENOMEM;
        if (same)
            *same = body_hash && strcmp(db_get(res, 0, 1), "t") == 0;
    }
    db_res_free(res);
    return rc;
}

int request_cancel(struct db *db, const char *request_no, const char *actor,
                   const char *detail_json, char status[32])
{
    struct db_res *res = NULL;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &res, "SELECT id, status FROM requests WHERE request_no = $1 FOR UPDATE",
                      request_no);
    if (rc)
        goto out;
    if (db_rows(res) == 0) {
        rc = -ENOENT;
        goto out;
    }
    const char *id = db_get(res, 0, 0);
    snprintf(status, 32, "%s", db_get(res, 0, 1));
    if (strcmp(status, "cancelled") == 0) {
        rc = -EALREADY;
        goto out;
    }
    if (!request_transition_find(status, "cancel")) {
        rc = -EPERM;
        goto out;
    }
    /* A card already produced for it is voided: it can never be issued. */
    rc = card_void_for_request(db, id, request_no, actor);
    const struct change ch = { .actor = actor, .detail_json = detail_json };
    if (!rc)
        rc = request_apply(db, id, "cancel", &ch);
    if (!rc)
        rc = db_commit(db);
out:
    db_rollback(db);
    db_res_free(res);
    return rc;
}

/* ---- tracking ---- */

/* The request, its address, parcel and branch, and its timeline: the
 * request's status changes (those that a courier event made are left out:
 * the events themselves stand for them) and its parcel's courier events.
 * An unknown request number reads a stand-in the same way (a request
 * picked by the number's hash, so that it is no more often in the cache
 * than a real one), whose holder's ID comes back NULL, so that a miss
 * costs the database what a match costs. */
static const struct db_stmt tracking_stmt = {
    "request_tracking",
    "SELECT r.id, r.request_no, r.kind, r.reason, r.status, rfc3339(r.updated_at),"
    " to_char(r.estimated_earliest, 'YYYY-MM-DD'), to_char(r.estimated_latest, 'YYYY-MM-DD'),"
    " a.city, a.district,"
    " coalesce(p.failed_attempts, 0) + CASE WHEN r.status IN ('out_for_delivery','delivered')"
    "  THEN 1 ELSE 0 END, to_char(p.collect_by, 'YYYY-MM-DD'),"
    " b.branch_id, b.name_en, b.name_ar, b.city, b.lat::text, b.lon::text,"
    " CASE WHEN r.request_no = $1::text THEN r.national_id END,"
    " t.source, t.at_us, rfc3339(t.at), t.status, t.event_id, t.ord"
    " FROM (SELECT coalesce((SELECT id FROM requests WHERE request_no = $1::text),"
    "  (SELECT id FROM requests WHERE id >= (SELECT abs(hashtext($1::text)::bigint)"
    "   % (max(id) + 1) FROM requests) ORDER BY id LIMIT 1),"
    "  (SELECT min(id) FROM requests)) AS id) q"
    " LEFT JOIN requests r ON r.id = q.id"
    " LEFT JOIN request_addresses a ON a.request_id = r.id"
    " LEFT JOIN parcels p ON p.request_id = r.id"
    " LEFT JOIN branches b ON b.branch_id = p.branch_id"
    " LEFT JOIN LATERAL ("
    "  SELECT 0 AS source, (extract(epoch FROM e.at) * 1000000)::bigint AS at_us, e.at,"
    "   e.status, NULL::text AS event_id, e.id AS ord"
    "  FROM request_events e WHERE e.request_id = r.id AND e.status IS NOT NULL"
    "   AND NOT (e.detail ? 'event_id' AND e.detail ? 'code')"
    "  UNION ALL"
    "  SELECT 1, extract(epoch FROM ce.at)::bigint * 1000000, ce.at, ce.code, ce.event_id,"
    "   0::bigint"
    "  FROM courier_events ce WHERE ce.parcel_id = p.id) t ON true",
    1,
};

int request_tracking(struct db *db, const char *request_no, const char *national_id,
                     struct db_res **rows)
{
    *rows = NULL;
    int rc = db_query_stmt(db, rows, &tracking_stmt, request_no);
    if (rc)
        return rc;
    const char *stored = db_get(*rows, 0, TRACK_COL_HOLDER);
    const char *compare = stored ? stored : "0000000000";
    bool match =
        strlen(national_id) == 10 && CRYPTO_memcmp(compare, national_id, 10) == 0 && stored != NULL;
    return match ? 0 : -ENOENT;
}

/* ---- the promise at risk ---- */

/* Not dispatched by the cutoff, or with the courier past the latest date. */
#define AT_RISK_WHERE                                                                   \
    " FROM requests r WHERE (r.status IN ('queued','in_production','produced')"         \
    "  AND r.estimated_latest <= $1::date)"                                             \
    " OR (r.status IN ('dispatched','in_transit','out_for_delivery','delivery_failed')" \
    "  AND r.estimated_latest < $2::date)"

static int at_risk_dates(struct db *db, time_t now, char cutoff[11], char today[11])
{
    long holidays[64];
    long day = riyadh_day(now);
    int nh = refdata_holidays_after(db, day, holidays, 64);
    if (nh < 0)
        return nh;
    date_format(add_working_days(day, 2, holidays, (size_t)nh), cutoff);
    date_format(day, today);
    return 0;
}

int requests_at_risk(struct db *db, time_t now, char cutoff[11], struct db_res **res)
{
    char today[11];
    int rc = at_risk_dates(db, now, cutoff, today);
    if (rc)
        return rc;
    return db_query(
        db, res,
        "SELECT r.request_no, r.kind, r.status,"
        " to_char(r.estimated_earliest, 'YYYY-MM-DD'),"
        " to_char(r.estimated_latest, 'YYYY-MM-DD'), r.estimated_latest < $2::date" AT_RISK_WHERE
        " ORDER BY r.estimated_latest, r.id LIMIT 500",
        cutoff, today);
}

int requests_at_risk_count(struct db *db, time_t now, long *count)
{
    char cutoff[11], today[11];
    struct db_res *res = NULL;
    int rc = at_risk_dates(db, now, cutoff, today);
    if (!rc)
        rc = db_query(db, &res, "SELECT count(*)" AT_RISK_WHERE, cutoff, today);
    if (rc)
        return rc;
    *count = db_get_long(res, 0, 0, 0);
    db_res_free(res);
    return 0;
}

/* ---- production ---- */

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

int request_take_next(struct db *db, struct job *job, bool *queued)
{
    struct db_res *req = NULL;
    /* SKIP LOCKED lets every station, on every instance, take a different
     * request; production_station in the WHERE clause is re-checked on the
     * locked row, so a request claimed a moment ago is never taken twice. */
    int rc = db_exec(
        db, &req,
        "SELECT id, request_no, kind, national_id, name_ar, name_en,"
        " to_char(birth_date, 'YYYY-MM-DD'), sex, nationality,"
        " to_char((now() AT TIME ZONE 'Asia/Riyadh')::date, 'YYYY-MM-DD'),"
        " to_char((now() AT TIME ZONE 'Asia/Riyadh')::date + interval '10 years', 'YYYY-MM-DD'),"
        " status FROM requests WHERE status IN ('queued','in_production')"
        " AND hold_reason IS NULL AND production_station IS NULL"
        " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
        0, NULL);
    if (rc)
        return rc;
    if (db_rows(req) == 0) {
        db_res_free(req);
        return -ENOENT;
    }
    char *fields[] = { job->request_id,  job->request_no, job->kind,       job->national_id,
                       job->name_ar,     job->name_en,    job->birth_date, job->sex,
                       job->nationality, job->issue_date, job->expiry_date };
    size_t sizes[] = { sizeof(job->request_id),  sizeof(job->request_no), sizeof(job->kind),
                       sizeof(job->national_id), sizeof(job->name_ar),    sizeof(job->name_en),
                       sizeof(job->birth_date),  sizeof(job->sex),        sizeof(job->nationality),
                       sizeof(job->issue_date),  sizeof(job->expiry_date) };
    for (int k = 0; k < 11; k++)
        copy(fields[k], sizes[k], db_get(req, 0, k));
    *queued = strcmp(db_get(req, 0, 11), "queued") == 0;
    db_res_free(req);
    return 0;
}

int request_set_station(struct db *db, const char *request_id, const char *station_id)
{
    return db_query(
        db, NULL,
        "UPDATE requests SET production_station = $2, updated_at = now() WHERE id = $1::bigint",
        request_id, station_id);
}

int request_requeue(struct db *db, const char *request_id, bool spoiled, int spoil_limit)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", spoil_limit > 0 ? spoil_limit : 0);
    /* Held for an operator once too many cards were spoiled for it, with
     * the reasons; a spoil_limit of 0 never holds. */
    return db_query(
        db, NULL,
        "UPDATE requests SET production_station = NULL,"
        " spoiled_cards = spoiled_cards + $2::int,"
        " hold_reason = CASE WHEN $3::int > 0 AND spoiled_cards + $2::int >= $3::int THEN"
        "   (SELECT 'held after ' || (spoiled_cards + $2::int) || ' spoiled cards: ' ||"
        "     string_agg(p.reason, '; ' ORDER BY p.id)"
        "    FROM production_attempts p WHERE p.request_id = requests.id"
        "    AND p.outcome IN ('spoiled','unknown'))"
        "   ELSE hold_reason END,"
        " updated_at = now() WHERE id = $1::bigint",
        request_id, spoiled ? "1" : "0", limit);
}

int request_hold(struct db *db, const char *request_id, const char *reason)
{
    return db_query(db, NULL,
                    "UPDATE requests SET production_station = NULL, hold_reason = $2,"
                    " updated_at = now() WHERE id = $1::bigint",
                    request_id, reason);
}

int request_lock_status(struct db *db, const char *request_id, char status[32])
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res, "SELECT status FROM requests WHERE id = $1::bigint FOR UPDATE",
                      request_id);
    if (rc)
        return rc;
    if (db_rows(res) != 1)
        rc = -ENOENT;
    else
        snprintf(status, 32, "%s", db_get(res, 0, 0));
    db_res_free(res);
    return rc;
}

int production_queue_fetch(struct db *db, long after, long limit, bool held_only,
                           struct db_res **res)
{
    char lim[24], cur[24];
    snprintf(lim, sizeof(lim), "%ld", limit);
    snprintf(cur, sizeof(cur), "%ld", after);
    return db_query(
        db, res,
        "SELECT r.id, r.request_no, r.kind, r.reason, rfc3339(r.approved_at),"
        " rfc3339(r.created_at), r.spoiled_cards, r.hold_reason, r.production_station, r.status"
        " FROM requests r WHERE r.status IN ('queued','in_production')"
        " AND r.id > $1::bigint AND (NOT $3::boolean OR r.hold_reason IS NOT NULL)"
        " ORDER BY r.id LIMIT $2::int",
        cur, lim, held_only ? "true" : "false");
}

int request_release_hold(struct db *db, const char *request_no, const char *actor, char *reason,
                         size_t reason_len)
{
    struct db_res *res = NULL;
    char *detail = NULL;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &res,
                      "SELECT id, hold_reason, spoiled_cards, status IN ('queued','in_production')"
                      " FROM requests WHERE request_no = $1 FOR UPDATE",
                      request_no);
    if (rc)
        goto out;
    if (db_rows(res) == 0) {
        rc = -ENOENT;
        goto out;
    }
    if (db_is_null(res, 0, 1) || strcmp(db_get(res, 0, 3), "t") != 0) {
        rc = -EALREADY;
        goto out;
    }
    if (reason)
        copy(reason, reason_len, db_get(res, 0, 1));
    json_t *dj = json_pack("{s:s, s:I}", "hold_reason", db_get(res, 0, 1), "spoiled_cards",
                           (json_int_t)db_get_long(res, 0, 2, 0));
    detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);
    if (!detail) {
        rc = -ENOMEM;
        goto out;
    }
    rc =
        db_query(db, NULL,
                 "UPDATE requests SET hold_reason = NULL, updated_at = now() WHERE id = $1::bigint",
                 db_get(res, 0, 0));
    if (!rc)
        rc = audit_append(db, actor, "request.released", request_no, NULL, NULL, detail);
    if (!rc)
        rc = db_commit(db);
out:
    db_rollback(db);
    db_res_free(res);
    free(detail);
    return rc;
}
