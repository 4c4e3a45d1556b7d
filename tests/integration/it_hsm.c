/* it_hsm.c — the Document Signer key in an HSM, through SoftHSM2 and the
 * real service: two emulated stations (pcscd + vpcd cards, umockdev
 * printers) sign chips on a throw-away token (tests/make-test-token.sh).
 *
 * The operator's flow with cardctl (init, csr, the CSCA signs it with
 * openssl, install); the key sensitive and not extractable as pkcs11-tool
 * reads it; every produced chip checked with `openssl cms -verify` against
 * the test CSCA and its DG hashes found in the signed content; a
 * certificate of another key, a missing certificate, a wrong PIN and a
 * token removed while the service runs each stop the stations in error
 * signer_unavailable before a blank is claimed (no card spoiled), and they
 * resume by themselves; a new key and certificate installed while cards
 * are produced: cards on both sides verify, each with its own certificate;
 * the file signer refused unless the configuration allows it. */
#define _GNU_SOURCE
#include "harness.h"
#include "line_env.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define STATIONS 2
#define MODULE   "/usr/lib/softhsm/libsofthsm2.so"

static struct service svc;
static struct line_env line;
static char intake[128], operator_[128], hsm[400], module[256];
static int submitted, national;

static const char *module_path(void)
{
    const char *m = getenv("CARDD_TEST_PKCS11_MODULE");
    return m ? m : MODULE;
}

static int group_setup(void **state)
{
    (void)state;
    char config[4096], extra[4800], cmd[1200], conf[500], script[512];
    snprintf(module, sizeof(module), "%s", module_path());
    if (line_env_start(&line, STATIONS, 0) != 0)
        return -1;
    line_env_config(&line, 0, "hs", config, sizeof(config));
    /* The token's PIN file is set once the folder exists: harness_setup
     * makes it. The signer settings come after the harness's own. */
    snprintf(extra, sizeof(extra), "%ssigner = pkcs11\nallow_file_signer = 0\npkcs11_module = %s\n",
             config, module);
    if (harness_setup(&svc, extra) != 0)
        return -1;
    snprintf(hsm, sizeof(hsm), "%s/hsm", svc.dir);
    snprintf(cmd, sizeof(cmd), "sh %s %s >/dev/null",
             harness_src("tests/make-test-token.sh", script, sizeof(script)), hsm);
    if (system(cmd) != 0)
        return -1;
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", hsm);
    setenv("SOFTHSM2_CONF", conf, 1);
    FILE *f = fopen(svc.config, "a");
    if (!f)
        return -1;
    fprintf(f, "pkcs11_pin_file = %s/pkcs11.pin\n", hsm);
    fclose(f);
    /* The file PKI gives the CSCA (csca.pem, pki/csca.key), the batch's
     * transport key, and a DS certificate whose key is a file, not on the
     * token. */
    if (line_env_keys(&line, svc.dir, "B-1") != 0)
        return -1;
    if (harness_token(&svc, "intake", "absher", intake, sizeof(intake)) ||
        harness_token(&svc, "operator", "op-1", operator_, sizeof(operator_)))
        return -1;
    return 0;
}

static int start(void)
{
    line_env_export(&line, 0);
    int rc = harness_start(&svc);
    line_env_unexport();
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = harness_stop(&svc, false);
    line_env_stop(&line);
    return rc;
}

