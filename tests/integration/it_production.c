/* it_production.c — the production line end to end: requests through four
 * emulated stations (real pcscd + vpcd + emulated cards, real libusb +
 * umockdev + emulated printers) run by two instances of the service on one
 * database, with faults injected on the way; every request produced exactly
 * once, every produced chip verified from the emulator's own record, the
 * stock adding up, spoiled cards with reasons. */
#define _GNU_SOURCE
#include "harness.h"
#include "db.h"
#include "face.h"
#include "face_check.h"
#include "line_env.h"
#include "production.h"
#include "store_card.h"

#include <dirent.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdbool.h>

#include <cmocka.h>

#define STATIONS 4

static struct service svc;  /* host 1's instance; the API used by the test */
static struct service svc2; /* host 2's instance, same database */
static struct line_env line;
static char intake[128], operator_[128];
static int requests_total;

static int env_count(void)
{
    const char *s = getenv("PRODUCTION_REQUESTS");
    return s ? atoi(s) : 200;
}

static int group_setup(void **state)
{
    (void)state;
    char config[4096];
    requests_total = env_count();
    if (line_env_start(&line, STATIONS, 0) != 0) {
        fprintf(stderr, "line_env_start failed\n");
        return -1;
    }
    line_env_config(&line, 0, "st", config, sizeof(config));
    if (harness_setup(&svc, config) != 0)
        return -1;
    line_env_config(&line, 1, "st", config, sizeof(config));
    if (harness_clone(&svc, &svc2, config) != 0)
        return -1;
    if (line_env_keys(&line, svc.dir, "B-1") != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-1", operator_, sizeof(operator_)))
        return -1;
    line_env_export(&line, 0);
    int rc = harness_start(&svc);
    line_env_export(&line, 1);
    if (!rc)
        rc = harness_start(&svc2);
    line_env_unexport();
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = harness_stop(&svc, false);
    if (harness_stop(&svc2, false) != 0)
        rc = -1;
    line_env_stop(&line);
    return rc;
}

static long sql_long(const char *sql)
{
    char out[64] = "";
    if (harness_sql(out, sizeof(out), sql) != 0)
        return -1;
    return atol(out);
}

/* Waits until every request is produced or the deadline passes. */
static long wait_produced(long want, int seconds)
{
    long n = 0;
    for (int i = 0; i < seconds * 10; i++) {
        n = sql_long("SELECT count(*) FROM requests WHERE status = 'produced'");
        if (n >= want)
            break;
        usleep(100000);
    }
    return n;
}

/* Polls an SQL count until it is non-zero or the deadline passes. */
static bool wait_sql_nonzero(const char *sql, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        if (sql_long(sql) > 0)
            return true;
        usleep(50000);
    }
    return false;
}

/* Arms a card fault on station k until sql counts its effect: a family
 * record's card is never encoded, so a fault armed for it passes unused. */
