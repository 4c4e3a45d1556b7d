/* Unit tests for the Document Signer on a PKCS#11 token (p11.c,
 * signer_pkcs11.c) and its certificate's life (ds.c), through SoftHSM2: a
 * throw-away token made by tests/make-test-token.sh, a CSCA by
 * tests/make-test-pki.sh, and certificates the CSCA issues for the token's
 * keys here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "ds.h"
#include "lds.h"
#include "p11.h"
#include "signer.h"

static char dir[256], module[256], pin_file[300], cert_path[300], csca[300];

static const struct holder holder = {
    .document_number = "A12345678",
    .surname = "Al-Qahtani",
    .given_names = "Mohammed",
    .name_ar = "\xd9\x85\xd8\xad\xd9\x85\xd8\xaf",
    .national_id = "1012345678",
    .birth_date = "900101",
    .sex = 'M',
    .expiry_date = "310101",
    .nationality = "SAU",
};

static struct p11_config token_config(const char *pin)
{
    return (struct p11_config){
        .module = module, .token = "cardd-ds", .key_label = "ds", .pin_file = pin
    };
}

static struct signer_pkcs11_config signer_config(void)
{
    return (struct signer_pkcs11_config){ .module = module,
                                          .token = "cardd-ds",
                                          .key_label = "ds",
                                          .pin_file = pin_file,
                                          .cert_path = cert_path };
}

static int setup(void **state)
{
    const char *root = getenv("CARDD_ROOT"), *m = getenv("CARDD_TEST_PKCS11_MODULE");
    char cmd[1200], conf[300];

    (void)state;
    snprintf(module, sizeof(module), "%s", m ? m : "/usr/lib/softhsm/libsofthsm2.so");
    snprintf(dir, sizeof(dir), "/tmp/test-p11.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(cmd, sizeof(cmd), "%s/tests/make-test-pki.sh %s/pki && %s/tests/make-test-token.sh %s",
             root ? root : ".", dir, root ? root : ".", dir);
    if (system(cmd) != 0)
        return -1;
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(pin_file, sizeof(pin_file), "%s/pkcs11.pin", dir);
    snprintf(cert_path, sizeof(cert_path), "%s/ds.pem", dir);
    snprintf(csca, sizeof(csca), "%s/pki/csca.pem", dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The CSCA issues a certificate for pub into path (atomically), valid from
 * 'from' to 'to' seconds from now, with key usage 'ku'. */
static void issue(EVP_PKEY *pub, const char *cn, long from, long to, const char *ku,
                  const char *path)
{
    char p[400], tmp[400];
    FILE *f;
    X509 *ca, *x = X509_new();
    EVP_PKEY *cakey;
    X509_NAME *name = X509_NAME_new();
    X509_EXTENSION *ext;
    uint64_t serial;

    snprintf(p, sizeof(p), "%s/pki/csca.pem", dir);
    f = fopen(p, "r");
    assert_non_null(f);
    ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    snprintf(p, sizeof(p), "%s/pki/csca.key", dir);
    f = fopen(p, "r");
    assert_non_null(f);
    cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(ca);
    assert_non_null(cakey);
    RAND_bytes((unsigned char *)&serial, sizeof(serial));
    X509_set_version(x, 2);
    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 2);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, pub);
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"SA", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    ext = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, ku);
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    assert_true(X509_sign(x, cakey, EVP_sha256()) > 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
    X509_EXTENSION_free(ext);
    X509_NAME_free(name);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(cakey);
}

/* A new key on the token and its certificate at path. */
static void new_key(bool rsa, const char *cn, const char *path, struct p11_key *out)
{
    struct p11_config pc = token_config(pin_file);
    struct p11_token t;
    struct p11_key key;
    EVP_PKEY *pub = NULL;

    assert_int_equal(p11_token_open(&t, &pc), 0);
    assert_int_equal(p11_connect(&t), 0);
    assert_int_equal(p11_generate(&t, rsa, &key), 0);
    assert_int_equal(p11_public_key(&t, &key, &pub), 0);
    issue(pub, cn, -60, 30L * 86400, "critical,digitalSignature", path);
    EVP_PKEY_free(pub);
    p11_token_close(&t);
    if (out)
        *out = key;
}