/* Runs a shell command; its output (both streams) is copied to out. */
static int sh(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t len, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t used = 0;
    if (out && len)
        out[0] = '\0';
    char buf[512];
    while (fgets(buf, sizeof(buf), p)) {
        size_t n = strlen(buf);
        if (out && used + n < len) {
            memcpy(out + used, buf, n + 1);
            used += n;
        }
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* cardctl with the service's config, both output streams into out. */
static int ctl(char *out, size_t len, const char *args)
{
    char bin[512];
    return sh(out, len, "%s -c %s %s 2>&1", harness_bin("cardctl", bin, sizeof(bin)), svc.config,
              args);
}

/* A new key on the token, its request signed by the CSCA, installed.
 * days: the certificate's validity. */
static void new_ds(const char *tag, const char *cn, int days)
{
    char out[2048], args[600];
    assert_int_equal(ctl(out, sizeof(out), "signer init"), 0);
    char *id = strstr(out, "key ");
    assert_non_null(id);
    char key_id[40] = "";
    sscanf(id + 4, "%39s", key_id);
    snprintf(args, sizeof(args),
             "signer csr --key-id %s --subject '/C=SA/O=Test Bureau/CN=%s' %s/%s.csr", key_id, cn,
             svc.dir, tag);
    if (ctl(out, sizeof(out), args) != 0)
        fail_msg("signer csr (%s): %s", args, out);
    if (sh(out, sizeof(out),
           "cd %s && openssl req -in %s.csr -verify -noout 2>&1 && openssl x509 -req -in %s.csr"
           " -CA csca.pem -CAkey pki/csca.key -CAcreateserial -days %d -extfile pki/ds.ext"
           " -out %s.pem 2>&1",
           svc.dir, tag, tag, days, tag) != 0)
        fail_msg("the CSCA did not sign the request: %s", out);
    snprintf(args, sizeof(args), "signer install %s/%s.pem", svc.dir, tag);
    if (ctl(out, sizeof(out), args) != 0)
        fail_msg("signer install: %s", out);
}

static void submit(int n, bool family_too)
{
    for (int i = 0; i < n; i++) {
        char no[40], nid[11];
        struct reply r;
        harness_fresh_no("RQ-H", no, sizeof(no));
        harness_fresh_nid(nid);
        bool family = family_too && i % 4 == 3;
        national += !family;
        char *req = sample_request(no, nid, family ? "family_record" : "national_id", "lost");
        assert_int_equal(http_post_json(&svc, intake, "/v1/requests", req, &r), 0);
        assert_int_equal(r.status, 201);
        reply_free(&r);
        free(req);
        submitted++;
    }
}

static bool all_produced(int seconds)
{
    return harness_wait_sql(
        seconds, "SELECT (count(*) = %d)::int FROM requests WHERE status = 'produced'", submitted);
}

static long spoiled(void)
{
    return harness_sql_long("SELECT count(*) FROM cards WHERE state = 'spoiled'");
}

static long attempts(void)
{
    return harness_sql_long("SELECT count(*) FROM production_attempts");
}

/* Both stations in error for the signer, nothing claimed since. */
static void stations_wait_for_signer(void)
{
    assert_true(harness_wait_sql(30,
                                 "SELECT (count(*) = %d)::int FROM stations WHERE state = 'error'"
                                 " AND error_reason = 'signer_unavailable'",
                                 STATIONS));
}

static bool log_has(const char *text)
{
    char out[64];
    return sh(out, sizeof(out), "grep -qF -- '%s' %s", text, svc.log) == 0;
}

/* Checks one chip as an inspection system would, with the openssl tool:
 * the SOD's CMS signature against the CSCA, and the SHA-256 of DG1 and
 * DG11 among the signed content. Fills the signer's subject. */
static int verify_chip(const char *dir, char *subject, size_t len)
{
    char path[800], out[1024];
    size_t n = 0;
    uint8_t *sod = NULL, *dg[2] = { NULL, NULL }, *content = NULL;
    size_t dg_len[2] = { 0, 0 }, content_len = 0;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/011D.bin", dir);
    sod = harness_slurp(path, &n);
    snprintf(path, sizeof(path), "%s/0101.bin", dir);
    dg[0] = harness_slurp(path, &dg_len[0]);
    snprintf(path, sizeof(path), "%s/010B.bin", dir);
    dg[1] = harness_slurp(path, &dg_len[1]);
    if (!sod || !dg[0] || !dg[1] || n < 4 || sod[0] != 0x77)
        goto out;
    /* EF.SOD is tag 77 around the CMS ContentInfo. */
    size_t hdr = sod[1] == 0x82 ? 4 : sod[1] == 0x81 ? 3 : 2;
    snprintf(path, sizeof(path), "%s/sod.der", dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(sod + hdr, 1, n - hdr, f) != n - hdr) {
        if (f)
            fclose(f);
        goto out;
    }
    fclose(f);
    if (sh(out, sizeof(out),
           "cd %s && openssl cms -verify -inform DER -in sod.der -binary -CAfile %s/csca.pem"
           " -purpose any -out content.bin -signer signer.pem 2>&1 &&"
           " openssl x509 -in signer.pem -noout -subject -nameopt compat",
           dir, svc.dir) != 0) {
        fprintf(stderr, "openssl cms -verify %s: %s\n", dir, out);
        goto out;
    }
    snprintf(subject, len, "%s", out);
    snprintf(path, sizeof(path), "%s/content.bin", dir);
    content = harness_slurp(path, &content_len);
    if (!content)
        goto out;
    rc = 0;
    for (int i = 0; i < 2; i++) {
        unsigned char md[32];
        EVP_Digest(dg[i], dg_len[i], md, NULL, EVP_sha256(), NULL);
        if (!memmem(content, content_len, md, 32)) {
            fprintf(stderr, "%s: DG hash %d not in the SOD\n", dir, i);
            rc = -1;
        }
    }
out:
    free(sod);
    free(dg[0]);
    free(dg[1]);
    free(content);
    return rc;
}

/* Every produced national ID card's chip verifies; counts them by signer
 * (subject containing "CN=<cn[i]>") and checks that cards whose attempt
 * started after first_new_attempt carry cn[1]. */
static void verify_produced(const char *const cn[2], long first_new_attempt, int count[2])
{
    count[0] = count[1] = 0;
    for (int k = 0; k < STATIONS; k++) {
        DIR *d = opendir(line.chips[k]);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char dir[700], path[800], serial[10] = "", subject[1024] = "";
            snprintf(dir, sizeof(dir), "%s/%s", line.chips[k], e->d_name);
            snprintf(path, sizeof(path), "%s/0101.bin", dir);
            size_t len = 0;
            unsigned char *dg1 = harness_slurp(path, &len);
            const unsigned char *mrz = dg1 ? memmem(dg1, len, "IDSAU", 5) : NULL;
            if (mrz && (size_t)(mrz - dg1) + 14 <= len) {
                memcpy(serial, mrz + 5, 9);
                serial[strcspn(serial, "<")] = '\0';
            }
            free(dg1);
            if (!serial[0])
                continue;
            long attempt = harness_sql_long(
                "SELECT max(p.id) FROM production_attempts p JOIN cards c ON c.serial = p.card_serial"
                " WHERE c.serial = '%s' AND c.state = 'used' AND p.outcome = 'produced'",
                serial);
            if (attempt <= 0)
                continue; /* not a produced card's chip */
            if (verify_chip(dir, subject, sizeof(subject)) != 0)
                fail_msg("chip of produced card %s does not verify", serial);
            char want[2][80];
            snprintf(want[0], sizeof(want[0]), "CN=%s\n", cn[0]);
            snprintf(want[1], sizeof(want[1]), "CN=%s\n", cn[1] ? cn[1] : "-");
            int which = strstr(subject, want[1]) ? 1 : strstr(subject, want[0]) ? 0 : -1;
            if (which < 0)
                fail_msg("card %s signed by %s", serial, subject);
            if (first_new_attempt > 0 && attempt >= first_new_attempt && which != 1)
                fail_msg("card %s claimed after the switch carries %s", serial, subject);
            count[which]++;
        }
        closedir(d);
    }
}

static void test_no_certificate_then_mismatch(void **state)
{
    (void)state;
    char out[2048], path[400];
    struct reply r;

    /* No certificate at all: not ready, stations claim nothing. */
    snprintf(path, sizeof(path), "%s/ds.pem", svc.dir);
    char saved[420];
    snprintf(saved, sizeof(saved), "%s/file-ds.pem", svc.dir);
    assert_int_equal(rename(path, saved), 0);
    assert_int_equal(start(), 0);
    assert_int_equal(http_get(&svc, NULL, "/readyz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "Document Signer certificate"));
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, operator_, "/v1/stock/batches",
                                    "{\"batch_no\":\"B-1\",\"first_serial\":\"H00000001\","
                                    "\"count\":120}",
                                    &r),
                     0);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    submit(2, false);
    stations_wait_for_signer();

    /* A certificate whose key is not on the token: cardctl refuses it... */
    char args[500];
    snprintf(args, sizeof(args), "signer install %s", saved);
    assert_int_equal(ctl(out, sizeof(out), args), 1);
    assert_non_null(strstr(out, "does not match any key"));
    /* ...and put in place by hand, the stations still do not sign with it. */
    assert_int_equal(link(saved, path), 0);
    assert_int_equal(http_get(&svc, NULL, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    sleep(2);
    stations_wait_for_signer();
    assert_true(log_has("the certificate does not match the signing key"));
    assert_int_equal(attempts(), 0);
    assert_int_equal(spoiled(), 0);
    assert_int_equal(ctl(out, sizeof(out), "signer status"), 1);
    assert_non_null(strstr(out, "no key on the token matches the certificate"));
    unlink(path);
}

static void test_token_key_signs_verifiable_chips(void **state)
{
    (void)state;
    char out[4096], pin[200] = "", cmd[1200];
    struct reply r;

    new_ds("ds1", "HSM DS 1", 20);
    /* The stations take it by themselves and produce what waited. */
    submit(6, true);
    assert_true(all_produced(120));
    assert_int_equal(spoiled(), 0);
    assert_int_equal(http_get(&svc, NULL, "/readyz", &r), 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);

    const char *cn[2] = { "HSM DS 1", NULL };
    int count[2];
    verify_produced(cn, 0, count);
    assert_int_equal(count[0], national);

    /* The key as the token itself reports it, read by pkcs11-tool. */
    snprintf(cmd, sizeof(cmd), "cat %s/pkcs11.pin", hsm);
    assert_int_equal(sh(pin, sizeof(pin), "%s", cmd), 0);
    pin[strcspn(pin, "\n")] = '\0';
    assert_int_equal(sh(out, sizeof(out),
                        "pkcs11-tool --module %s --token-label cardd-ds --login --pin %s"
                        " --list-objects --type privkey 2>&1",
                        module, pin),
                     0);
    assert_non_null(strstr(out, "label:      ds"));
    assert_non_null(strstr(out, "sensitive"));
    assert_non_null(strstr(out, "never extractable"));
    assert_null(strstr(out, "Access:     extractable"));
    assert_int_equal(ctl(out, sizeof(out), "signer status"), 0);
    assert_non_null(strstr(out, "sensitive=yes extractable=no  (the certificate's key: in use)"));

    /* The certificate's life in /metrics; a warning for one under 30 days. */
    assert_int_equal(http_get(&svc, operator_, "/metrics", &r), 0);
    assert_non_null(strstr(r.body, "cardd_ds_certificate_valid 1\n"));
    assert_non_null(strstr(r.body, "cardd_ds_certificate_expiring 1\n"));
    reply_free(&r);
}

static void test_wrong_pin(void **state)
{
    (void)state;
    char path[500], good[600], out[200];
    long before = attempts();

    assert_int_equal(harness_stop(&svc, false), 0);
    snprintf(path, sizeof(path), "%s/pkcs11.pin", hsm);
    snprintf(good, sizeof(good), "%s/pkcs11.pin.good", hsm);
    assert_int_equal(rename(path, good), 0);
    assert_int_equal(sh(out, sizeof(out), "umask 077 && echo 000000 > %s", path), 0);
    assert_int_equal(start(), 0);
    assert_true(log_has("expires in 19 day(s)"));
    submit(2, false);
    stations_wait_for_signer();
    assert_true(log_has("the token refused the PIN"));
    sleep(1);
    assert_int_equal(attempts(), before);
    assert_int_equal(spoiled(), 0);
    /* The right PIN back: the stations log in and go on. */
    assert_int_equal(rename(good, path), 0);
    assert_true(all_produced(60));
    assert_int_equal(spoiled(), 0);
}

static void test_token_removed_while_running(void **state)
{
    (void)state;
    char out[200];
    long before;

    /* The token's slot emptied while the service runs. */
    assert_int_equal(
        sh(out, sizeof(out), "mv %s/tokens %s/tokens.away && mkdir %s/tokens", hsm, hsm, hsm), 0);
    stations_wait_for_signer();
    before = attempts();
    submit(3, false);
    sleep(3);
    assert_int_equal(attempts(), before);
    assert_int_equal(spoiled(), 0);
    assert_true(log_has("the token is not present"));
    /* Back: resumed without an operator, nothing spoiled. */
    assert_int_equal(
        sh(out, sizeof(out), "rmdir %s/tokens && mv %s/tokens.away %s/tokens", hsm, hsm, hsm), 0);
    assert_true(all_produced(60));
    assert_int_equal(spoiled(), 0);
    assert_true(log_has("Document Signer available again"));
}

static void test_roll_over_while_producing(void **state)
{
    (void)state;
    int count[2];

    submit(24, false);
    /* Let some cards be made with the first key, then switch. */
    assert_true(
        harness_wait_sql(60, "SELECT (count(*) >= %d)::int FROM requests WHERE status = 'produced'",
                         submitted - 20));
    new_ds("ds2", "HSM DS 2", 40);
    long first_new = harness_sql_long("SELECT coalesce(max(id), 0) + 1 FROM production_attempts");
    assert_true(all_produced(120));
    assert_int_equal(spoiled(), 0);
    const char *cn[2] = { "HSM DS 1", "HSM DS 2" };
    verify_produced(cn, first_new, count);
    if (count[0] == 0 || count[1] == 0)
        fail_msg("cards by the old key %d, by the new %d: the switch was not during production",
                 count[0], count[1]);
}

/* Production does not sign from a key file unless the configuration says so. */
static void test_file_signer_refused(void **state)
{
    (void)state;
    struct service other;
    char config[4096], extra[4400], out[64];
    line_env_config(&line, 0, "hs", config, sizeof(config));
    snprintf(extra, sizeof(extra), "%ssigner = file\nallow_file_signer = 0\n", config);
    assert_int_equal(harness_clone(&svc, &other, extra), 0);
    assert_int_not_equal(harness_start(&other), 0);
    assert_int_equal(sh(out, sizeof(out), "grep -c 'for development only' %s", other.log), 0);
    assert_int_equal(sh(out, sizeof(out), "grep -c 'refusing to start' %s", other.log), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_signer_refused),
        cmocka_unit_test(test_no_certificate_then_mismatch),
        cmocka_unit_test(test_token_key_signs_verifiable_chips),
        cmocka_unit_test(test_wrong_pin),
        cmocka_unit_test(test_token_removed_while_running),
        cmocka_unit_test(test_roll_over_while_producing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
