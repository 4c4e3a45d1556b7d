/* station_worker.c — the production station worker.
 *
 * The worker owns its printer and encoder; nothing else touches them. It
 * talks to the database only between device steps, one short transaction
 * at a time, through production.c. Card fate rules (PRINTER.md): a card
 * that left the feeder is printed and ejected, or rejected and spoiled with
 * its reason, or — when the printer stops answering — spoiled as "fate
 * unknown" with the station put in error for an operator. */
#include "station_worker.h"
#include "app.h"
#include "auth.h"
#include "config.h"
#include "db.h"
#include "ds.h"
#include "encoder.h"
#include "face.h"
#include "lds.h"
#include "log.h"
#include "personalise.h"
#include "printer.h"
#include "production.h"
#include "signer.h"
#include "store_station.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IDLE_POLL_MS       200
#define CARD_WAIT_MS       5000
#define PRINTER_TIMEOUT_MS 30000

struct station {
    struct app *app;
    const struct station_config *cfg;
    pthread_t thread;
    bool started;
    struct printer *printer;
    struct encoder *encoder;
    struct signer *signer;
    bool was_in_error;
    bool reported_offline;
    bool last_job_ok; /* the last job was produced: skip the status round */
    bool signer_down; /* in error signer_unavailable: resumes by itself when it answers */
    int signer_err;   /* the last reason logged */
};

struct stations {
    int count;
    struct station st[CONFIG_MAX_STATIONS];
};

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- devices ---- */

/* Finding a printer means asking the printers of the model for their
 * serial; the driver keeps that search to this station's own device where
 * it can and holds no lock across device I/O, so a hung printer stalls only
 * its own station. */
static int open_printer(struct station *s)
{
    if (s->printer && !printer_is_gone(s->printer))
        return 0;
    printer_close(s->printer);
    s->printer = NULL;
    if (strcmp(s->cfg->printer_driver, evolis_printer_ops.name) != 0)
        return -ENODEV;
    int rc = -ENODEV;
    for (const struct printer_id *id = evolis_printer_ops.id_table; id->vendor; id++) {
        rc = printer_open_with(&evolis_printer_ops, id->vendor, id->product, s->cfg->printer_serial,
                               PRINTER_TIMEOUT_MS, &s->printer);
        if (rc != -ENODEV)
            break;
    }
    return rc;
}

static int open_encoder(struct station *s)
{
    if (s->encoder)
        return 0;
    return encoder_open(&encoder_pcsc_ops, s->cfg->reader, 0, &s->encoder);
}

static int open_signer(struct station *s)
{
    if (s->signer)
        return 0;
    return ds_open(s->app->cfg, &s->signer);
}

/* Whether the Document Signer answers now: token present, PIN taken, a
 * usable certificate and its key (the pkcs11 signer also takes a new
 * certificate here). Asked before a blank is claimed and fed. */
static int signer_ready(struct station *s)
{
    const uint8_t *der;
    size_t len;
    int rc = open_signer(s);
    if (!rc)
        rc = signer_certificate(s->signer, &der, &len);
    if (rc == -EACCES || rc == -ENOENT || rc == -EPERM || rc == -EINVAL || rc == -EBUSY) {
        /* Not a passing absence: open afresh next time (a new PIN or key). */
        signer_close(s->signer);
        s->signer = NULL;
    }
    return rc;
}

/* The 8-byte transport key registered for a stock batch: a file
 * <keys_dir>/transport/<batch_no>.key of 16 hex digits, mode 0600. */
static int load_transport_key(const struct station *s, const char *batch_no,
                              uint8_t key[PERSO_KEY_LEN])
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/transport/%s.key", s->app->cfg->keys_dir, batch_no);
    return auth_load_key_file(path, key, PERSO_KEY_LEN);
}

/* ---- the job ---- */

static void ymd_to_yymmdd(const char *ymd, char out[7])
{
    memcpy(out, ymd + 2, 2);
    memcpy(out + 2, ymd + 5, 2);
    memcpy(out + 4, ymd + 8, 2);
    out[6] = '\0';
}

/* Copies at most len bytes of src into dst of size bytes, always ending it.
 * Intake bounds every field, so nothing is cut in practice; the MRZ code
 * truncates names as ICAO says. */