static bool card_fault_until(int k, const char *fault, const char *sql)
{
    for (int round = 0; round < 20; round++) {
        char reply[200] = "";
        if (line_env_card(&line, k, fault, reply, sizeof(reply)) != 0)
            fail_msg("card fault refused: %s", reply);
        if (wait_sql_nonzero(sql, 3))
            return true;
    }
    return false;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Verifies one card as an inspection system would, independently of the
 * product's code: the SOD's CMS signature against the CSCA, and the
 * SHA-256 of DG1 and DG11 found among the signed hashes. Returns 0 when
 * the card is good. */
static int verify_card(const char *dir)
{
    char path[700];
    size_t sod_len = 0, dg1_len = 0, dg11_len = 0;
    snprintf(path, sizeof(path), "%s/011D.bin", dir);
    unsigned char *sod = read_file(path, &sod_len);
    snprintf(path, sizeof(path), "%s/0101.bin", dir);
    unsigned char *dg1 = read_file(path, &dg1_len);
    snprintf(path, sizeof(path), "%s/010B.bin", dir);
    unsigned char *dg11 = read_file(path, &dg11_len);
    int rc = -1;
    CMS_ContentInfo *cms = NULL;
    X509_STORE *store = X509_STORE_new();
    BIO *out = BIO_new(BIO_s_mem());
    if (!sod || !dg1 || !dg11 || sod_len < 4)
        goto out;
    /* EF.SOD is tag 77 around the CMS ContentInfo. */
    const unsigned char *p = sod + 2;
    if (sod[1] == 0x82)
        p = sod + 4;
    else if (sod[1] == 0x81)
        p = sod + 3;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)(sod_len - (size_t)(p - sod)));
    char csca[400];
    snprintf(csca, sizeof(csca), "%s/csca.pem", svc.dir);
    FILE *cf = fopen(csca, "r");
    X509 *ca = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
    if (cf)
        fclose(cf);
    if (!cms || !ca)
        goto out_ca;
    X509_STORE_add_cert(store, ca);
    if (CMS_verify(cms, NULL, store, NULL, out, CMS_NO_SIGNER_CERT_VERIFY * 0) != 1)
        goto out_ca;
    char *signed_content = NULL;
    long slen = BIO_get_mem_data(out, &signed_content);
    unsigned char h1[32], h11[32];
    unsigned int hl;
    EVP_Digest(dg1, dg1_len, h1, &hl, EVP_sha256(), NULL);
    EVP_Digest(dg11, dg11_len, h11, &hl, EVP_sha256(), NULL);
    if (memmem(signed_content, (size_t)slen, h1, 32) &&
        memmem(signed_content, (size_t)slen, h11, 32))
        rc = 0;
out_ca:
    X509_free(ca);
out:
    CMS_ContentInfo_free(cms);
    X509_STORE_free(store);
    BIO_free(out);
    free(sod);
    free(dg1);
    free(dg11);
    return rc;
}

