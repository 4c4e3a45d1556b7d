/* production.c — claims, outcomes and recovery of production jobs. */
#include "production.h"
#include "db.h"
#include "face.h"
#include "journal.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACTOR_PREFIX "station:"

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

int production_claim(struct db *db, const char *station_id, const char *instance, struct job *job)
{
    struct db_res *req = NULL, *card = NULL, *att = NULL;
    memset(job, 0, sizeof(*job));
    int rc = db_begin(db);
    /* SKIP LOCKED lets every station, on every instance, take a different
     * request; production_station in the WHERE clause is re-checked on the
     * locked row, so a request claimed a moment ago is never taken twice. */
    if (!rc)
        rc = db_exec(
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
        goto out;
    if (db_rows(req) == 0) {
        rc = -ENOENT;
        goto out;
    }
    rc =
        db_exec(db, &card,
                "SELECT c.serial, b.batch_no FROM cards c JOIN stock_batches b ON b.id = c.batch_id"
                " WHERE c.state = 'available' ORDER BY c.batch_id, c.serial LIMIT 1"
                " FOR UPDATE OF c SKIP LOCKED",
                0, NULL);
    if (rc)
        goto out;
    if (db_rows(card) == 0) {
        rc = -ENOSPC;
        goto out;
    }
    copy(job->request_id, sizeof(job->request_id), db_get(req, 0, 0));
    copy(job->request_no, sizeof(job->request_no), db_get(req, 0, 1));
    copy(job->kind, sizeof(job->kind), db_get(req, 0, 2));
    copy(job->national_id, sizeof(job->national_id), db_get(req, 0, 3));
    copy(job->name_ar, sizeof(job->name_ar), db_get(req, 0, 4));
    copy(job->name_en, sizeof(job->name_en), db_get(req, 0, 5));
    copy(job->birth_date, sizeof(job->birth_date), db_get(req, 0, 6));
    copy(job->sex, sizeof(job->sex), db_get(req, 0, 7));
    copy(job->nationality, sizeof(job->nationality), db_get(req, 0, 8));
    copy(job->issue_date, sizeof(job->issue_date), db_get(req, 0, 9));
    copy(job->expiry_date, sizeof(job->expiry_date), db_get(req, 0, 10));
    copy(job->card_serial, sizeof(job->card_serial), db_get(card, 0, 0));
    copy(job->batch_no, sizeof(job->batch_no), db_get(card, 0, 1));
    copy(job->station_id, sizeof(job->station_id), station_id);

    rc = db_query(
        db, NULL,
        "UPDATE requests SET production_station = $2, updated_at = now() WHERE id = $1::bigint",
        job->request_id, station_id);
    if (!rc)
        rc = db_query(db, NULL,
                      "UPDATE cards SET state = 'in_production', request_id = $2::bigint,"
                      " station_id = $3, updated_at = now() WHERE serial = $1",
                      job->card_serial, job->request_id, station_id);
    if (!rc)
        rc = db_query(
            db, &att,
            "INSERT INTO production_attempts (request_id, card_serial, station_id, instance)"
            " VALUES ($1::bigint, $2, $3, $4) RETURNING id",
            job->request_id, job->card_serial, station_id, instance);
    if (rc)
        goto out;
    copy(job->attempt_id, sizeof(job->attempt_id), db_get(att, 0, 0));
    /* The citizen sees "in production" once, at the first card. */
    if (strcmp(db_get(req, 0, 11), "queued") == 0) {
        char actor[64];
        snprintf(actor, sizeof(actor), ACTOR_PREFIX "%s", station_id);
        rc = journal_status(db, job->request_id, "in_production", actor, NULL, NULL);
    }
    if (!rc)
        rc = production_station_state(db, station_id, "busy", NULL);
    if (!rc)
        rc = production_step(db, job, "job.claimed", NULL);
    if (!rc)
        rc = db_commit(db);
out:
    if (rc)
        db_rollback(db);
    db_res_free(req);
    db_res_free(card);
    db_res_free(att);
    return rc;
}

int production_step(struct db *db, const struct job *job, const char *action,
                    const char *detail_json)
{
    char actor[64];
    snprintf(actor, sizeof(actor), ACTOR_PREFIX "%s", job->station_id);
    return audit(db, actor, action, job->request_no, job->card_serial, job->station_id,
                 detail_json);
}

static const char *outcome_name(enum job_outcome o)
{
    switch (o) {
    case JOB_PRODUCED:
        return "produced";
    case JOB_SPOILED:
        return "spoiled";
    case JOB_NOT_TAKEN:
        return "cancelled";
    case JOB_UNKNOWN:
        return "unknown";
    }
    return "unknown";
}

int production_finish(struct db *db, const struct job *job, const struct job_result *result,
                      int spoil_limit)
{
    struct db_res *req = NULL;
    char actor[64], reason[256], limit[16];
    snprintf(actor, sizeof(actor), ACTOR_PREFIX "%s", job->station_id);
    snprintf(limit, sizeof(limit), "%d", spoil_limit);
    json_t *dj = json_pack("{s:s, s:s, s:s}", "outcome", outcome_name(result->outcome), "step",
                           result->step, "reason", result->reason);
    char *detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);

    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &req, "SELECT status FROM requests WHERE id = $1::bigint FOR UPDATE",
                      job->request_id);
    if (rc)
        goto out;
    bool cancelled = strcmp(db_get(req, 0, 0), "cancelled") == 0;
    enum job_outcome outcome = result->outcome;

    if (outcome == JOB_PRODUCED && cancelled) {
        /* Cancelled while it was being made: the card can never be issued. */
        outcome = JOB_SPOILED;
        snprintf(reason, sizeof(reason), "voided: request cancelled during production");
    } else if (outcome == JOB_UNKNOWN) {
        snprintf(reason, sizeof(reason), "fate unknown at %s: %s", result->step, result->reason);
    } else {
        snprintf(reason, sizeof(reason), "%s: %s", result->step, result->reason);
    }

    switch (outcome) {
    case JOB_PRODUCED:
        rc = db_query(db, NULL,
                      "UPDATE cards SET state = 'used', updated_at = now() WHERE serial = $1",
                      job->card_serial);
        break;
    case JOB_NOT_TAKEN:
        rc = db_query(db, NULL,
                      "UPDATE cards SET state = 'available', request_id = NULL, station_id = NULL,"
                      " updated_at = now() WHERE serial = $1",
                      job->card_serial);
        break;
    case JOB_SPOILED:
    case JOB_UNKNOWN:
        rc = db_query(db, NULL,
                      "UPDATE cards SET state = 'spoiled', spoil_reason = $2, spoiled_at = now(),"
                      " updated_at = now() WHERE serial = $1",
                      job->card_serial, reason);
        break;
    }
    if (!rc)
        rc = db_query(db, NULL,
                      "UPDATE production_attempts SET outcome = $2, finished_at = now(), step = $3,"
                      " reason = $4 WHERE id = $1::bigint",
                      job->attempt_id, outcome_name(outcome), result->step,
                      outcome == JOB_PRODUCED ? NULL : reason);
    if (rc)
        goto out;

    bool spoiled = outcome == JOB_SPOILED || outcome == JOB_UNKNOWN;
    if (outcome == JOB_PRODUCED) {
        rc = db_query(db, NULL,
                      "UPDATE requests SET production_station = NULL WHERE id = $1::bigint",
                      job->request_id);
        if (!rc)
            rc = journal_status(db, job->request_id, "produced", actor, NULL, NULL);
    } else if (cancelled) {
        rc = db_query(db, NULL,
                      "UPDATE requests SET production_station = NULL WHERE id = $1::bigint",
                      job->request_id);
    } else {
        /* Back to the queue for a new card; held for an operator once too
         * many cards were spoiled for it, with the reasons. */
        rc = db_query(
            db, NULL,
            "UPDATE requests SET production_station = NULL,"
            " spoiled_cards = spoiled_cards + $2::int,"
            " hold_reason = CASE WHEN spoiled_cards + $2::int >= $3::int THEN"
            "   (SELECT 'held after ' || (spoiled_cards + $2::int) || ' spoiled cards: ' ||"
            "     string_agg(p.reason, '; ' ORDER BY p.id)"
            "    FROM production_attempts p WHERE p.request_id = requests.id"
            "    AND p.outcome IN ('spoiled','unknown'))"
            "   ELSE hold_reason END,"
            " updated_at = now() WHERE id = $1::bigint",
            job->request_id, spoiled ? "1" : "0", limit);
    }
    if (!rc)
        rc = db_query(db, NULL,
                      "UPDATE stations SET cards_produced = cards_produced + $2::int,"
                      " cards_spoiled = cards_spoiled + $3::int,"
                      " state = CASE WHEN $4::text <> '' THEN 'error' ELSE 'idle' END,"
                      " error_reason = nullif($4::text, ''), updated_at = now() WHERE id = $1",
                      job->station_id, outcome == JOB_PRODUCED ? "1" : "0", spoiled ? "1" : "0",
                      result->station_error);
    if (!rc)
        rc = production_step(db, job,
                             outcome == JOB_PRODUCED    ? "job.produced"
                             : outcome == JOB_NOT_TAKEN ? "job.card_not_taken"
                                                        : "card.spoiled",
                             detail);
    if (!rc)
        rc = db_commit(db);
    if (!rc && spoiled)
        log_warn("station %s: card %s for %s spoiled: %s", job->station_id, job->card_serial,
                 job->request_no, reason);