/* Builds a card's files with s and checks them as an inspection system
 * would, against the CSCA; returns the signer's subject. */
static void card_verifies(struct signer *s, char *subject, size_t len)
{
    struct lds l;
    struct lds_check c;
    struct lds_dg dgs[2];

    assert_int_equal(lds_build(&holder, s, &l), 0);
    dgs[0] = (struct lds_dg){ 1, l.file[LDS_DG1].data, l.file[LDS_DG1].len };
    dgs[1] = (struct lds_dg){ 11, l.file[LDS_DG11].data, l.file[LDS_DG11].len };
    assert_int_equal(lds_check(l.file[LDS_SOD].data, l.file[LDS_SOD].len, dgs, 2, csca, &c), 0);
    if (!c.signature_valid || !c.signer_trusted || !c.hashes_match)
        fail_msg("SOD check: %s", c.error);
    assert_int_equal(c.dg_listed, 2);
    if (subject)
        snprintf(subject, len, "%s", c.signer);
    lds_free(&l);
}

static void key_stays_on_the_token(void **state)
{
    struct p11_config pc = token_config(pin_file);
    struct p11_token t;
    struct p11_key key, keys[P11_KEYS_MAX];
    size_t n = 0;

    (void)state;
    new_key(false, "DS EC", cert_path, &key);
    assert_true(key.sensitive);
    assert_false(key.extractable);
    assert_int_equal(key.alg, SIGNER_ECDSA_SHA256);
    /* As the token reports it to a fresh session, too. */
    assert_int_equal(p11_token_open(&t, &pc), 0);
    assert_int_equal(p11_connect(&t), 0);
    assert_int_equal(p11_find_keys(&t, keys, P11_KEYS_MAX, &n), 0);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        assert_true(keys[i].sensitive);
        assert_false(keys[i].extractable);
    }
    p11_token_close(&t);
}

static void ec_and_rsa_cards_verify(void **state)
{
    struct signer_pkcs11_config sc = signer_config();
    struct signer *s = NULL;
    char subject[256];

    (void)state;
    new_key(false, "DS EC", cert_path, NULL);
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), 0);
    assert_int_equal(signer_algorithm(s), SIGNER_ECDSA_SHA256);
    card_verifies(s, subject, sizeof(subject));
    assert_non_null(strstr(subject, "DS EC"));
    signer_close(s);

    new_key(true, "DS RSA", cert_path, NULL);
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), 0);
    card_verifies(s, subject, sizeof(subject));
    assert_int_equal(signer_algorithm(s), SIGNER_RSA_SHA256);
    assert_non_null(strstr(subject, "DS RSA"));
    signer_close(s);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f;

    unlink(path);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void pin_file_rules_and_wrong_pin(void **state)
{
    struct signer_pkcs11_config sc = signer_config();
    struct signer *s = NULL;
    char bad[320], link[320];

    (void)state;
    new_key(false, "DS EC", cert_path, NULL);
    snprintf(bad, sizeof(bad), "%s/bad.pin", dir);
    snprintf(link, sizeof(link), "%s/link.pin", dir);
    sc.pin_file = bad;

    write_file(bad, "0000\n", 0600);
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), -EACCES);
    assert_null(s);

    /* The right PIN in a file others may read: refused before the token. */
    {
        char pin[P11_PIN_MAX], text[P11_PIN_MAX + 2];
        size_t len = 0;
        assert_int_equal(p11_pin_read(pin_file, pin, sizeof(pin), &len), 0);
        snprintf(text, sizeof(text), "%s\n", pin);
        write_file(bad, text, 0640);
    }
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), -EPERM);
    unlink(link);
    assert_int_equal(symlink(pin_file, link), 0);
    sc.pin_file = link;
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), -EPERM);
    sc.pin_file = "/nonexistent/pkcs11.pin";
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), -ENOENT);
    write_file(bad, "\n", 0600);
    sc.pin_file = bad;
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), -EINVAL);
}

