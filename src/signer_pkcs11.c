/*
 * signer_pkcs11.c — the Document Signer key on a PKCS#11 token (see
 * signer.h and p11.h). The key never leaves the token; the certificate is a
 * file (written by `cardctl signer install`), and the key used is the
 * token's key that matches it.
 *
 * One signer per thread (each station worker opens its own): it holds its
 * own session. When the certificate file is replaced (a roll-over), the
 * next call to ops->certificate takes the new certificate and its key
 * together, so a card carries the certificate of the key that signed it.
 * A session that stopped working (token removed, module reset) is closed
 * and opened again, with a new login, at the next call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11.h"
#include "signer.h"

#define RETRY_US 50000

struct signer_pkcs11 {
    struct p11_token t;
    char cert_path[4096];
    struct stat cert_st; /* of the file the certificate below came from */
    X509 *cert;
    uint8_t *cert_der;
    size_t cert_len;
    struct p11_key key;
    bool have_key; /* key matches cert, in the current session */
};

static int read_cert(const char *path, X509 **out, struct stat *st)
{
    BIO *bio = NULL;
    FILE *f = fopen(path, "rb");
    int r = 0;

    if (!f)
        return errno == ENOENT ? -ENOENT : -EPERM;
    if (fstat(fileno(f), st) || !S_ISREG(st->st_mode)) {
        fclose(f);
        return -EINVAL;
    }
    bio = BIO_new_fp(f, BIO_CLOSE);
    if (!bio) {
        fclose(f);
        return -ENOMEM;
    }
    *out = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!*out) {
        (void)BIO_reset(bio);
        *out = d2i_X509_bio(bio, NULL);
    }
    if (!*out)
        r = -EINVAL;
    BIO_free(bio);
    ERR_clear_error();
    return r;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Takes the certificate file when it changed since it was read. */
static int load_cert(struct signer_pkcs11 *sp)
{
    struct stat st;
    X509 *cert = NULL;
    unsigned char *der = NULL;
    uint8_t *copy;
    int n, r;

    if (sp->cert && stat(sp->cert_path, &st) == 0 && same_file(&st, &sp->cert_st))
        return 0;
    r = read_cert(sp->cert_path, &cert, &st);
    if (r)
        return r;
    n = i2d_X509(cert, &der);
    copy = n > 0 ? malloc((size_t)n) : NULL;
    if (!copy) {
        OPENSSL_free(der);
        X509_free(cert);
        return -ENOMEM;
    }
    memcpy(copy, der, (size_t)n);
    OPENSSL_free(der);
    X509_free(sp->cert);
    free(sp->cert_der);
    sp->cert = cert;
    sp->cert_der = copy;
    sp->cert_len = (size_t)n;
    sp->cert_st = st;
    sp->have_key = false;
    return 0;
}

/* A working session, logged in, and the key of the current certificate. */
static int ready_once(struct signer_pkcs11 *sp)
{
    int r = load_cert(sp);

    if (r)
        return r;
    if (sp->t.session && p11_check(&sp->t) != 0)
        sp->have_key = false;
    r = p11_connect(&sp->t);
    if (r)
        return r;
    if (!sp->have_key) {
        r = p11_key_for_cert(&sp->t, sp->cert, &sp->key);
        if (r == -ENOENT)
            return -EINVAL; /* no key of the token's belongs to the certificate */
        if (r)
            return r;
        sp->have_key = true;
    }
    return 0;
}

/* A module may fail a call for a moment while another process (cardctl
 * generating a key) writes the token: one more try on a new session
 * before the token counts as gone. */
static int ready(struct signer_pkcs11 *sp)
{
    int r = ready_once(sp);

    if (r == -ENODEV || r == -EIO) {
        p11_disconnect(&sp->t);
        sp->have_key = false;
        usleep(RETRY_US);
        r = ready_once(sp);
    }
    return r;
}

static int p11s_open(void *priv, const void *config)
{
    const struct signer_pkcs11_config *cfg = config;
    struct signer_pkcs11 *sp = priv;
    struct p11_config pc;
    int r;

    if (!cfg || !cfg->cert_path || strlen(cfg->cert_path) >= sizeof(sp->cert_path))
        return -EINVAL;
    pc = (struct p11_config){ .module = cfg->module,
                              .token = cfg->token,
                              .key_label = cfg->key_label,
                              .pin_file = cfg->pin_file };
    snprintf(sp->cert_path, sizeof(sp->cert_path), "%s", cfg->cert_path);
    r = p11_token_open(&sp->t, &pc);
    if (r)
        return r;
    return ready(sp);
}

static int p11s_certificate(void *priv, const uint8_t **der, size_t *len)
{
    struct signer_pkcs11 *sp = priv;
    int r = ready(sp);

    if (r)
        return r;
    *der = sp->cert_der;
    *len = sp->cert_len;
    return 0;
}

static enum signer_alg p11s_algorithm(void *priv)
{
    return ((struct signer_pkcs11 *)priv)->key.alg;
}

static int p11s_sign(void *priv, const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len)
{
    struct signer_pkcs11 *sp = priv;
    X509 *cert = sp->cert;
    int r;

    if (!sp->have_key || !sp->t.session)
        return -ENODEV; /* ops->certificate first: it picks the key */
    r = p11_sign(&sp->t, &sp->key, msg, len, sig, sig_len);
    if (r == 0 || r == -EMSGSIZE)
        return r;
    /* The session broke: once more on a new one, with the same
     * certificate's key (handles may differ in the new session). */
    p11_disconnect(&sp->t);
    sp->have_key = false;
    usleep(RETRY_US);
    r = p11_connect(&sp->t);
    if (!r)
        r = p11_key_for_cert(&sp->t, cert, &sp->key);
    if (!r) {
        sp->have_key = true;
        r = p11_sign(&sp->t, &sp->key, msg, len, sig, sig_len);
    }
    return r == -ENOENT ? -EINVAL : r;
}

static void p11s_close(void *priv)
{
    struct signer_pkcs11 *sp = priv;

    p11_token_close(&sp->t);
    X509_free(sp->cert);
    sp->cert = NULL;
    free(sp->cert_der);
    sp->cert_der = NULL;
}

const struct signer_ops signer_pkcs11_ops = {
    .name = "pkcs11",
    .priv_size = sizeof(struct signer_pkcs11),
    .open = p11s_open,
    .certificate = p11s_certificate,
    .algorithm = p11s_algorithm,
    .sign = p11s_sign,
    .close = p11s_close,
};
