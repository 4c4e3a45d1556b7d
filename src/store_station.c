/* store_station.c — the station aggregate (see store_station.h). */
#include "store_station.h"
#include "config.h"
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Every move a station's state may make. Pause and resume keep the state
 * (paused is a flag), except that a resume clears an error. An error stays
 * until an operator resumes the station: only another error replaces it,
 * so a worker that saw the station ready a moment before does not paint
 * over it (not even when it stops or loses its devices). The worker clears
 * only an error it raised and saw go away (station_clear_error). An offline
 * station's reason follows its devices (printer not answering, service
 * stopped); an error keeps the reason it was raised with. */
const struct transition station_transitions[] = {
    { "idle", "claim", "busy", NULL },
    { "offline", "claim", "busy", NULL },
    { "busy", "finish", "idle", NULL },
    { "busy", "fail", "error", "station.error" },
    { "idle", "fault", "error", "station.error" },
    { "offline", "fault", "error", "station.error" },
    { "offline", "online", "idle", "station.online" },
    { "idle", "go_offline", "offline", "station.offline" },
    { "busy", "go_offline", "offline", "station.offline" },
    { "offline", "go_offline", "offline", "station.offline" },
    { "error", "fail", "error", "station.error" },
    { "error", "fault", "error", "station.error" },
    { "busy", "restart", "idle", "station.restarted" },
    { "error", "clear", "idle", "station.cleared" },
    { "idle", "pause", "idle", "station.paused" },
    { "busy", "pause", "busy", "station.paused" },
    { "error", "pause", "error", "station.paused" },
    { "offline", "pause", "offline", "station.paused" },
    { "idle", "resume", "idle", "station.resumed" },
    { "busy", "resume", "busy", "station.resumed" },
    { "error", "resume", "idle", "station.resumed" },
    { "offline", "resume", "offline", "station.resumed" },
};
const size_t station_ntransitions = sizeof(station_transitions) / sizeof(station_transitions[0]);

/* Writes a move the table allows: the state and its audit entry. */
static int record_change(struct db *db, const char *station_id, const struct transition *t,
                         const char *event, const char *reason, const struct change *ch)
{
    int rc =
        db_query(db, NULL,
                 "UPDATE stations SET state = $2, updated_at = now(),"
                 " error_reason = CASE WHEN state = $2 AND ($2 <> 'offline' OR $3::text IS NULL)"
                 "  THEN error_reason"
                 "  WHEN $2 IN ('error','offline') THEN $3 ELSE NULL END,"
                 " paused = CASE $4 WHEN 'pause' THEN true WHEN 'resume' THEN false"
                 "  ELSE paused END"
                 " WHERE id = $1",
                 station_id, t->to, reason, event);
    if (!rc && t->audit_action) {
        struct change c = *ch;
        c.station_id = station_id;
        rc = audit_change(db, t->audit_action, &c);
    }
    return rc;
}

int station_apply(struct db *db, const char *station_id, const char *event, const char *reason,
                  const struct change *ch, char state[16])
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res, "SELECT state, error_reason FROM stations WHERE id = $1 FOR UPDATE",
                      station_id);
    if (rc)
        return rc;
    if (db_rows(res) != 1) {
        rc = -ENOENT;
    } else {
        const char *from = db_get(res, 0, 0), *had = db_get(res, 0, 1);
        const struct transition *t =
            transition_find(station_transitions, station_ntransitions, from, event);
        rc = t ? 0 : -EPERM;
        /* A move that changes nothing (the same error again) writes nothing. */
        bool same = t && strcmp(t->to, from) == 0 && strcmp(event, "pause") != 0 &&
                    strcmp(event, "resume") != 0 &&
                    strcmp(reason ? reason : "", had ? had : "") == 0;
        if (t && !same)
            rc = record_change(db, station_id, t, event, reason, ch);
        if (!rc && state)
            snprintf(state, 16, "%s", t->to);
    }
    db_res_free(res);
    return rc;
}

int station_apply_alone(struct db *db, const char *station_id, const char *event,
                        const char *reason, const char *actor)
{
    const struct change ch = { .actor = actor };
    int rc = db_begin(db);
    if (!rc)
        rc = station_apply(db, station_id, event, reason, &ch, NULL);
    if (!rc)
        rc = db_commit(db);
    db_rollback(db);
    return rc;
}

int station_clear_error(struct db *db, const char *station_id, const char *reason,
                        const char *actor)
{
    struct db_res *res = NULL;
    const struct change ch = { .actor = actor };
    bool healed = false;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &res,
                      "SELECT 1 FROM stations WHERE id = $1 AND state = 'error'"
                      " AND error_reason = $2 FOR UPDATE",
                      station_id, reason);
    if (!rc && db_rows(res) == 1) {
        rc = station_apply(db, station_id, "clear", NULL, &ch, NULL);
        healed = rc == 0;
    }
    if (!rc)
        rc = db_commit(db);
    db_rollback(db);
    db_res_free(res);
    return rc ? rc : healed;
}