static void copy_field(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* ICAO names: the family name is the last word of the Latin name. */
static void holder_from_job(const struct job *job, struct holder *h)
{
    memset(h, 0, sizeof(*h));
    copy_field(h->document_number, sizeof(h->document_number), job->card_serial,
               strlen(job->card_serial));
    const char *last_space = strrchr(job->name_en, ' ');
    if (last_space) {
        copy_field(h->surname, sizeof(h->surname), last_space + 1, strlen(last_space + 1));
        copy_field(h->given_names, sizeof(h->given_names), job->name_en,
                   (size_t)(last_space - job->name_en));
    } else {
        copy_field(h->surname, sizeof(h->surname), job->name_en, strlen(job->name_en));
    }
    copy_field(h->name_ar, sizeof(h->name_ar), job->name_ar, strlen(job->name_ar));
    copy_field(h->national_id, sizeof(h->national_id), job->national_id, strlen(job->national_id));
    ymd_to_yymmdd(job->birth_date, h->birth_date);
    ymd_to_yymmdd(job->expiry_date, h->expiry_date);
    h->sex = job->sex[0] ? job->sex[0] : '<';
    snprintf(h->nationality, sizeof(h->nationality), "%s", job->nationality);
}

static void set_result(struct job_result *r, enum job_outcome outcome, const char *step,
                       const char *station_error, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void set_result(struct job_result *r, enum job_outcome outcome, const char *step,
                       const char *station_error, const char *fmt, ...)
{
    r->outcome = outcome;
    snprintf(r->step, sizeof(r->step), "%s", step);
    snprintf(r->station_error, sizeof(r->station_error), "%s", station_error ? station_error : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
}

/* A printer call failed with rc during step, with the card out of the
 * feeder: decides the card's fate and the station's state. */
static void printer_failed(struct station *s, int rc, enum printer_fault fault, const char *step,
                           struct job_result *r)
{
    if (rc == PRINTER_E_FAULT) {
        /* The printer refused: it is in a known state, so the card can be
         * sent to the reject box, unless the card path itself is blocked. */
        enum printer_fault rf = PRINTER_FAULT_NONE;
        if (fault != PRINTER_FAULT_CARD_JAM && printer_reject(s->printer, &rf) == 0)
            set_result(r, JOB_SPOILED, step, printer_fault_name(fault), "%s",
                       printer_fault_name(fault));
        else
            set_result(r, JOB_UNKNOWN, step, printer_fault_name(fault), "%s",
                       printer_fault_name(fault));
    } else if (rc == -ENODEV) {
        set_result(r, JOB_UNKNOWN, step, "offline", "printer gone");
    } else if (rc == -ETIMEDOUT) {
        set_result(r, JOB_UNKNOWN, step, "timeout", "printer did not answer");
    } else {
        set_result(r, JOB_UNKNOWN, step, "command_error", "printer error %d", rc);
    }
}

static void step_audit(struct station *s, const struct job *job, const char *action,
                       const char *detail)
{
    struct db *db = db_pool_acquire(s->app->pool, 5000);
    if (!db)
        return;
    if (production_step(db, job, action, detail) != 0)
        log_warn("station %s: audit of %s failed", s->cfg->id, action);
    db_pool_release(s->app->pool, db);
}

static void encode_chip(struct station *s, const struct job *job, struct job_result *r)
{
    uint8_t key[PERSO_KEY_LEN];
    struct holder h;
    struct perso_result pr = { 0 };
    int rc = load_transport_key(s, job->batch_no, key);
    if (rc) {
        set_result(r, JOB_SPOILED, "encode", "transport_key_missing",
                   "no usable transport key for batch %s", job->batch_no);
        return;
    }
    rc = encoder_wait_card(s->encoder, CARD_WAIT_MS);
    if (!rc)
        rc = encoder_connect(s->encoder);
    if (rc) {
        set_result(r, JOB_SPOILED, "encode", rc == -ETIMEDOUT ? "no_card_in_reader" : NULL,
                   "card not reachable in the reader (%s)", strerror(-rc));
        goto out;
    }
    holder_from_job(job, &h);
    rc = personalise(s->encoder, &h, s->signer, key, NULL, &pr);
    encoder_disconnect(s->encoder);
    if (rc) {
        /* A refused transport key is the batch's problem, not the card's:
         * stop the station before another card of the batch is tried. */
        bool key_refused = pr.step && strcmp(pr.step, "verify_transport_key") == 0;
        /* The signer failed between the check before the feed and the
         * signature (the token went): the station waits for it. */
        bool signing = pr.step && strcmp(pr.step, "build_files") == 0 && pr.err != -EINVAL;
        bool signer_failed = signing && signer_ready(s) != 0;
        if (signer_failed) {
            s->signer_down = true;
            s->signer_err = 0;
        }
        if (signing)
            set_result(r, JOB_SPOILED, "encode", signer_failed ? "signer_unavailable" : NULL,
                       "build_files: the Document Signer failed: %s", ds_strerror(pr.err));
        else
            set_result(r, JOB_SPOILED, "encode", key_refused ? "transport_key_refused" : NULL, "%s",
                       pr.reason[0] ? pr.reason : "personalisation failed");
        goto out;
    }
    char detail[96];
    snprintf(detail, sizeof(detail), "{\"apdus\":%lu}", pr.apdus);
    step_audit(s, job, "chip.encoded", detail);
    r->outcome = JOB_PRODUCED;
out:
    OPENSSL_cleanse(key, sizeof(key));
}

static void run_job(struct station *s, const struct job *job, struct job_result *r)
{
    enum printer_fault fault = PRINTER_FAULT_NONE;
    struct face_image *img = NULL;
    struct printer_panels panels = { 0 };
    bool family = strcmp(job->kind, "family_record") == 0;
    memset(r, 0, sizeof(*r));

    int rc = printer_feed_to_chip(s->printer, &fault);
    if (rc == PRINTER_E_FAULT && fault != PRINTER_FAULT_CARD_JAM) {
        /* Refused before moving: the blank is still in the feeder. */
        set_result(r, JOB_NOT_TAKEN, "feed", printer_fault_name(fault), "%s",
                   printer_fault_name(fault));
        return;
    }
    if (rc) {
        printer_failed(s, rc, fault, "feed", r);
        return;
    }
    step_audit(s, job, "card.fed", NULL);

    if (!family) {
        encode_chip(s, job, r);
        if (r->outcome != JOB_PRODUCED) {
            enum printer_fault rf = PRINTER_FAULT_NONE;
            if (printer_reject(s->printer, &rf) != 0) {
                char why[sizeof(r->reason) + 32];
                snprintf(why, sizeof(why), "%s; reject failed", r->reason);
                set_result(r, JOB_UNKNOWN, "encode",
                           rf != PRINTER_FAULT_NONE ? printer_fault_name(rf) : "reject_failed",
                           "%.140s", why);
            }
            return;
        }
    }

    struct face_data fd;
    production_face_data(job, NULL, &fd);
    rc = face_render(&fd, &img);
    if (!rc)
        rc = face_to_panels(img, &panels);
    if (rc) {
        enum printer_fault rf = PRINTER_FAULT_NONE;
        if (printer_reject(s->printer, &rf) == 0)
            set_result(r, JOB_SPOILED, "render", NULL, "face could not be rendered (%d)", rc);
        else
            set_result(r, JOB_UNKNOWN, "render",
                       rf != PRINTER_FAULT_NONE ? printer_fault_name(rf) : "reject_failed",
                       "face not rendered; reject failed");
        goto out;
    }
    rc = printer_print_front(s->printer, &panels, &fault);
    if (rc) {
        printer_failed(s, rc, fault, "print", r);
        goto out;
    }
    rc = printer_eject(s->printer, &fault);
    if (rc) {
        /* Eject prints what was sent: a refusal here leaves a half-made card. */
        printer_failed(s, rc, fault, "eject", r);
        goto out;
    }
    set_result(r, JOB_PRODUCED, "eject", NULL, "ok");
out:
    face_panels_free(&panels);
    face_image_free(img);
}

/* Records the outcome; retried until it lands, because a job the
 * database does not know the end of would be spoiled at the next start. */
static void finish(struct station *s, const struct job *job, const struct job_result *r)
{
    for (int attempt = 0;; attempt++) {
        struct db *db = db_pool_acquire(s->app->pool, 5000);
        int rc = db ? production_finish(db, job, r, s->app->cfg->spoil_limit) : DB_EDOWN;
        db_pool_release(s->app->pool, db);
        if (rc == 0)
            return;
        log_error("station %s: recording the outcome of %s failed (%d); retrying", s->cfg->id,
                  job->request_no, rc);
        if (app_stopping(s->app) && attempt > 50)
            return;
        sleep_ms(200);
    }
}

/* Moves the station's state (store_station.c's events); a move its state
 * does not allow (already offline, say) changes nothing. */
static void set_state(struct station *s, const char *event, const char *reason)
{
    char actor[64];
    snprintf(actor, sizeof(actor), "station:%s", s->cfg->id);
    struct db *db = db_pool_acquire(s->app->pool, 5000);
    if (db)
        station_apply_alone(db, s->cfg->id, event, reason, actor);
    db_pool_release(s->app->pool, db);
}

/* The signer's error is the worker's to clear, also one left by the last
 * run; it clears no other. */
static void clear_signer_error(struct station *s)
{
    char actor[64];
    snprintf(actor, sizeof(actor), "station:%s", s->cfg->id);
    struct db *db = db_pool_acquire(s->app->pool, 5000);
    if (db)
        station_clear_error(db, s->cfg->id, "signer_unavailable", actor);
    db_pool_release(s->app->pool, db);
}

/* While the station is in error for the signer: whether it answers again
 * (the error is then cleared); waits a moment when not. */
static bool signer_back(struct station *s)
{
    if (!s->signer_down)
        return true;
    int src = signer_ready(s);
    if (src) {
        if (src != s->signer_err)
            log_warn("station %s: Document Signer still unavailable: %s", s->cfg->id,
                     ds_strerror(src));
        s->signer_err = src;
        /* Still so, also after an operator's resume. */
        set_state(s, "fault", "signer_unavailable");
        sleep_ms(1000);
        return false;
    }
    s->signer_down = false;
    log_info("station %s: Document Signer available again", s->cfg->id);
    clear_signer_error(s);
    return true;
}

/* No blank is claimed while the Document Signer cannot sign. */
static bool signer_can_sign(struct station *s)
{
    int sgn = signer_ready(s);
    if (sgn) {
        log_warn("station %s: in error (signer_unavailable): %s", s->cfg->id, ds_strerror(sgn));
        s->signer_down = true;
        s->signer_err = sgn;
        set_state(s, "fault", "signer_unavailable");
    }
    return sgn == 0;
}

/* Brings the printer to a known state when the worker starts: a card left
 * on the path by a crash goes to the reject box (its job is resolved by
 * production_recover as spoiled). */
static void clear_card_path(struct station *s)
{
    struct printer_status st;
    enum printer_fault f;
    if (printer_status(s->printer, &st) == 0 && st.card_inside)
        printer_reject(s->printer, &f);
}

/* Resolves the jobs the station had in flight when the service stopped. */
static void recover_at_start(struct station *s)
{
    struct app *app = s->app;
    char actor[64];
    snprintf(actor, sizeof(actor), "station:%s", s->cfg->id);
    struct db *db = NULL;
    while (!app_stopping(app) && !(db = db_pool_acquire(app->pool, 1000)))
        ;
    if (!db)
        return;
    int n = production_recover(db, s->cfg->id, actor);
    if (n > 0)
        log_warn("station %s: %d job(s) in flight at the last stop were resolved", s->cfg->id, n);
    db_pool_release(app->pool, db);
}

/* Whether an operator lets the station work (not paused, not in error);
 * waits a moment when not. */
static bool may_work(struct station *s)
{
    struct db *db = db_pool_acquire(s->app->pool, 1000);
    if (!db)
        return false;
    int ready = station_ready(db, s->cfg->id);
    db_pool_release(s->app->pool, db);
    if (ready != 1) {
        if (ready == 0)
            s->was_in_error = true;
        sleep_ms(IDLE_POLL_MS);
    }
    return ready == 1;
}

/* A device is missing: the station is offline until it answers. */
static void device_missing(struct station *s, const char *what, const char *name, int rc)
{
    if (!s->reported_offline)
        log_warn("station %s: %s %s not reachable (%s)", s->cfg->id, what, name, strerror(-rc));
    s->reported_offline = true;
    char reason[32];
    snprintf(reason, sizeof(reason), "%s not found", what);
    set_state(s, "go_offline", reason);
    sleep_ms(1000);
}

/* Brings the printer and the reader to a state where a job can start. */
static bool devices_ready(struct station *s, bool *printer_checked)
{
    int prc = open_printer(s);
    if (prc != 0) {
        device_missing(s, "printer", s->cfg->printer_serial, prc);
        return false;
    }
    if (!*printer_checked) {
        clear_card_path(s);
        *printer_checked = true;
    }
    if (s->was_in_error) {
        /* An operator resumed the station: reset the printer first. */
        enum printer_fault f;
        printer_reset(s->printer, &f);
        s->was_in_error = false;
    }
    /* Between two jobs that went well the printer is known to be
     * ready; asking costs a round of status commands per card. */
    struct printer_status pst = { .fault = PRINTER_FAULT_NONE };
    int src = s->last_job_ok ? 0 : printer_status(s->printer, &pst);
    if (src == 0 && pst.fault != PRINTER_FAULT_NONE) {
        log_warn("station %s: printer reports %s", s->cfg->id, printer_fault_name(pst.fault));
        set_state(s, "fault", printer_fault_name(pst.fault));
        return false;
    }
    if (src != 0) {
        log_warn("station %s: printer status failed (%s)", s->cfg->id, strerror(-src));
        sleep_ms(500);
        return false;
    }
    int erc = open_encoder(s);
    if (erc != 0) {
        device_missing(s, "reader", s->cfg->reader, erc);
        return false;
    }
    if (s->reported_offline) {
        log_info("station %s: printer and reader ready", s->cfg->id);
        s->reported_offline = false;
        set_state(s, "online", NULL);
    }
    return true;
}

/* Claims the oldest waiting request and a blank card, makes the card and
 * records how it ended. */
static void claim_and_run(struct station *s)
{
    struct app *app = s->app;
    struct job job;
    struct db *db = db_pool_acquire(app->pool, 1000);
    if (!db)
        return;
    int rc = production_claim(db, s->cfg->id, app->cfg->instance, &job);
    db_pool_release(app->pool, db);
    if (rc == -ENOENT || rc == -ENOSPC) {
        s->last_job_ok = false;
        if (rc == -ENOSPC)
            log_debug("station %s: no blank card available", s->cfg->id);
        sleep_ms(IDLE_POLL_MS);
        return;
    }
    if (rc) {
        log_error("station %s: claim failed (%d)", s->cfg->id, rc);
        sleep_ms(1000);
        return;
    }
    log_info("station %s: %s on card %s", s->cfg->id, job.request_no, job.card_serial);
    struct job_result result;
    run_job(s, &job, &result);
    finish(s, &job, &result);
    s->last_job_ok = result.outcome == JOB_PRODUCED;
    if (result.station_error[0] && s->signer_down)
        log_warn("station %s: in error (%s) until the Document Signer answers", s->cfg->id,
                 result.station_error);
    else if (result.station_error[0])
        log_warn("station %s: in error (%s) until an operator resumes it", s->cfg->id,
                 result.station_error);
}

static void *worker(void *arg)
{
    struct station *s = arg;
    recover_at_start(s);
    bool printer_checked = false;
    if (signer_ready(s) == 0)
        clear_signer_error(s);
    while (!app_stopping(s->app)) {
        ds_cert_watch(s->app->cfg);
        if (signer_back(s) && may_work(s) && devices_ready(s, &printer_checked) &&
            signer_can_sign(s))
            claim_and_run(s);
    }
    set_state(s, "go_offline", "service stopped");
    printer_close(s->printer);
    encoder_close(s->encoder);
    signer_close(s->signer);
    return NULL;
}

int stations_start(struct app *app, struct stations **out)
{
    *out = NULL;
    if (app->cfg->station_count == 0)
        return 0;
    struct stations *all = calloc(1, sizeof(*all));
    if (!all)
        return -ENOMEM;
    for (int i = 0; i < app->cfg->station_count; i++) {
        struct station *s = &all->st[i];
        s->app = app;
        s->cfg = &app->cfg->stations[i];
        /* The state left by the last stop says nothing of the devices now:
         * the station says it is ready once they answer. */
        s->reported_offline = true;
        if (pthread_create(&s->thread, NULL, worker, s) != 0) {
            stations_stop(all);
            return -EAGAIN;
        }
        s->started = true;
        all->count++;
    }
    *out = all;
    return 0;
}

void stations_stop(struct stations *all)
{
    if (!all)
        return;
    for (int i = 0; i < all->count; i++)
        if (all->st[i].started)
            pthread_join(all->st[i].thread, NULL);
    free(all);
}
