/* station.c — the production station worker.
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
#include "backoff.h"
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
/* Waits while the database or a device does not answer. */
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 5000
/* An instance refused a station another holds looks again this often. */
#define REFUSED_RETRY_MS 30000
/* How long a stopping worker keeps trying to record an outcome; after it,
 * the job stays in progress for start-up recovery to resolve. */
#define STOP_RECORD_MS 2000

struct station {
    struct app *app;
    const struct station_config *cfg;
    pthread_t thread;
    bool started;
    struct printer *printer;
    struct encoder *encoder;
    struct signer *signer;
    bool was_in_error; /* an operator's resume: reset the printer first */
    bool announced;    /* the station's state says what the devices do */
    bool printer_checked;
    bool last_job_ok; /* the last job was produced: skip the status round */
    char who[48];     /* "station ID", for the log */
    struct backoff db_wait, dev_wait, refused_wait;
    struct condition db_down, printer_down, reader_down, signer_down, refused;
    struct db *lock_db; /* holds the station's advisory lock while it is ours */
    bool needs_recover; /* the station was just taken: resolve its jobs first */
    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;
    bool done;
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

/* Sleeps ms, or less when the service is stopping. */
static void pause_ms(struct station *s, int ms)
{
    while (ms > 0 && !app_stopping(s->app)) {
        int step = ms < 50 ? ms : 50;
        sleep_ms(step);
        ms -= step;
    }
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
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

/* Whether the reader is there and its service answers, asked of PC/SC
 * without waiting: 0, or why not. A reader found gone is closed, so that
 * the next check opens it afresh (a restarted pcscd needs a new context). */
static int check_reader(struct station *s)
{
    int rc = open_encoder(s);
    if (!rc) {
        rc = encoder_wait_card(s->encoder, 0);
        if (rc == -ETIMEDOUT) /* no card in it: the reader is there */
            rc = 0;
    }
    if (rc) {
        encoder_close(s->encoder);
        s->encoder = NULL;
    }
    return rc;
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
        log_warn("%s: audit of %s failed", s->who, action);
    db_pool_release(s->app->pool, db);
}

/* The reader failed while a card was at the contact station: when PC/SC
 * says the reader itself is gone, the station stops with reader_lost
 * before another blank is fed, and comes back by itself (heal_station). */
static const char *reader_fault(struct station *s, int rc, const char *otherwise)
{
    if (rc != -EIO && rc != -ENODEV && rc != -ETIMEDOUT && rc != -EBUSY)
        return otherwise;
    int why = check_reader(s);
    if (!why)
        return otherwise;
    condition_set(&s->reader_down, s->who, "reader %s lost (%s)", s->cfg->reader, strerror(-why));
    return "reader_lost";
}

/* Everything a card needs that can fail without a card, before a blank is
 * fed: the face and its panels, and for an ID card the transport key, the
 * Document Signer and the chip's files, signed and checked. A failure
 * here leaves the blank in the feeder (JOB_NOT_TAKEN), and holds the
 * request when its data cannot go on a card (JOB_REFUSED). */
static int prepare_job(struct station *s, const struct job *job, bool family,
                       struct printer_panels *panels, struct perso_data *pd,
                       uint8_t key[PERSO_KEY_LEN], struct job_result *r)
{
    struct face_data fd;
    struct face_image *img = NULL;
    production_face_data(job, NULL, &fd);
    int rc = face_render(&fd, &img);
    if (!rc)
        rc = face_to_panels(img, panels);
    face_image_free(img);
    if (rc == -EINVAL) {
        set_result(r, JOB_REFUSED, "prepare", NULL,
                   "the face cannot be printed: a field does not fit");
        return rc;
    }
    if (rc) {
        set_result(r, JOB_NOT_TAKEN, "prepare", NULL, "face not rendered (%s)", strerror(-rc));
        return rc;
    }
    if (family)
        return 0;
    rc = load_transport_key(s, job->batch_no, key);
    if (rc) {
        set_result(r, JOB_NOT_TAKEN, "prepare", "transport_key_missing",
                   "no usable transport key for batch %s", job->batch_no);
        return rc;
    }
    rc = signer_ready(s);
    if (rc) {
        condition_set(&s->signer_down, s->who, "Document Signer unavailable: %s", ds_strerror(rc));
        set_result(r, JOB_NOT_TAKEN, "prepare", "signer_unavailable",
                   "Document Signer unavailable: %s", ds_strerror(rc));
        return rc;
    }
    struct holder h;
    struct perso_result pr = { 0 };
    holder_from_job(job, &h);
    rc = personalise_prepare(&h, s->signer, pd, &pr);
    if (rc == -EINVAL && pr.step && strcmp(pr.step, "build_files") == 0) {
        set_result(r, JOB_REFUSED, "prepare", NULL, "chip data cannot be built: %s", pr.reason);
    } else if (rc == -ENOMEM) {
        set_result(r, JOB_NOT_TAKEN, "prepare", NULL, "out of memory");
    } else if (rc) {
        /* The signer failed or signed wrongly: open it afresh next time. */
        signer_close(s->signer);
        s->signer = NULL;
        condition_set(&s->signer_down, s->who, "document signer failed: %s", pr.reason);
        set_result(r, JOB_NOT_TAKEN, "prepare", "signer_unavailable", "%s", pr.reason);
    }
    return rc;
}

static void encode_chip(struct station *s, const struct job *job, const struct perso_data *pd,
                        const uint8_t key[PERSO_KEY_LEN], struct job_result *r)
{
    struct perso_result pr = { 0 };
    int rc = check_reader(s);
    if (!rc)
        rc = encoder_wait_card(s->encoder, CARD_WAIT_MS);
    if (!rc)
        rc = encoder_connect(s->encoder);
    if (rc) {
        set_result(r, JOB_SPOILED, "encode",
                   reader_fault(s, rc, rc == -ETIMEDOUT ? "no_card_in_reader" : NULL),
                   "card not reachable in the reader (%s)", strerror(-rc));
        return;
    }
    rc = personalise_write(s->encoder, pd, key, NULL, &pr);
    encoder_disconnect(s->encoder);
    if (rc) {
        /* A refused transport key is the batch's problem, not the card's:
         * stop the station before another card of the batch is tried. A
         * card pulled mid-write leaves the reader there: only the card
         * is spoiled. */
        bool key_refused = pr.step && strcmp(pr.step, "verify_transport_key") == 0;
        set_result(r, JOB_SPOILED, "encode",
                   key_refused ? "transport_key_refused" : reader_fault(s, rc, NULL), "%s",
                   pr.reason[0] ? pr.reason : "personalisation failed");
        return;
    }
    char detail[96];
    snprintf(detail, sizeof(detail), "{\"apdus\":%lu}", pr.apdus);
    step_audit(s, job, "chip.encoded", detail);
    r->outcome = JOB_PRODUCED;
}

static void run_job(struct station *s, const struct job *job, struct job_result *r)
{
    enum printer_fault fault = PRINTER_FAULT_NONE;
    struct printer_panels panels = { 0 };
    struct perso_data pd = { 0 };
    uint8_t key[PERSO_KEY_LEN] = { 0 };
    bool family = strcmp(job->kind, "family_record") == 0;
    memset(r, 0, sizeof(*r));

    if (prepare_job(s, job, family, &panels, &pd, key, r) != 0)
        goto out;

    int rc = printer_feed_to_chip(s->printer, &fault);
    if (rc == PRINTER_E_FAULT && fault != PRINTER_FAULT_CARD_JAM) {
        /* Refused before moving: the blank is still in the feeder. */
        set_result(r, JOB_NOT_TAKEN, "feed", printer_fault_name(fault), "%s",
                   printer_fault_name(fault));
        goto out;
    }
    if (rc) {
        printer_failed(s, rc, fault, "feed", r);
        goto out;
    }
    step_audit(s, job, "card.fed", NULL);

    if (!family) {
        encode_chip(s, job, &pd, key, r);
        if (r->outcome != JOB_PRODUCED) {
            enum printer_fault rf = PRINTER_FAULT_NONE;
            if (printer_reject(s->printer, &rf) != 0) {
                char why[sizeof(r->reason) + 32];
                snprintf(why, sizeof(why), "%s; reject failed", r->reason);
                set_result(r, JOB_UNKNOWN, "encode",
                           rf != PRINTER_FAULT_NONE ? printer_fault_name(rf) : "reject_failed",
                           "%.140s", why);
            }
            goto out;
        }
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
    perso_data_free(&pd);
    face_panels_free(&panels);
    OPENSSL_cleanse(key, sizeof(key));
}

/* A connection for the worker, or NULL after waiting a while when the
 * database does not answer (logged once until it answers again). */
static struct db *worker_db(struct station *s)
{
    struct db *db = db_pool_acquire(s->app->pool, 1000);
    if (!db) {
        condition_set(&s->db_down, s->who, "database unreachable; waiting");
        pause_ms(s, backoff_next(&s->db_wait));
    }
    return db;
}

/* Gives back a connection after a statement that returned rc. */
static void worker_db_done(struct station *s, struct db *db, int rc)
{
    if (rc == DB_EDOWN || rc == DB_EBUSY) {
        condition_set(&s->db_down, s->who, "database unreachable; waiting");
        db_pool_release(s->app->pool, db);
        pause_ms(s, backoff_next(&s->db_wait));
        return;
    }
    db_pool_release(s->app->pool, db);
    if (condition_clear(&s->db_down, s->who, "database reachable again"))
        backoff_reset(&s->db_wait);
}

/* Records the outcome; retried until it lands, because a job the
 * database does not know the end of would be spoiled at the next start.
 * A stopping service gives up after STOP_RECORD_MS: the job stays in
 * progress and start-up recovery resolves it. */
static void finish(struct station *s, const struct job *job, const struct job_result *r)
{
    long stop_at = 0;
    for (;;) {
        if (app_stopping(s->app) && !stop_at)
            stop_at = now_ms() + STOP_RECORD_MS;
        if (stop_at && now_ms() > stop_at) {
            log_warn("%s: stopping before the outcome of %s was recorded; start-up recovery"
                     " resolves it",
                     s->who, job->request_no);
            return;
        }
        struct db *db = db_pool_acquire(s->app->pool, 1000);
        if (!db) {
            condition_set(&s->db_down, s->who,
                          "database unreachable; holding the outcome of %s until it answers",
                          job->request_no);
            sleep_ms(backoff_next(&s->db_wait) / (stop_at ? 4 : 1));
            continue;
        }
        int rc = production_finish(db, job, r, s->app->cfg->spoil_limit);
        if (rc == 0) {
            worker_db_done(s, db, 0);
            return;
        }
        if (rc == DB_EDOWN || rc == DB_EBUSY)
            condition_set(&s->db_down, s->who,
                          "database unreachable; holding the outcome of %s until it answers",
                          job->request_no);
        else
            condition_set(&s->db_down, s->who, "recording the outcome of %s failed (%d)",
                          job->request_no, rc);
        db_pool_release(s->app->pool, db);
        sleep_ms(backoff_next(&s->db_wait) / (stop_at ? 4 : 1));
    }
}

/* Moves the station's state (store_station.c's events: fault, go_offline,
 * online); a move its state does not allow (an error stays until an
 * operator or the worker clears it) changes nothing and is no failure. */
static int set_state(struct station *s, const char *event, const char *reason)
{
    char actor[64];
    snprintf(actor, sizeof(actor), "station:%s", s->cfg->id);
    struct db *db = worker_db(s);
    if (!db)
        return DB_EDOWN;
    int rc = station_apply_alone(db, s->cfg->id, event, reason, actor);
    rc = rc == -EPERM || rc == -ENOENT ? 0 : rc;
    worker_db_done(s, db, rc);
    return rc;
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

/* A device is not there: the station shows it (once), and the worker
 * waits a growing while before it looks again. */
static void device_down(struct station *s, bool changed, const char *event, const char *reason)
{
    if (changed || s->announced) {
        if (set_state(s, event, reason) == 0)
            s->announced = false;
    }
    pause_ms(s, backoff_next(&s->dev_wait));
}

/* Opens and checks the devices before a job. True when the station can
 * take one; otherwise it has shown why and waited. */
static bool devices_ready(struct station *s)
{
    int prc = open_printer(s);
    if (prc != 0) {
        bool changed = condition_set(&s->printer_down, s->who, "printer %s not reachable (%s)",
                                     s->cfg->printer_serial, strerror(-prc));
        device_down(s, changed, "go_offline", "printer not found");
        return false;
    }
    if (!s->printer_checked) {
        clear_card_path(s);
        s->printer_checked = true;
    }
    if (s->was_in_error) {
        /* An operator resumed the station: reset the printer first. */
        enum printer_fault f;
        printer_reset(s->printer, &f);
        s->was_in_error = false;
        s->last_job_ok = false;
    }
    /* Between two jobs that went well the printer is known to be ready;
     * asking costs a round of status commands per card. */
    struct printer_status pst = { .fault = PRINTER_FAULT_NONE };
    int src = s->last_job_ok ? 0 : printer_status(s->printer, &pst);
    if (src == 0 && pst.fault != PRINTER_FAULT_NONE) {
        log_warn("%s: printer reports %s", s->who, printer_fault_name(pst.fault));
        set_state(s, "fault", printer_fault_name(pst.fault));
        return false;
    }
    if (src != 0) {
        bool changed =
            condition_set(&s->printer_down, s->who, "printer status failed (%s)", strerror(-src));
        device_down(s, changed, "go_offline", "printer not answering");
        return false;
    }
    condition_clear(&s->printer_down, s->who, "printer %s ready", s->cfg->printer_serial);
    /* The reader is asked before every blank is fed, so that a lost
     * reader costs no card. */
    int erc = check_reader(s);
    if (erc != 0) {
        bool changed = condition_set(&s->reader_down, s->who, "reader %s lost (%s)", s->cfg->reader,
                                     strerror(-erc));
        device_down(s, changed || s->announced, "fault", "reader_lost");
        return false;
    }
    condition_clear(&s->reader_down, s->who, "reader %s back", s->cfg->reader);
    backoff_reset(&s->dev_wait);
    if (!s->announced && set_state(s, "online", NULL) == 0)
        s->announced = true;
    return true;
}

static bool heals_by_itself(const char *reason)
{
    return strcmp(reason, "reader_lost") == 0 || strcmp(reason, "signer_unavailable") == 0;
}

/* A station in an error its worker can see end by itself: reader_lost
 * (the reader answers again) and signer_unavailable (the Document Signer
 * can sign again), also one left by the last run; an operator's errors
 * stay for the operator. Returns true when the error was ended. */
static bool heal_station(struct station *s, const char *reason)
{
    int rc;
    struct condition *c;
    if (strcmp(reason, "reader_lost") == 0) {
        rc = check_reader(s);
        c = &s->reader_down;
    } else if (strcmp(reason, "signer_unavailable") == 0) {
        rc = signer_ready(s);
        c = &s->signer_down;
    } else {
        return false;
    }
    if (rc) {
        condition_set(c, s->who, "%s (%s); waiting", reason,
                      c == &s->signer_down ? ds_strerror(rc) : strerror(-rc));
        pause_ms(s, backoff_next(&s->dev_wait));
        return false;
    }
    struct db *db = worker_db(s);
    if (!db)
        return false;
    char actor[64];
    snprintf(actor, sizeof(actor), "station:%s", s->cfg->id);
    rc = station_clear_error(db, s->cfg->id, reason, actor);
    worker_db_done(s, db, rc < 0 ? rc : 0);
    if (rc == 1) {
        condition_clear(c, s->who, "%s; the station is idle again",
                        c == &s->signer_down ? "Document Signer available again" : "reader back");
        backoff_reset(&s->dev_wait);
        s->announced = true;
        return true;
    }
    return false;
}

/* One live owner per station: the worker holds a session advisory lock on
 * a connection of its own for as long as it drives the station. Another
 * instance configured with the same station finds it taken, refuses it
 * (logged once, shown in GET /v1/stations) and never touches its jobs; it
 * looks again every REFUSED_RETRY_MS, so it takes over once the holder
 * stopped. A holder that lost its connection (a database restart) takes
 * its lock again at once. True when the station is this worker's. */
static bool own_station(struct station *s)
{
    if (s->lock_db && db_alive(s->lock_db))
        return true;
    if (s->lock_db) {
        db_close(s->lock_db);
        s->lock_db = NULL;
    }
    struct db *ldb = NULL;
    if (db_pool_connect(s->app->pool, &ldb) != 0) {
        condition_set(&s->db_down, s->who, "database unreachable; waiting");
        pause_ms(s, backoff_next(&s->db_wait));
        return false;
    }
    bool got = false;
    int rc = station_try_lock(ldb, s->cfg->id, &got);
    if (!got) {
        db_close(ldb);
        if (rc) {
            condition_set(&s->db_down, s->who, "database unreachable; waiting");
            pause_ms(s, backoff_next(&s->db_wait));
            return false;
        }
        if (condition_set(&s->refused, s->who,
                          "held by another live instance; instance %s refuses it",
                          s->app->cfg->instance)) {
            struct db *db = worker_db(s);
            if (db)
                worker_db_done(s, db, station_refused(db, s->cfg->id, s->app->cfg->instance));
        }
        /* Soon at first (a holder that just died is gone in a moment), then
         * every REFUSED_RETRY_MS. */
        pause_ms(s, backoff_next(&s->refused_wait));
        return false;
    }
    struct db *db = worker_db(s);
    rc = db ? station_take(db, s->cfg, s->app->cfg->instance) : DB_EDOWN;
    if (db)
        worker_db_done(s, db, rc);
    if (rc) {
        db_close(ldb); /* releases the lock: taken again on the next round */
        return false;
    }
    s->lock_db = ldb;
    backoff_reset(&s->refused_wait);
    s->needs_recover = true;
    s->announced = false;
    condition_clear(&s->refused, s->who, "taken by instance %s", s->app->cfg->instance);
    return true;
}

/* Resolves the jobs the station had in flight when it was last stopped
 * (or taken from an instance that died). True when that is done. */
static bool recover_if_needed(struct station *s)
{
    if (!s->needs_recover)
        return true;
    char actor[64];
    snprintf(actor, sizeof(actor), "station:%s", s->cfg->id);
    struct db *db = worker_db(s);
    if (!db)
        return false;
    int n = production_recover(db, s->cfg->id, actor);
    worker_db_done(s, db, n < 0 ? n : 0);
    if (n > 0)
        log_warn("%s: %d job(s) in flight at the last stop were resolved", s->who, n);
    if (n < 0)
        return false;
    s->needs_recover = false;
    return true;
}

/* Whether the station may take a job (not paused, not in error); an error
 * the worker can see end by itself is healed here. Waits when not. */
static bool may_work(struct station *s)
{
    char reason[32] = "";
    struct db *db = worker_db(s);
    if (!db)
        return false;
    int ready = station_ready(db, s->cfg->id, reason);
    worker_db_done(s, db, ready < 0 ? ready : 0);
    if (ready < 0)
        return false;
    if (ready == 0) {
        if (heals_by_itself(reason)) {
            heal_station(s, reason); /* waits when it cannot */
        } else {
            if (reason[0])
                s->was_in_error = true;
            pause_ms(s, IDLE_POLL_MS);
        }
        return false;
    }
    return true;
}

/* No blank is claimed while the Document Signer cannot sign; the station
 * comes back by itself when it does (heal_station). */
static bool signer_can_sign(struct station *s)
{
    int sgn = signer_ready(s);
    if (sgn) {
        condition_set(&s->signer_down, s->who, "in error (signer_unavailable): %s",
                      ds_strerror(sgn));
        if (set_state(s, "fault", "signer_unavailable") == 0)
            s->announced = false;
    }
    return sgn == 0;
}

/* Claims the oldest waiting request and a blank card, makes the card and
 * records how it ended. */
static void claim_and_run(struct station *s)
{
    struct app *app = s->app;
    struct job job;
    struct db *db = worker_db(s);
    if (!db)
        return;
    int rc = production_claim(db, s->cfg->id, app->cfg->instance, &job);
    worker_db_done(s, db, rc == -ENOENT || rc == -ENOSPC ? 0 : rc);
    if (rc == -ENOENT || rc == -ENOSPC) {
        s->last_job_ok = false;
        if (rc == -ENOSPC)
            log_debug("%s: no blank card available", s->who);
        pause_ms(s, IDLE_POLL_MS);
        return;
    }
    if (rc) {
        if (rc != DB_EDOWN && rc != DB_EBUSY) {
            log_error("%s: claim failed (%d)", s->who, rc);
            pause_ms(s, backoff_next(&s->db_wait));
        }
        return;
    }
    log_info("%s: %s on card %s", s->who, job.request_no, job.card_serial);
    struct job_result result;
    run_job(s, &job, &result);
    finish(s, &job, &result);
    s->last_job_ok = result.outcome == JOB_PRODUCED;
    if (result.outcome == JOB_REFUSED)
        log_warn("%s: %s held: %s", s->who, job.request_no, result.reason);
    if (result.station_error[0])
        log_warn("%s: in error (%s)%s", s->who, result.station_error,
                 heals_by_itself(result.station_error) ? "; it resumes by itself when that ends"
                                                       : " until an operator resumes it");
}

static void run_worker(struct station *s)
{
    while (!app_stopping(s->app)) {
        ds_cert_watch(s->app->cfg);
        if (own_station(s) && recover_if_needed(s) && may_work(s) && devices_ready(s) &&
            signer_can_sign(s))
            claim_and_run(s);
    }
}

static void *worker(void *arg)
{
    struct station *s = arg;
    run_worker(s);
    if (s->lock_db) {
        struct db *db = db_pool_acquire(s->app->pool, 500);
        if (db) {
            char actor[64];
            snprintf(actor, sizeof(actor), "station:%s", s->cfg->id);
            station_apply_alone(db, s->cfg->id, "go_offline", "service stopped", actor);
            db_pool_release(s->app->pool, db);
        }
        db_close(s->lock_db); /* the station is free for another instance */
        s->lock_db = NULL;
    }
    printer_close(s->printer);
    encoder_close(s->encoder);
    signer_close(s->signer);
    pthread_mutex_lock(&s->done_lock);
    s->done = true;
    pthread_cond_broadcast(&s->done_cond);
    pthread_mutex_unlock(&s->done_lock);
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
        snprintf(s->who, sizeof(s->who), "station %s", s->cfg->id);
        s->db_wait = (struct backoff)BACKOFF_INIT(RETRY_MIN_MS, RETRY_MAX_MS);
        s->dev_wait = (struct backoff)BACKOFF_INIT(RETRY_MIN_MS, RETRY_MAX_MS);
        s->refused_wait = (struct backoff)BACKOFF_INIT(RETRY_MIN_MS, REFUSED_RETRY_MS);
        pthread_mutex_init(&s->done_lock, NULL);
        pthread_cond_init(&s->done_cond, NULL);
        if (pthread_create(&s->thread, NULL, worker, s) != 0) {
            stations_stop(all, 0);
            return -EAGAIN;
        }
        s->started = true;
        all->count++;
    }
    *out = all;
    return 0;
}

bool stations_stop(struct stations *all, long deadline_ms)
{
    if (!all)
        return true;
    bool all_done = true;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long left = deadline_ms > 0 ? deadline_ms - now_ms() : 0;
    if (left < 0)
        left = 0;
    until.tv_sec += left / 1000;
    until.tv_nsec += (left % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    for (int i = 0; i < all->count; i++) {
        struct station *s = &all->st[i];
        if (!s->started)
            continue;
        pthread_mutex_lock(&s->done_lock);
        while (!s->done) {
            if (deadline_ms <= 0)
                pthread_cond_wait(&s->done_cond, &s->done_lock);
            else if (pthread_cond_timedwait(&s->done_cond, &s->done_lock, &until) == ETIMEDOUT)
                break;
        }
        bool done = s->done;
        pthread_mutex_unlock(&s->done_lock);
        if (!done) {
            /* Stuck in a device call: left to the process's exit (detached,
             * as nobody joins it); its job stays in progress for start-up
             * recovery. */
            log_warn("%s: still in a device call at the stop deadline; left behind", s->who);
            pthread_detach(s->thread);
            all_done = false;
            continue;
        }
        pthread_join(s->thread, NULL);
    }
    if (all_done)
        free(all);
    return all_done;
}
