/*
 * cli_signer.c — `cardctl signer ...` (see cli_signer.h).
 */
#include "cli_signer.h"
#include "ds.h"
#include "p11.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* Opens the configured token and logs in; says why not on stderr. */
static int open_token(const struct config *cfg, struct p11_token *t)
{
    char pin[4096];
    struct p11_config pc = {
        .module = cfg->pkcs11_module,
        .token = cfg->pkcs11_token,
        .key_label = cfg->pkcs11_key_label,
        .pin_file = pin,
    };
    int r;

    ds_pin_path(cfg, pin, sizeof(pin));
    if (!cfg->pkcs11_module[0]) {
        fprintf(stderr, "cardctl: pkcs11_module is not set in the configuration\n");
        return -EINVAL;
    }
    r = p11_token_open(t, &pc);
    if (r == -ENOENT)
        fprintf(stderr, "cardctl: no PKCS#11 module at %s or no PIN file at %s\n",
                cfg->pkcs11_module, pin);
    else if (r == -EPERM)
        fprintf(stderr,
                "cardctl: PIN file %s must be a regular file (not a link) of mode 0600 or 0400\n",
                pin);
    else if (r == -EINVAL)
        fprintf(stderr, "cardctl: %s is not a PKCS#11 module, or the PIN file %s is empty\n",
                cfg->pkcs11_module, pin);
    else if (r)
        fprintf(stderr, "cardctl: the PKCS#11 module %s did not initialise\n", cfg->pkcs11_module);
    if (!r) {
        r = p11_connect(t);
        if (r)
            fprintf(stderr, "cardctl: token '%s': %s\n", cfg->pkcs11_token, ds_strerror(r));
    }
    return r;
}

static const char *alg_name(enum signer_alg a)
{
    return a == SIGNER_ECDSA_SHA256 ? "ECDSA P-256" : a == SIGNER_RSA_SHA256 ? "RSA" : "?";
}

int cli_signer_init(const struct config *cfg, int argc, char **argv)
{
    struct p11_token t;
    struct p11_key key;
    char id[2 * P11_ID_MAX + 1];
    bool rsa = false;
    int r;

    (void)argv;
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--rsa") != 0))
        return 2;
    rsa = argc == 2;
    r = open_token(cfg, &t);
    if (!r) {
        r = p11_generate(&t, rsa, &key);
        if (r)
            fprintf(stderr, "cardctl: the token did not generate the key: %s\n", ds_strerror(r));
    }
    if (!r) {
        p11_id_hex(&key, id, sizeof(id));
        printf("key %s generated on token '%s' (%s, label '%s', sensitive, not extractable)\n", id,
               cfg->pkcs11_token, rsa ? "RSA-2048" : "ECDSA P-256", cfg->pkcs11_key_label);
        printf("next: cardctl signer csr --key-id %s --subject '/C=../O=../CN=..' OUT.csr\n", id);
    }
    p11_token_close(&t);
    return r ? 1 : 0;
}

static int parse_hex(const char *s, uint8_t *out, size_t max, size_t *len)
{
    size_t n = strlen(s);

    if (n == 0 || n % 2 || n / 2 > max)
        return -EINVAL;
    for (size_t i = 0; i < n / 2; i++)
        if (sscanf(s + 2 * i, "%2hhx", &out[i]) != 1)
            return -EINVAL;
    *len = n / 2;
    return 0;
}

/* "/C=SA/O=Bureau/CN=DS 1" as an X509_NAME. */
static X509_NAME *parse_dn(const char *dn)
{
    X509_NAME *name = X509_NAME_new();
    char *copy = strdup(dn), *save = NULL;
    int entries = 0;

    if (!name || !copy || dn[0] != '/')
        goto bad;
    for (char *part = strtok_r(copy + 1, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        char *eq = strchr(part, '=');
        if (!eq || eq == part || !eq[1])
            goto bad;
        *eq = '\0';
        if (!X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1,
                                        0))
            goto bad;
        entries++;
    }
    if (!entries)
        goto bad;
    free(copy);
    return name;
bad:
    free(copy);
    X509_NAME_free(name);
    ERR_clear_error();
    return NULL;
}

/* The one key the csr is for: --key-id, or the only key with the label. */
static int pick_key(struct p11_token *t, const char *key_id, struct p11_key *out)
{
    struct p11_key keys[P11_KEYS_MAX];
    uint8_t id[P11_ID_MAX];
    size_t n = 0, id_len = 0;
    int r = p11_find_keys(t, keys, P11_KEYS_MAX, &n);

    if (r)
        return r;
    if (key_id && parse_hex(key_id, id, sizeof(id), &id_len)) {
        fprintf(stderr, "cardctl: --key-id is the key's id in hex\n");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (key_id ? keys[i].id_len == id_len && memcmp(keys[i].id, id, id_len) == 0 : n == 1) {
            *out = keys[i];
            return 0;
        }
    }
    if (!key_id && n > 1)
        fprintf(stderr, "cardctl: %zu keys on the token; say which with --key-id (signer status)\n",
                n);
    else
        fprintf(stderr, "cardctl: no such key on the token (cardctl signer init makes one)\n");
    return -ENOENT;
}