static void missing_token_module_or_certificate(void **state)
{
    struct signer_pkcs11_config sc = signer_config();
    struct signer *s = NULL;
    char missing[320];

    (void)state;
    new_key(false, "DS EC", cert_path, NULL);
    sc.token = "no-such-token";
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), -ENODEV);
    sc = signer_config();
    sc.module = "/nonexistent/libpkcs11.so";
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), -ENOENT);
    sc = signer_config();
    snprintf(missing, sizeof(missing), "%s/none.pem", dir);
    sc.cert_path = missing;
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), -ENOENT);
    assert_null(s);
}

static void certificate_of_another_key(void **state)
{
    struct signer_pkcs11_config sc = signer_config();
    struct signer *s = NULL;
    char other[320];

    (void)state;
    new_key(false, "DS EC", cert_path, NULL);
    /* The file signer's test certificate: its key is not on the token. */
    snprintf(other, sizeof(other), "%s/pki/ds.pem", dir);
    sc.cert_path = other;
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), -EINVAL);
    assert_null(s);
}

static void roll_over_while_open(void **state)
{
    struct signer_pkcs11_config sc = signer_config();
    struct signer *s = NULL;
    char subject[256];

    (void)state;
    new_key(false, "DS old", cert_path, NULL);
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), 0);
    card_verifies(s, subject, sizeof(subject));
    assert_non_null(strstr(subject, "DS old"));
    /* A new key and certificate while the signer is open. */
    new_key(false, "DS new", cert_path, NULL);
    card_verifies(s, subject, sizeof(subject));
    assert_non_null(strstr(subject, "DS new"));
    /* A certificate that matches no key: the signer refuses, no card. */
    {
        char other[320], cmd[1400];
        snprintf(other, sizeof(other), "%s/pki/ds.pem", dir);
        snprintf(cmd, sizeof(cmd), "cp %s %s.x && mv %s.x %s", other, cert_path, cert_path,
                 cert_path);
        assert_int_equal(system(cmd), 0);
        const uint8_t *der;
        size_t len;
        assert_int_equal(signer_certificate(s, &der, &len), -EINVAL);
    }
    signer_close(s);
}

static void token_removed_and_back(void **state)
{
    struct signer_pkcs11_config sc = signer_config();
    struct signer *s = NULL;
    const uint8_t *der;
    size_t len;
    char cmd[1000];
    struct lds l;

    (void)state;
    new_key(false, "DS EC", cert_path, NULL);
    assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &s), 0);
    card_verifies(s, NULL, 0);
    snprintf(cmd, sizeof(cmd), "mv %s/tokens %s/tokens.away && mkdir %s/tokens", dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(signer_certificate(s, &der, &len), -ENODEV);
    assert_int_not_equal(lds_build(&holder, s, &l), 0);
    snprintf(cmd, sizeof(cmd), "rmdir %s/tokens && mv %s/tokens.away %s/tokens", dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    /* The module is re-read at most every two seconds. */
    int r = -ENODEV;
    for (int i = 0; i < 40 && r; i++) {
        r = signer_certificate(s, &der, &len);
        if (r)
            usleep(100000);
    }
    assert_int_equal(r, 0);
    card_verifies(s, NULL, 0);
    signer_close(s);
}

/* Several threads, one signer (session) each, signing at once. */
struct worker {
    struct signer *s;
    int bad; /* cards that did not verify (cmocka's asserts stay in the main thread) */
};

static void *signing_thread(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; i < 20; i++) {
        struct lds l;
        struct lds_check c;
        if (lds_build(&holder, w->s, &l) != 0) {
            w->bad++;
            continue;
        }
        struct lds_dg dgs[2] = { { 1, l.file[LDS_DG1].data, l.file[LDS_DG1].len },
                                 { 11, l.file[LDS_DG11].data, l.file[LDS_DG11].len } };
        if (lds_check(l.file[LDS_SOD].data, l.file[LDS_SOD].len, dgs, 2, csca, &c) != 0 ||
            !c.signature_valid || !c.signer_trusted || !c.hashes_match)
            w->bad++;
        lds_free(&l);
    }
    return NULL;
}