out:
    if (rc)
        db_rollback(db);
    db_res_free(req);
    free(detail);
    return rc;
}

int production_recover(struct db *db, const char *station_id, const char *actor)
{
    struct db_res *res = NULL;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(
            db, &res,
            "WITH lost AS ("
            "  UPDATE production_attempts SET outcome = 'unknown', finished_at = now(),"
            "   step = coalesce(step, 'in_flight'), reason = 'fate unknown after restart: rejected'"
            "  WHERE station_id = $1 AND outcome = 'in_progress'"
            "  RETURNING id, request_id, card_serial),"
            " cards_done AS ("
            "  UPDATE cards c SET state = 'spoiled', spoil_reason = 'fate unknown after restart: rejected',"
            "   spoiled_at = now(), updated_at = now()"
            "  FROM lost WHERE c.serial = lost.card_serial AND c.state = 'in_production'"
            "  RETURNING c.serial),"
            " reqs AS ("
            "  UPDATE requests r SET production_station = NULL, spoiled_cards = spoiled_cards + 1,"
            "   updated_at = now()"
            "  FROM lost WHERE r.id = lost.request_id RETURNING r.request_no, lost.card_serial)"
            " INSERT INTO audit_log (actor, action, request_no, card_serial, station_id, detail)"
            " SELECT $2, 'job.recovered', request_no, card_serial, $1,"
            "  '{\"outcome\":\"spoiled\",\"reason\":\"fate unknown after restart: rejected\"}'::jsonb"
            " FROM reqs RETURNING request_no",
            station_id, actor);
    /* Each resolved job spoiled its card: the station's counter says so. */
    char spoiled[16];
    snprintf(spoiled, sizeof(spoiled), "%zu", db_rows(res));
    if (!rc)
        rc = db_query(
            db, NULL,
            "UPDATE stations SET state = CASE WHEN state = 'busy' THEN 'idle' ELSE state END,"
            " cards_spoiled = cards_spoiled + $2::int, updated_at = now() WHERE id = $1",
            station_id, spoiled);
    if (!rc)
        rc = db_commit(db);
    if (rc) {
        db_rollback(db);
        db_res_free(res);
        return rc;
    }
    int n = (int)db_rows(res);
    for (int i = 0; i < n; i++)
        log_warn("station %s: job for %s was in flight at restart; its card is spoiled and the"
                 " request requeued",
                 station_id, db_get(res, (size_t)i, 0));
    db_res_free(res);
    return n;
}

