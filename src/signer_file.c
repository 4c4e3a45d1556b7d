/*
 * signer_file.c — Document Signer key and certificate from files, through
 * OpenSSL libcrypto (see signer.h). The key file must be closed to group
 * and others; the key is never logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keyfile.h"
#include "signer.h"

struct signer_file {
    EVP_PKEY *key;
    uint8_t *cert_der;
    size_t cert_len;
    enum signer_alg alg;
};

/* OpenSSL would prompt on the terminal for an encrypted key: refuse. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Opens the key file with the checks every key file gets (keyfile.h). */
static int load_key(const char *path, EVP_PKEY **out)
{
    BIO *bio = NULL;
    int fd, r = 0;

    fd = keyfile_open(path);
    if (fd < 0)
        return fd;
    bio = BIO_new_fd(fd, BIO_NOCLOSE);
    if (!bio) {
        r = -ENOMEM;
        goto out_close;
    }
    *out = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    if (!*out)
        r = -EINVAL;
    BIO_free(bio);
out_close:
    /* Error strings may quote file content; never let them reach a log. */
    ERR_clear_error();
    close(fd);
    return r;
}

static int load_cert(const char *path, X509 **out)
{
    BIO *bio = BIO_new_file(path, "rb");
    int r = 0;

    if (!bio) {
        ERR_clear_error();
        return access(path, F_OK) ? -ENOENT : -EPERM;
    }
    *out = PEM_read_bio_X509(bio, NULL, no_password, NULL);
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

static int file_open(void *priv, const void *config)
{
    const struct signer_file_config *cfg = config;
    struct signer_file *sf = priv;
    X509 *cert = NULL;
    unsigned char *der = NULL;
    int r, n;

    if (!cfg || !cfg->key_path || !cfg->cert_path)
        return -EINVAL;
    r = load_key(cfg->key_path, &sf->key);
    if (r)
        return r;
    r = load_cert(cfg->cert_path, &cert);
    if (r)
        return r;
    if (X509_check_private_key(cert, sf->key) != 1) {
        r = -EINVAL;
        goto out_cert;
    }
    switch (EVP_PKEY_get_base_id(sf->key)) {
    case EVP_PKEY_EC:
        sf->alg = SIGNER_ECDSA_SHA256;
        break;
    case EVP_PKEY_RSA:
        sf->alg = SIGNER_RSA_SHA256;
        break;
    default:
        r = -ENOTSUP;
        goto out_cert;
    }
    n = i2d_X509(cert, &der);
    if (n <= 0) {
        r = -ENOMEM;
        goto out_cert;
    }
    sf->cert_der = malloc((size_t)n);
    if (!sf->cert_der) {
        r = -ENOMEM;
        goto out_der;
    }
    memcpy(sf->cert_der, der, (size_t)n);
    sf->cert_len = (size_t)n;
out_der:
    OPENSSL_free(der);
out_cert:
    X509_free(cert);
    ERR_clear_error();
    return r;
}

static int file_certificate(void *priv, const uint8_t **der, size_t *len)
{
    struct signer_file *sf = priv;

    *der = sf->cert_der;
    *len = sf->cert_len;
    return 0;
}

static enum signer_alg file_algorithm(void *priv)
{
    return ((struct signer_file *)priv)->alg;
}

static int file_sign(void *priv, const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len)
{
    struct signer_file *sf = priv;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t need = 0;
    int r = -EIO;

    if (!md)
        return -ENOMEM;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, sf->key) != 1 ||
        EVP_DigestSign(md, NULL, &need, msg, len) != 1)
        goto out;
    if (need > *sig_len) {
        r = -EMSGSIZE;
        goto out;
    }
    need = *sig_len;
    if (EVP_DigestSign(md, sig, &need, msg, len) != 1)
        goto out;
    *sig_len = need;
    r = 0;
out:
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return r;
}

static void file_close(void *priv)
{
    struct signer_file *sf = priv;

    EVP_PKEY_free(sf->key); /* OpenSSL wipes the key material */
    sf->key = NULL;
    free(sf->cert_der);
    sf->cert_der = NULL;
}

const struct signer_ops signer_file_ops = {
    .name = "file",
    .priv_size = sizeof(struct signer_file),
    .open = file_open,
    .certificate = file_certificate,
    .algorithm = file_algorithm,
    .sign = file_sign,
    .close = file_close,
};