/* Fills req (subject name, key pub) and has the token sign it with key;
 * the signature is checked against pub. Returns 0, -EIO or the token's
 * error. */
static int sign_request(struct p11_token *t, const struct p11_key *key, X509_NAME *name,
                        EVP_PKEY *pub, X509_REQ *req)
{
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    unsigned char *tbs = NULL;
    uint8_t sig[SIGNER_SIG_MAX];
    size_t sig_len = sizeof(sig);
    int r = -EIO, n;
    if (!alg || !bits || !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
        !X509_REQ_set_pubkey(req, pub))
        goto out;
    if (key->alg == SIGNER_ECDSA_SHA256)
        X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL);
    else
        X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL);
    if (!X509_REQ_set1_signature_algo(req, alg))
        goto out;
    n = i2d_re_X509_REQ_tbs(req, &tbs);
    if (n <= 0)
        goto out;
    r = p11_sign(t, key, tbs, (size_t)n, sig, &sig_len);
    if (r) {
        fprintf(stderr, "cardctl: the token did not sign: %s\n", ds_strerror(r));
        goto out;
    }
    r = -EIO;
    if (!ASN1_BIT_STRING_set(bits, sig, (int)sig_len))
        goto out;
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    if (X509_REQ_verify(req, pub) != 1) {
        fprintf(stderr, "cardctl: the request's signature does not verify\n");
        goto out;
    }
    r = 0;
out:
    OPENSSL_free(tbs);
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    return r;
}

/* Writes the request as PEM to out_path, or to stdout when NULL. */
static int write_request(X509_REQ *req, const char *out_path, const char *key_id)
{
    FILE *out = stdout;
    int r = -EIO;
    if (out_path) {
        out = fopen(out_path, "w");
        if (!out) {
            fprintf(stderr, "cardctl: %s: %s\n", out_path, strerror(errno));
            return -EIO;
        }
    }
    if (PEM_write_X509_REQ(out, req) == 1)
        r = 0;
    if (out != stdout && fclose(out) != 0)
        r = -EIO;
    if (!r && out_path)
        printf("certificate request for key %s written to %s; have the country signing CA sign it, "
               "then: cardctl signer install CERT.pem\n",
               key_id ? key_id : "on the token", out_path);
    return r;
}

int cli_signer_csr(const struct config *cfg, int argc, char **argv)
{
    const char *subject = NULL, *key_id = NULL, *out_path = NULL;
    struct p11_token t;
    struct p11_key key;
    EVP_PKEY *pub = NULL;
    X509_REQ *req = NULL;
    X509_NAME *name = NULL;
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--subject") == 0 && i + 1 < argc)
            subject = argv[++i];
        else if (strcmp(argv[i], "--key-id") == 0 && i + 1 < argc)
            key_id = argv[++i];
        else if (!out_path && argv[i][0] != '-')
            out_path = argv[i];
        else
            return 2;
    }
    if (!subject)
        return 2;
    name = parse_dn(subject);
    if (!name) {
        fprintf(stderr, "cardctl: --subject is /C=SA/O=.../CN=... (attribute=value parts)\n");
        return 2;
    }
    r = open_token(cfg, &t);
    if (!r)
        r = pick_key(&t, key_id, &key);
    if (!r && (r = p11_public_key(&t, &key, &pub)))
        fprintf(stderr, "cardctl: the token has no public key object for this key\n");
    if (r)
        goto out;
    req = X509_REQ_new();
    r = req ? sign_request(&t, &key, name, pub, req) : -EIO;
    if (!r)
        r = write_request(req, out_path, key_id);
out:
    if (r == -EIO)
        fprintf(stderr, "cardctl: the certificate request could not be made\n");
    X509_REQ_free(req);
    X509_NAME_free(name);
    EVP_PKEY_free(pub);
    p11_token_close(&t);
    ERR_clear_error();
    return r ? 1 : 0;
}

static X509 *read_cert_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    X509 *cert;

    if (!f)
        return NULL;
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    if (!cert) {
        rewind(f);
        cert = d2i_X509_fp(f, NULL);
    }
    fclose(f);
    ERR_clear_error();
    return cert;
}

/* Writes cert as PEM to path through a temporary file and rename, so a
 * station never reads half a certificate. */
static int write_cert_atomic(X509 *cert, const char *path)
{
    char tmp[4200];
    FILE *f;
    int fd, r = -EIO;

    snprintf(tmp, sizeof(tmp), "%s.new", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -errno;
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -EIO;
    }
    if (PEM_write_X509(f, cert) == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0)
        r = 0;
    if (fclose(f) != 0)
        r = -EIO;
    if (!r && rename(tmp, path) != 0)
        r = -errno;
    if (r)
        unlink(tmp);
    return r;
}