int production_station_state(struct db *db, const char *station_id, const char *state,
                             const char *reason)
{
    /* An error stays until an operator resumes the station (or the worker
     * that raised it clears it): a worker that saw the station ready a
     * moment before an error was recorded does not paint over it. */
    return db_query(db, NULL,
                    "UPDATE stations SET state = $2, error_reason = $3, updated_at = now()"
                    " WHERE id = $1 AND (state <> 'error' OR $2 = 'error')",
                    station_id, state, reason);
}

int production_station_clear(struct db *db, const char *station_id, const char *reason)
{
    return db_query(db, NULL,
                    "UPDATE stations SET state = 'idle', error_reason = NULL, updated_at = now()"
                    " WHERE id = $1 AND state = 'error' AND error_reason = $2",
                    station_id, reason);
}

int production_station_ready(struct db *db, const char *station_id)
{
    struct db_res *res = NULL;
    int rc = db_query(
        db, &res, "SELECT NOT paused AND state <> 'error' FROM stations WHERE id = $1", station_id);
    if (rc)
        return rc;
    int ready = db_rows(res) == 1 && strcmp(db_get(res, 0, 0), "t") == 0;
    db_res_free(res);
    return ready;
}

int production_card_data(struct db *db, const char *request_no, struct job *job)
{
    struct db_res *res = NULL;
    memset(job, 0, sizeof(*job));
    /* The same dates as production_claim(), from the moment the card was claimed. */
    int rc = db_query(
        db, &res,
        "SELECT r.id, r.request_no, r.kind, r.national_id, r.name_ar, r.name_en,"
        " to_char(r.birth_date, 'YYYY-MM-DD'), r.sex, r.nationality,"
        " to_char((coalesce(a.started_at, now()) AT TIME ZONE 'Asia/Riyadh')::date, 'YYYY-MM-DD'),"
        " to_char((coalesce(a.started_at, now()) AT TIME ZONE 'Asia/Riyadh')::date"
        "  + interval '10 years', 'YYYY-MM-DD'),"
        " a.card_serial, a.id, a.station_id"
        " FROM requests r LEFT JOIN LATERAL ("
        "  SELECT p.id, p.card_serial, p.started_at, p.station_id FROM production_attempts p"
        "  WHERE p.request_id = r.id AND p.outcome IN ('produced','in_progress')"
        "  AND p.card_serial IS NOT NULL ORDER BY p.id DESC LIMIT 1) a ON true"
        " WHERE r.request_no = $1",
        request_no);
    if (rc)
        return rc;
    if (db_rows(res) == 0) {
        db_res_free(res);
        return -ENOENT;
    }
    copy(job->request_id, sizeof(job->request_id), db_get(res, 0, 0));
    copy(job->request_no, sizeof(job->request_no), db_get(res, 0, 1));
    copy(job->kind, sizeof(job->kind), db_get(res, 0, 2));
    copy(job->national_id, sizeof(job->national_id), db_get(res, 0, 3));
    copy(job->name_ar, sizeof(job->name_ar), db_get(res, 0, 4));
    copy(job->name_en, sizeof(job->name_en), db_get(res, 0, 5));
    copy(job->birth_date, sizeof(job->birth_date), db_get(res, 0, 6));
    copy(job->sex, sizeof(job->sex), db_get(res, 0, 7));
    copy(job->nationality, sizeof(job->nationality), db_get(res, 0, 8));
    copy(job->issue_date, sizeof(job->issue_date), db_get(res, 0, 9));
    copy(job->expiry_date, sizeof(job->expiry_date), db_get(res, 0, 10));
    copy(job->card_serial, sizeof(job->card_serial), db_get(res, 0, 11));
    copy(job->attempt_id, sizeof(job->attempt_id), db_get(res, 0, 12));
    copy(job->station_id, sizeof(job->station_id), db_get(res, 0, 13));
    db_res_free(res);
    return 0;
}