static void test_production_line(void **state)
{
    (void)state;
    struct reply r;
    char body[200];
    snprintf(body, sizeof(body),
             "{\"batch_no\":\"B-1\",\"first_serial\":\"A00000001\",\"count\":%d}",
             requests_total + 60);
    assert_int_equal(http_post_json(&svc, operator_, "/v1/stock/batches", body, &r), 0);
    assert_int_equal(r.status, 201);
    reply_free(&r);

    int national = 0;
    for (int i = 0; i < requests_total; i++) {
        char no[32], nine[16], nid[11];
        snprintf(no, sizeof(no), "RQ-P-%04d", i);
        snprintf(nine, sizeof(nine), "1%08d", (1000 + i) % 100000000);
        make_national_id(nine, nid);
        bool family = i % 5 == 4;
        national += !family;
        char *req = sample_request(no, nid, family ? "family_record" : "national_id",
                                   i % 2 ? "damaged" : "lost");
        assert_int_equal(http_post_json(&svc, intake, "/v1/requests", req, &r), 0);
        assert_int_equal(r.status, 201);
        reply_free(&r);
        free(req);
    }

    /* Faults along the way, one after the other, on the last two stations. */
    assert_true(card_fault_until(STATIONS - 1, "fault status:6:6A84",
                                 "SELECT count(*) FROM cards WHERE spoil_reason LIKE '%6A84%'"));
    assert_true(
        card_fault_until(STATIONS - 1, "fault remove:9",
                         "SELECT count(*) FROM cards WHERE station_id = 'st4' AND state = 'spoiled'"
                         " AND spoil_reason LIKE '%left the reader%'"));
    assert_int_equal(line_env_printer(&line, STATIONS - 2, "fault jam", NULL, 0), 0);
    assert_true(
        wait_sql_nonzero("SELECT count(*) FROM stations WHERE id = 'st3' AND state = 'error'"
                         " AND error_reason = 'card_jam'",
                         60));
    assert_int_equal(line_env_printer(&line, STATIONS - 2, "clear", NULL, 0), 0);
    assert_int_equal(http_post_json(&svc, operator_, "/v1/stations/st3/resume", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);

    /* Ribbon out: the station shows it, and waits for an operator. */
    assert_int_equal(line_env_printer(&line, STATIONS - 1, "fault ribbon_out", NULL, 0), 0);
    assert_true(
        wait_sql_nonzero("SELECT count(*) FROM stations WHERE id = 'st4' AND state = 'error'"
                         " AND error_reason = 'ribbon_out'",
                         60));
    assert_int_equal(http_get(&svc, operator_, "/v1/stations", &r), 0);
    assert_non_null(strstr(r.body, "ribbon_out"));
    reply_free(&r);
    long before = sql_long("SELECT cards_produced + cards_spoiled FROM stations WHERE id = 'st4'");
    usleep(1500000);
    assert_int_equal(
        sql_long("SELECT cards_produced + cards_spoiled FROM stations WHERE id = 'st4'"), before);
    assert_int_equal(line_env_printer(&line, STATIONS - 1, "clear", NULL, 0), 0);
    assert_int_equal(http_post_json(&svc, operator_, "/v1/stations/st4/resume", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);

    /* Three spoiled cards for one request hold it for an operator, with the
     * reasons; the operator releases it and it is produced. */
    if (sql_long("SELECT count(*) FROM requests WHERE hold_reason IS NOT NULL") > 0) {
        char reason[400], held[40], out[400];
        harness_sql(reason, sizeof(reason),
                    "SELECT hold_reason FROM requests WHERE hold_reason IS NOT NULL LIMIT 1");
        assert_non_null(strstr(reason, "held after 3 spoiled cards"));
        harness_sql(held, sizeof(held),
                    "SELECT request_no FROM requests WHERE hold_reason IS NOT NULL LIMIT 1");
        assert_int_equal(harness_ctl(&svc, out, sizeof(out), "request", "release", held, NULL), 0);
    }
    long produced = wait_produced(requests_total, 600);
    assert_int_equal(produced, requests_total);

    /* Exactly once: one produced attempt per request, one used card each. */
    assert_int_equal(
        sql_long(
            "SELECT count(DISTINCT request_id) FROM production_attempts WHERE outcome = 'produced'"),
        requests_total);
    assert_int_equal(
        sql_long("SELECT count(*) FROM production_attempts WHERE outcome = 'produced'"),
        requests_total);
    assert_int_equal(sql_long("SELECT count(*) FROM cards WHERE state = 'used'"), requests_total);
    assert_int_equal(
        sql_long("SELECT count(*) FROM production_attempts WHERE outcome = 'in_progress'"), 0);
    /* Faults spoiled cards, each with a reason, and the stock adds up. */
    long spoiled = sql_long("SELECT count(*) FROM cards WHERE state = 'spoiled'");
    assert_true(spoiled >= 3);
    assert_int_equal(
        sql_long("SELECT count(*) FROM cards WHERE state = 'spoiled' AND spoil_reason IS NULL"), 0);
    assert_int_equal(
        sql_long(
            "SELECT count(*) FROM cards WHERE state = 'spoiled' AND spoil_reason LIKE '%6A84%'"),
        1);
    assert_int_equal(http_get(&svc, operator_, "/v1/stock", &r), 0);
    json_t *t = json_object_get(r.json, "totals");
    assert_int_equal(json_integer_value(json_object_get(t, "received")), requests_total + 60);
    assert_int_equal(json_integer_value(json_object_get(t, "used")) +
                         json_integer_value(json_object_get(t, "spoiled")) +
                         json_integer_value(json_object_get(t, "destroyed")) +
                         json_integer_value(json_object_get(t, "in_production")) +
                         json_integer_value(json_object_get(t, "available")),
                     requests_total + 60);
    reply_free(&r);
    /* All four stations worked, on both instances. */
    assert_int_equal(
        sql_long(
            "SELECT count(DISTINCT station_id) FROM production_attempts WHERE outcome = 'produced'"),
        STATIONS);
    assert_int_equal(
        sql_long(
            "SELECT count(DISTINCT instance) FROM production_attempts WHERE outcome = 'produced'"),
        2);

    /* Every produced national ID card's chip verifies. The emulator keeps
     * every chip it saw, spoiled ones too; a chip is matched to a produced
     * card by the document number in its MRZ (DG1), which is the serial. */
    int verified = 0;
    for (int k = 0; k < STATIONS; k++) {
        DIR *d = opendir(line.chips[k]);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char dir[600], path[700], serial[10] = "", sql[200];
            snprintf(dir, sizeof(dir), "%s/%s", line.chips[k], e->d_name);
            snprintf(path, sizeof(path), "%s/0101.bin", dir);
            size_t len = 0;
            unsigned char *dg1 = read_file(path, &len);
            const unsigned char *mrz = dg1 ? memmem(dg1, len, "IDSAU", 5) : NULL;
            if (mrz && (size_t)(mrz - dg1) + 14 <= len) {
                memcpy(serial, mrz + 5, 9);
                serial[strcspn(serial, "<")] = '\0';
            }
            free(dg1);
            if (!serial[0])
                continue;
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM cards c JOIN requests r ON r.id = c.request_id"
                     " WHERE c.serial = '%s' AND c.state = 'used'",
                     serial);
            if (sql_long(sql) != 1)
                continue; /* a spoiled card's chip */
            if (verify_card(dir) == 0)
                verified++;
            else
                fail_msg("chip of produced card %s does not verify", serial);
        }
        closedir(d);
    }
    assert_int_equal(verified, national);

    /* The face in the output hopper of every produced national ID card is
     * the face rendered from its request, as the printer received it. */
    int faces = 0;
    struct db *db = NULL;
    char err[256];
    assert_int_equal(db_connect(&db, "", err, sizeof(err)), 0);
    for (int k = 0; k < STATIONS; k++) {
        DIR *d = opendir(line.hopper[k]);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n < 6 || strcmp(e->d_name + n - 5, "-chip") != 0)
                continue;
            char path[700], serial[10] = "", sql[300], request_no[40] = "";
            snprintf(path, sizeof(path), "%s/%s/0101.bin", line.hopper[k], e->d_name);
            size_t len = 0;
            unsigned char *dg1 = read_file(path, &len);
            const unsigned char *mrz = dg1 ? memmem(dg1, len, "IDSAU", 5) : NULL;
            if (mrz && (size_t)(mrz - dg1) + 14 <= len) {
                memcpy(serial, mrz + 5, 9);
                serial[strcspn(serial, "<")] = '\0';
            }
            free(dg1);
            snprintf(sql, sizeof(sql),
                     "SELECT r.request_no FROM cards c JOIN requests r ON r.id = c.request_id"
                     " WHERE c.serial = '%s' AND c.state = 'used'",
                     serial);
            if (!serial[0] || harness_sql(request_no, sizeof(request_no), sql) != 0 ||
                !request_no[0])
                continue; /* a spoiled card */
            struct job job;
            assert_int_equal(card_face_data(db, request_no, &job), 0);
            assert_string_equal(job.card_serial, serial);
            struct face_data fd = {
                .kind = FACE_NATIONAL_ID,
                .name_ar = job.name_ar,
                .name_latin = job.name_en,
                .national_id = job.national_id,
                .birth_date = job.birth_date,
                .expiry_date = job.expiry_date,
                .card_serial = job.card_serial,
            };
            struct face_image *img = NULL;
            assert_int_equal(face_render(&fd, &img), 0);
            snprintf(path, sizeof(path), "%s/%.*s-front.png", line.hopper[k], (int)(n - 5),
                     e->d_name);
            size_t bad = face_png_mismatches(path, img);
            face_image_free(img);
            if (bad != 0)
                fail_msg("face of %s (%s) differs from its rendering in %zu pixels", request_no,
                         path, bad);
            faces++;
        }
        closedir(d);
    }
    db_close(db);
    assert_int_equal(faces, national);

    /* 200 requests went through two instances: neither log holds a holder's
     * national ID, phone, name or address. */
    char found[128];
    if (harness_log_personal_data(&svc, found, sizeof(found)) != 0 ||
        harness_log_personal_data(&svc2, found, sizeof(found)) != 0)
        fail_msg("a service's log holds personal data: %s", found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_production_line),
    };
    return cmocka_run_group_tests_name("production", tests, group_setup, group_teardown);
}