int cli_signer_install(const struct config *cfg, int argc, char **argv)
{
    struct p11_token t;
    struct p11_key key;
    char why[160], path[4096], id[2 * P11_ID_MAX + 1];
    X509 *cert;
    int r;

    if (argc != 2)
        return 2;
    cert = read_cert_file(argv[1]);
    if (!cert) {
        fprintf(stderr, "cardctl: %s is not a certificate (PEM or DER)\n", argv[1]);
        return 1;
    }
    r = ds_cert_usable(cert, time(NULL), why, sizeof(why));
    if (r) {
        fprintf(stderr, "cardctl: %s: %s; not installed\n", argv[1], why);
        X509_free(cert);
        return 1;
    }
    r = open_token(cfg, &t);
    if (!r) {
        r = p11_key_for_cert(&t, cert, &key);
        if (r == -ENOENT)
            fprintf(
                stderr,
                "cardctl: %s does not match any key labelled '%s' on token '%s'; not installed\n",
                argv[1], cfg->pkcs11_key_label, cfg->pkcs11_token);
        else if (r)
            fprintf(stderr, "cardctl: token '%s': %s\n", cfg->pkcs11_token, ds_strerror(r));
    }
    if (!r) {
        ds_cert_path(cfg, path, sizeof(path));
        r = write_cert_atomic(cert, path);
        if (r)
            fprintf(stderr, "cardctl: cannot write %s: %s\n", path, strerror(-r));
    }
    if (!r) {
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        p11_id_hex(&key, id, sizeof(id));
        printf("installed %s for key %s: %s; stations sign with it from their next card\n", path,
               id, subject);
    }
    p11_token_close(&t);
    X509_free(cert);
    return r ? 1 : 0;
}

static void print_time(const char *what, time_t t)
{
    char buf[32];
    struct tm tm;

    if (gmtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm))
        printf("  %-14s %s\n", what, buf);
}

int cli_signer_status(const struct config *cfg, int argc, char **argv)
{
    struct ds_cert_info info;
    struct p11_token t;
    struct p11_token_info ti;
    struct p11_key keys[P11_KEYS_MAX];
    size_t n = 0;
    X509 *cert = NULL;
    char path[4096], why[256];
    time_t now = time(NULL);
    bool in_use_found = false;
    int r, status = 0;

    (void)argv;
    if (argc != 1)
        return 2;
    printf("signer %s\n", cfg->signer);
    if (ds_config_check(cfg, why, sizeof(why)) != 0) {
        printf("  %-14s %s\n", "refused", why);
        status = 1;
    }
    ds_cert_path(cfg, path, sizeof(path));
    r = ds_cert_read(cfg, now, &info);
    printf("certificate %s\n", path);
    if (r == -ENOENT || r == -EINVAL) {
        printf("  %-14s %s\n", "problem", info.why);
        status = 1;
    } else {
        printf("  %-14s %s\n  %-14s %s\n  %-14s %s\n", "subject", info.subject, "issuer",
               info.issuer, "serial", info.serial);
        print_time("not before", info.not_before);
        print_time("not after", info.not_after);
        printf("  %-14s %ld\n", "days left", (long)((info.not_after - now) / 86400));
        printf("  %-14s %s\n", "usable", r ? info.why : "yes");
        if (!r && info.not_after - now < (time_t)cfg->ds_cert_warn_days * 86400)
            printf("  %-14s expires within %d days: install its successor\n", "warning",
                   cfg->ds_cert_warn_days);
        if (r)
            status = 1;
        cert = read_cert_file(path);
    }
    if (strcmp(cfg->signer, "pkcs11") != 0)
        goto out;
    printf("module %s\n", cfg->pkcs11_module);
    if (open_token(cfg, &t) != 0) {
        status = 1;
        goto out_token;
    }
    if (p11_token_info(&t, &ti) == 0)
        printf("token %s\n  %-14s %s\n  %-14s %s\n  %-14s %s\n", ti.label, "manufacturer",
               ti.manufacturer, "model", ti.model, "serial", ti.serial);
    if (p11_find_keys(&t, keys, P11_KEYS_MAX, &n) != 0)
        status = 1;
    printf("keys labelled '%s': %zu\n", cfg->pkcs11_key_label, n);
    for (size_t i = 0; i < n; i++) {
        char id[2 * P11_ID_MAX + 1];
        bool in_use = cert && p11_key_matches(&t, &keys[i], cert) == 1;
        p11_id_hex(&keys[i], id, sizeof(id));
        printf("  %-16s %-12s sensitive=%s extractable=%s%s\n", id, alg_name(keys[i].alg),
               keys[i].sensitive ? "yes" : "no", keys[i].extractable ? "yes" : "no",
               in_use ? "  (the certificate's key: in use)" : "");
        in_use_found |= in_use;
    }
    if (cert && !in_use_found) {
        printf("  no key on the token matches the certificate\n");
        status = 1;
    }
out_token:
    p11_token_close(&t);
out:
    X509_free(cert);
    return status;
}