void production_face_data(const struct job *job, const char *serial, struct face_data *fd)
{
    bool family = strcmp(job->kind, "family_record") == 0;
    *fd = (struct face_data){
        .kind = family ? FACE_FAMILY_RECORD : FACE_NATIONAL_ID,
        .name_ar = job->name_ar,
        .name_latin = job->name_en,
        .national_id = job->national_id,
        .birth_date = job->birth_date,
        .expiry_date = job->expiry_date,
        .issue_date = job->issue_date,
        .card_serial = serial ? serial : job->card_serial,
    };
}

int production_release(struct db *db, const char *request_no, const char *actor, char *reason,
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
        rc = audit(db, actor, "request.released", request_no, NULL, NULL, detail);
    if (!rc)
        rc = db_commit(db);
out:
    db_rollback(db);
    db_res_free(res);
    free(detail);
    return rc;
}

int production_progress(struct db *db, int window_min, struct production_progress *p)
{
    struct db_res *res = NULL;
    char window[16];
    if (window_min < 1 || window_min > 1440)
        return -EINVAL;
    snprintf(window, sizeof(window), "%d", window_min);
    int rc = db_query(
        db, &res,
        "WITH today AS (SELECT date_trunc('day', now() AT TIME ZONE 'Asia/Riyadh')"
        "   AT TIME ZONE 'Asia/Riyadh' AS start),"
        " st AS (SELECT CASE WHEN paused AND state <> 'busy' THEN 'paused' ELSE state END"
        "   AS shown FROM stations)"
        " SELECT"
        " (SELECT count(*) FROM requests WHERE status IN ('queued','in_production')"
        "   AND hold_reason IS NULL AND production_station IS NULL),"
        " (SELECT count(*) FROM requests WHERE status IN ('queued','in_production')"
        "   AND hold_reason IS NOT NULL AND production_station IS NULL),"
        " (SELECT count(*) FROM production_attempts WHERE outcome = 'in_progress'),"
        " (SELECT count(*) FROM production_attempts, today WHERE outcome = 'produced'"
        "   AND finished_at >= today.start),"
        " (SELECT count(*) FROM production_attempts, today WHERE outcome IN ('spoiled','unknown')"
        "   AND finished_at >= today.start),"
        " (SELECT count(*) FROM production_attempts WHERE outcome = 'produced'"
        "   AND finished_at >= now() - make_interval(mins => $1::int)),"
        " (SELECT count(*) FROM st WHERE shown = 'busy'),"
        " (SELECT count(*) FROM st WHERE shown = 'idle'),"
        " (SELECT count(*) FROM st WHERE shown = 'error'),"
        " (SELECT count(*) FROM st WHERE shown = 'paused'),"
        " (SELECT count(*) FROM st WHERE shown = 'offline')",
        window);
    if (rc)
        return rc;
    long *fields[] = { &p->waiting,        &p->held,          &p->in_production,
                       &p->produced_today, &p->spoiled_today, &p->produced_window,
                       &p->busy,           &p->idle,          &p->error,
                       &p->paused,         &p->offline };
    for (int k = 0; k < (int)(sizeof(fields) / sizeof(fields[0])); k++)
        *fields[k] = db_get_long(res, 0, k, 0);
    p->window_min = window_min;
    db_res_free(res);
    return 0;
}

