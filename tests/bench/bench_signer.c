/*
 * bench_signer.c — the Document Signer's share of a card: building a
 * card's LDS files, whose one signature is the EF.SOD's, with the key in a
 * file (the baseline) and with the key on a PKCS#11 token (SoftHSM2 here),
 * ECDSA P-256 and RSA-2048, measured in the same run.
 *
 *   build/tests/bench_signer [CARDS]      (make bench runs it with 200)
 *
 * Prints ms per card (median and best: the machine is shared) and the ratio
 * token / file for each key type. The token is a SoftHSM2 token the bench
 * makes (tests/make-test-token.sh); a hardware HSM's figure is its own
 * signing time plus the network or bus, and is not this one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lds.h"
#include "p11.h"
#include "signer.h"

static char dir[64] = "/tmp/bench-signer.XXXXXX";

static const struct holder holder = {
    .document_number = "A12345678",
    .surname = "Al-Harbi",
    .given_names = "Abdulrahman Fahad",
    .name_ar = "\xd8\xb9\xd8\xa8\xd8\xaf\xd8\xa7\xd9\x84\xd8\xb1\xd8\xad\xd9\x85\xd9\x86",
    .national_id = "1122334455",
    .birth_date = "880302",
    .sex = 'M',
    .expiry_date = "340302",
    .nationality = "SAU",
};

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median ms per card over n cards (best in *best); -1 on failure. */
static double run(struct signer *s, int n, double *best)
{
    double *each = calloc((size_t)n, sizeof(double)), med;

    if (!each)
        return -1;
    for (int i = 0; i < n; i++) {
        struct lds l;
        double t0 = now_ms();
        if (lds_build(&holder, s, &l) != 0) {
            free(each);
            return -1;
        }
        each[i] = now_ms() - t0;
        lds_free(&l);
    }
    qsort(each, (size_t)n, sizeof(double), cmp_double);
    med = each[n / 2];
    *best = each[0];
    free(each);
    return med;
}

/* A certificate from the test CSCA for the token key's public key. */
static int issue(EVP_PKEY *pub, const char *path)
{
    char p[128];
    FILE *f;
    X509 *ca = NULL, *x = X509_new();
    EVP_PKEY *cakey = NULL;
    X509_EXTENSION *ext = NULL;
    int r = -1;

    snprintf(p, sizeof(p), "%s/csca.pem", dir);
    if ((f = fopen(p, "r"))) {
        ca = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    snprintf(p, sizeof(p), "%s/csca.key", dir);
    if ((f = fopen(p, "r"))) {
        cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    ext = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, "critical,digitalSignature");
    if (!ca || !cakey || !x || !ext)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pub);
    X509_set_subject_name(x, X509_get_subject_name(ca));
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    X509_add_ext(x, ext, -1);
    if (X509_sign(x, cakey, EVP_sha256()) <= 0 || !(f = fopen(path, "w")))
        goto out;
    r = PEM_write_X509(f, x) == 1 ? 0 : -1;
    fclose(f);
out:
    X509_EXTENSION_free(ext);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    return r;
}

/* A key of the given type on the token, and its certificate at cert. */
static int token_key(const char *module, const char *pin, bool rsa, const char *cert)
{
    struct p11_config pc = {
        .module = module, .token = "cardd-ds", .key_label = "ds", .pin_file = pin
    };
    struct p11_token t;
    struct p11_key k;
    EVP_PKEY *pub = NULL;
    int r = p11_token_open(&t, &pc);

    if (!r)
        r = p11_connect(&t);
    if (!r)
        r = p11_generate(&t, rsa, &k);
    if (!r)
        r = p11_public_key(&t, &k, &pub);
    if (!r)
        r = issue(pub, cert);
    EVP_PKEY_free(pub);
    p11_token_close(&t);
    return r;
}

int main(int argc, char **argv)
{
    int cards = argc > 1 ? atoi(argv[1]) : 200;
    const char *root = getenv("CARDD_ROOT"), *m = getenv("CARDD_TEST_PKCS11_MODULE");
    const char *module = m ? m : "/usr/lib/softhsm/libsofthsm2.so";
    char cmd[400], conf[128], pin[128], key[128], cert[128];
    int status = 1;

    if (cards < 1)
        cards = 1;
    if (!mkdtemp(dir))
        return 1;
    snprintf(cmd, sizeof(cmd), "%s/tests/make-test-pki.sh %s && %s/tests/make-test-token.sh %s",
             root ? root : ".", dir, root ? root : ".", dir);
    if (system(cmd) != 0)
        goto out;
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(pin, sizeof(pin), "%s/pkcs11.pin", dir);

    printf("signing one card's EF.SOD (lds_build), %d cards each; median and best ms/card\n",
           cards);
    for (int rsa = 0; rsa < 2; rsa++) {
        struct signer *file = NULL, *token = NULL;
        double fb, tb, fm, tm;

        snprintf(key, sizeof(key), "%s/%s.key", dir, rsa ? "dsrsa" : "ds");
        snprintf(cert, sizeof(cert), "%s/%s.pem", dir, rsa ? "dsrsa" : "ds");
        if (signer_open(&signer_file_ops,
                        &(struct signer_file_config){ .key_path = key, .cert_path = cert },
                        &file) != 0)
            goto out;
        snprintf(cert, sizeof(cert), "%s/token-%s.pem", dir, rsa ? "rsa" : "ec");
        if (token_key(module, pin, rsa, cert) != 0 ||
            signer_open(&signer_pkcs11_ops,
                        &(struct signer_pkcs11_config){ .module = module,
                                                        .token = "cardd-ds",
                                                        .key_label = "ds",
                                                        .pin_file = pin,
                                                        .cert_path = cert },
                        &token) != 0) {
            fprintf(stderr, "bench_signer: the token key could not be set up\n");
            signer_close(file);
            goto out;
        }
        run(file, 5, &fb); /* warm-up */
        run(token, 5, &tb);
        fm = run(file, cards, &fb);
        tm = run(token, cards, &tb);
        signer_close(file);
        signer_close(token);
        if (fm <= 0 || tm <= 0)
            goto out;
        printf("%-12s file  median %6.3f best %6.3f   token (SoftHSM2)  median %6.3f best %6.3f"
               "   ratio token/file %.2f\n",
               rsa ? "RSA-2048" : "ECDSA P-256", fm, fb, tm, tb, tm / fm);
    }
    status = 0;
out:
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        status = 1;
    return status;
}
