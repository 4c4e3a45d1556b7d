/* production.c — the production line's bookkeeping: claims, outcomes and
 * recovery of jobs. It holds no SQL that writes: each step is a call to
 * the store module of the record it changes (request, card, station), all
 * in one transaction per step. */
#include "production.h"
#include "db.h"
#include "face.h"
#include "log.h"
#include "store_card.h"
#include "store_request.h"
#include "store_station.h"

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
    char actor[64];
    bool queued = false;
    memset(job, 0, sizeof(*job));
    copy(job->station_id, sizeof(job->station_id), station_id);
    snprintf(actor, sizeof(actor), ACTOR_PREFIX "%s", station_id);
    const struct change ch = { .actor = actor, .station_id = station_id };
    int rc = db_begin(db);
    if (!rc)
        rc = request_take_next(db, job, &queued);
    if (!rc)
        rc = card_claim_next(db, job, instance);
    if (!rc)
        rc = request_set_station(db, job->request_id, station_id);
    /* The citizen sees "in production" once, at the first card. */
    if (!rc && queued) {
        struct change rch = ch;
        rch.card_serial = job->card_serial;
        rc = request_apply(db, job->request_id, "start_production", &rch);
    }
    if (!rc) {
        /* An operator may have moved the station since it asked for work. */
        rc = station_apply(db, station_id, "claim", NULL, &ch, NULL);
        rc = rc == -EPERM ? 0 : rc;
    }
    if (!rc)
        rc = db_commit(db);
    if (rc)
        db_rollback(db);
    return rc;
}

int production_step(struct db *db, const struct job *job, const char *action,
                    const char *detail_json)
{
    return card_audit_step(db, job, action, detail_json);
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

/* The card's event for an outcome. */
static const char *card_event(enum job_outcome o)
{
    return o == JOB_PRODUCED ? "use" : o == JOB_NOT_TAKEN ? "return" : "spoil";
}

/* What becomes of the request after its card: produced, left as it is
 * when it was cancelled meanwhile, else back to the queue (held after
 * spoil_limit spoiled cards). */
static int finish_request(struct db *db, const struct job *job, enum job_outcome outcome,
                          bool cancelled, int spoil_limit, const struct change *ch)
{
    bool spoiled = outcome == JOB_SPOILED || outcome == JOB_UNKNOWN;
    if (outcome == JOB_PRODUCED) {
        int rc = request_set_station(db, job->request_id, NULL);
        return rc ? rc : request_apply(db, job->request_id, "produce", ch);
    }
    if (cancelled)
        return request_set_station(db, job->request_id, NULL);
    return request_requeue(db, job->request_id, spoiled, spoil_limit);
}

int production_finish(struct db *db, const struct job *job, const struct job_result *result,
                      int spoil_limit)
{
    char actor[64], reason[256], status[32];
    snprintf(actor, sizeof(actor), ACTOR_PREFIX "%s", job->station_id);
    int rc = db_begin(db);
    if (!rc)
        rc = request_lock_status(db, job->request_id, status);
    if (rc)
        goto out;
    bool cancelled = strcmp(status, "cancelled") == 0;
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
    json_t *dj = json_pack("{s:s, s:s, s:s}", "outcome", outcome_name(result->outcome), "step",
                           result->step, "reason", result->reason);
    char *detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);
    struct card_change c = {
        .ch = { .actor = actor,
                .detail_json = detail,
                .request_no = job->request_no,
                .station_id = job->station_id },
        .reason = reason,
    };
    bool spoiled = outcome == JOB_SPOILED || outcome == JOB_UNKNOWN;
    rc = card_apply(db, job->card_serial, card_event(outcome), &c, NULL);
    if (!rc)
        rc = card_attempt_finish(db, job->attempt_id, outcome_name(outcome), result->step,
                                 outcome == JOB_PRODUCED ? NULL : reason);
    struct change rch = { .actor = actor,
                          .card_serial = job->card_serial,
                          .station_id = job->station_id };
    if (!rc)
        rc = finish_request(db, job, outcome, cancelled, spoil_limit, &rch);
    if (!rc)
        rc = station_job_done(db, job->station_id, outcome == JOB_PRODUCED, spoiled,
                              result->station_error, actor);
    if (!rc)
        rc = db_commit(db);
    if (!rc && spoiled)
        log_warn("station %s: card %s for %s spoiled: %s", job->station_id, job->card_serial,
                 job->request_no, reason);
    free(detail);
out:
    if (rc)
        db_rollback(db);
    return rc;
}

int production_recover(struct db *db, const char *station_id, const char *actor)
{
    struct db_res *lost = NULL;
    const struct change ch = { .actor = actor };
    int rc = db_begin(db);
    if (!rc)
        rc = card_recover_station(db, station_id, actor, &lost);
    for (size_t i = 0; !rc && i < db_rows(lost); i++)
        rc = request_requeue(db, db_get(lost, i, 0), true, 0);
    /* Each resolved job spoiled its card: the station's counter says so. */
    if (!rc)
        rc = station_count_cards(db, station_id, 0, (long)db_rows(lost));
    if (!rc) {
        rc = station_apply(db, station_id, "restart", NULL, &ch, NULL);
        rc = rc == -EPERM ? 0 : rc;
    }
    if (!rc)
        rc = db_commit(db);
    if (rc) {
        db_rollback(db);
        db_res_free(lost);
        return rc;
    }
    int n = (int)db_rows(lost);
    for (int i = 0; i < n; i++)
        log_warn("station %s: job for %s was in flight at restart; its card is spoiled and the"
                 " request requeued",
                 station_id, db_get(lost, (size_t)i, 1));
    db_res_free(lost);
    return n;
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