int production_hourly(struct db *db, struct production_hour out[PRODUCTION_HOURS])
{
    struct db_res *res = NULL;
    char hours[8];
    snprintf(hours, sizeof(hours), "%d", PRODUCTION_HOURS - 1);
    int rc = db_query(
        db, &res,
        "SELECT rfc3339(h.start),"
        " count(p.id) FILTER (WHERE p.outcome = 'produced'),"
        " count(p.id) FILTER (WHERE p.outcome IN ('spoiled','unknown'))"
        " FROM generate_series(date_trunc('hour', now()) - make_interval(hours => $1::int),"
        "  date_trunc('hour', now()), interval '1 hour') AS h(start)"
        " LEFT JOIN production_attempts p ON p.finished_at >= h.start"
        "  AND p.finished_at < h.start + interval '1 hour'"
        " GROUP BY h.start ORDER BY h.start",
        hours);
    if (rc)
        return rc;
    if (db_rows(res) != PRODUCTION_HOURS) {
        db_res_free(res);
        return -EIO;
    }
    for (int i = 0; i < PRODUCTION_HOURS; i++) {
        copy(out[i].start, sizeof(out[i].start), db_get(res, (size_t)i, 0));
        out[i].produced = db_get_long(res, (size_t)i, 1, 0);
        out[i].spoiled = db_get_long(res, (size_t)i, 2, 0);
    }
    db_res_free(res);
    return 0;
}

double production_cards_per_hour(const struct production_progress *p)
{
    return p->window_min > 0 ? (double)p->produced_window * 60.0 / p->window_min : 0.0;
}