int station_count_cards(struct db *db, const char *station_id, long produced, long spoiled)
{
    char p[24], s[24];
    snprintf(p, sizeof(p), "%ld", produced);
    snprintf(s, sizeof(s), "%ld", spoiled);
    return db_query(db, NULL,
                    "UPDATE stations SET cards_produced = cards_produced + $2::int,"
                    " cards_spoiled = cards_spoiled + $3::int, updated_at = now() WHERE id = $1",
                    station_id, p, s);
}

int station_job_done(struct db *db, const char *station_id, bool produced, bool spoiled,
                     const char *station_error, const char *actor)
{
    int rc = station_count_cards(db, station_id, produced, spoiled);
    const struct change ch = { .actor = actor };
    bool error = station_error && station_error[0];
    if (!rc)
        rc = station_apply(db, station_id, error ? "fail" : "finish", station_error, &ch, NULL);
    return rc == -EPERM ? 0 : rc;
}

int stations_register(struct db *db, const struct config *cfg)
{
    /* A station another instance holds keeps its row: the worker takes it
     * (station_take) only once it holds the station's lock. */
    for (int i = 0; i < cfg->station_count; i++) {
        const struct station_config *st = &cfg->stations[i];
        int rc =
            db_query(db, NULL,
                     "INSERT INTO stations (id, instance, printer_driver, printer_serial, reader)"
                     " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                     st->id, cfg->instance, st->printer_driver, st->printer_serial, st->reader);
        if (rc)
            return rc;
    }
    return 0;
}

/* The advisory lock class of stations (the second key is the id's hash). */
#define STATION_LOCK_CLASS "7304"

int station_try_lock(struct db *db, const char *station_id, bool *got)
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res, "SELECT pg_try_advisory_lock(" STATION_LOCK_CLASS ", hashtext($1))",
                      station_id);
    *got = rc == 0 && db_rows(res) == 1 && strcmp(db_get(res, 0, 0), "t") == 0;
    db_res_free(res);
    return rc;
}

int station_take(struct db *db, const struct station_config *st, const char *instance)
{
    return db_query(db, NULL,
                    "INSERT INTO stations (id, instance, printer_driver, printer_serial, reader)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET"
                    " instance = EXCLUDED.instance, printer_driver = EXCLUDED.printer_driver,"
                    " printer_serial = EXCLUDED.printer_serial, reader = EXCLUDED.reader,"
                    " refused_by = NULL, refused_at = NULL, updated_at = now()",
                    st->id, instance, st->printer_driver, st->printer_serial, st->reader);
}

int station_refused(struct db *db, const char *station_id, const char *instance)
{
    return db_query(db, NULL,
                    "UPDATE stations SET refused_by = $2, refused_at = now() WHERE id = $1",
                    station_id, instance);
}

int stations_fetch(struct db *db, struct db_res **res)
{
    return db_exec(
        db, res,
        "SELECT s.id, s.instance, s.printer_driver, s.printer_serial, s.reader,"
        " CASE WHEN s.paused AND s.state <> 'busy' THEN 'paused' ELSE s.state END,"
        " s.error_reason, s.paused, s.cards_produced, s.cards_spoiled, rfc3339(s.updated_at),"
        " (SELECT r.request_no FROM production_attempts p JOIN requests r ON r.id = p.request_id"
        "  WHERE p.station_id = s.id AND p.outcome = 'in_progress' LIMIT 1),"
        " (SELECT p.card_serial FROM production_attempts p"
        "  WHERE p.station_id = s.id AND p.outcome = 'in_progress' LIMIT 1),"
        " (SELECT count(*) FROM production_attempts p WHERE p.station_id = s.id"
        "  AND p.outcome = 'produced' AND p.finished_at >= today.start),"
        " (SELECT count(*) FROM production_attempts p WHERE p.station_id = s.id"
        "  AND p.outcome IN ('spoiled','unknown') AND p.finished_at >= today.start),"
        " s.refused_by, rfc3339(s.refused_at)"
        " FROM stations s, (SELECT date_trunc('day', now() AT TIME ZONE 'Asia/Riyadh')"
        "  AT TIME ZONE 'Asia/Riyadh' AS start) today ORDER BY s.id",
        0, NULL);
}

int station_set_paused(struct db *db, const char *station_id, bool paused, const char *actor,
                       char state[16])
{
    const struct change ch = { .actor = actor };
    char now[16];
    int rc = db_begin(db);
    if (!rc)
        rc = station_apply(db, station_id, paused ? "pause" : "resume", NULL, &ch, now);
    if (!rc)
        rc = db_commit(db);
    db_rollback(db);
    if (!rc)
        snprintf(state, 16, "%s", paused && strcmp(now, "busy") != 0 ? "paused" : now);
    return rc;
}

int station_ready(struct db *db, const char *station_id, char reason[32])
{
    struct db_res *res = NULL;
    if (reason)
        reason[0] = '\0';
    int rc = db_query(db, &res,
                      "SELECT NOT paused AND state <> 'error',"
                      " CASE WHEN state = 'error' THEN coalesce(error_reason, '') ELSE '' END"
                      " FROM stations WHERE id = $1",
                      station_id);
    if (rc)
        return rc;
    int ready = db_rows(res) == 1 && strcmp(db_get(res, 0, 0), "t") == 0;
    if (reason && db_rows(res) == 1)
        snprintf(reason, 32, "%s", db_get(res, 0, 1));
    db_res_free(res);
    return ready;
}