static void one_session_per_thread(void **state)
{
    struct signer_pkcs11_config sc = signer_config();
    struct worker w[4] = { { NULL, 0 } };
    pthread_t th[4];

    (void)state;
    new_key(false, "DS EC", cert_path, NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(signer_open(&signer_pkcs11_ops, &sc, &w[i].s), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, signing_thread, &w[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(w[i].bad, 0);
        signer_close(w[i].s);
    }
}

static void certificate_life(void **state)
{
    struct config cfg;
    struct ds_cert_info info;
    struct p11_key key;
    char why[256], *m;
    EVP_PKEY *pub = NULL;
    struct p11_config pc = token_config(pin_file);
    struct p11_token t;

    (void)state;
    assert_int_equal(config_defaults(&cfg), 0);
    assert_int_equal(config_set(&cfg, "keys_dir", dir), 0);
    unlink(cert_path);
    assert_int_equal(ds_cert_read(&cfg, time(NULL), &info), -ENOENT);
    new_key(false, "DS EC", cert_path, &key);
    assert_int_equal(ds_cert_read(&cfg, time(NULL), &info), 0);
    assert_non_null(strstr(info.subject, "DS EC"));
    m = ds_metrics(&cfg);
    assert_non_null(strstr(m, "cardd_ds_certificate_valid 1\n"));
    assert_non_null(strstr(m, "cardd_ds_certificate_expiring 0\n"));
    free(m);

    assert_int_equal(p11_token_open(&t, &pc), 0);
    assert_int_equal(p11_connect(&t), 0);
    assert_int_equal(p11_public_key(&t, &key, &pub), 0);
    p11_token_close(&t);
    /* Ten days left: still usable, and expiring. */
    issue(pub, "DS soon", -60, 10L * 86400, "critical,digitalSignature", cert_path);
    assert_int_equal(ds_cert_read(&cfg, time(NULL), &info), 0);
    m = ds_metrics(&cfg);
    assert_non_null(strstr(m, "cardd_ds_certificate_expiring 1\n"));
    free(m);
    /* Expired, not yet valid, or for another use: not usable. */
    issue(pub, "DS old", -20L * 86400, -86400, "critical,digitalSignature", cert_path);
    assert_int_equal(ds_cert_read(&cfg, time(NULL), &info), -EKEYEXPIRED);
    m = ds_metrics(&cfg);
    assert_non_null(strstr(m, "cardd_ds_certificate_valid 0\n"));
    free(m);
    issue(pub, "DS later", 86400, 20L * 86400, "critical,digitalSignature", cert_path);
    assert_int_equal(ds_cert_read(&cfg, time(NULL), &info), -EKEYREJECTED);
    issue(pub, "DS CA", -60, 20L * 86400, "critical,keyCertSign", cert_path);
    assert_int_equal(ds_cert_read(&cfg, time(NULL), &info), -EKEYREJECTED);
    EVP_PKEY_free(pub);

    /* The file signer only when the configuration says so. */
    assert_int_equal(ds_config_check(&cfg, why, sizeof(why)), -EINVAL); /* no module */
    assert_int_equal(config_set(&cfg, "pkcs11_module", module), 0);
    assert_int_equal(ds_config_check(&cfg, why, sizeof(why)), 0);
    assert_int_equal(config_set(&cfg, "signer", "file"), 0);
    assert_int_equal(ds_config_check(&cfg, why, sizeof(why)), -EPERM);
    assert_non_null(strstr(why, "allow_file_signer"));
    assert_int_equal(config_set(&cfg, "allow_file_signer", "1"), 0);
    assert_int_equal(ds_config_check(&cfg, why, sizeof(why)), 0);
    assert_int_equal(config_set(&cfg, "signer", "hsm"), 0);
    assert_int_equal(ds_config_check(&cfg, why, sizeof(why)), -EINVAL);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_stays_on_the_token),
        cmocka_unit_test(ec_and_rsa_cards_verify),
        cmocka_unit_test(pin_file_rules_and_wrong_pin),
        cmocka_unit_test(missing_token_module_or_certificate),
        cmocka_unit_test(certificate_of_another_key),
        cmocka_unit_test(roll_over_while_open),
        cmocka_unit_test(one_session_per_thread),
        cmocka_unit_test(certificate_life),
        cmocka_unit_test(token_removed_and_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
