/*
 * ds.c — the service's Document Signer (see ds.h).
 */
#define _GNU_SOURCE /* asprintf, timegm */
#include "ds.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

void ds_cert_path(const struct config *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s/ds.pem", cfg->keys_dir);
}

void ds_pin_path(const struct config *cfg, char *buf, size_t len)
{
    if (cfg->pkcs11_pin_file && cfg->pkcs11_pin_file[0])
        snprintf(buf, len, "%s", cfg->pkcs11_pin_file);
    else
        snprintf(buf, len, "%s/pkcs11.pin", cfg->keys_dir);
}

int ds_config_check(const struct config *cfg, char *why, size_t len)
{
    if (strcmp(cfg->signer, "pkcs11") == 0) {
        if (!cfg->pkcs11_module[0]) {
            snprintf(why, len, "signer = pkcs11 needs pkcs11_module (the HSM's PKCS#11 module)");
            return -EINVAL;
        }
        return 0;
    }
    if (strcmp(cfg->signer, "file") == 0) {
        if (cfg->allow_file_signer)
            return 0;
        snprintf(why, len,
                 "signer = file keeps the Document Signer key in a file, for development only;"
                 " set signer = pkcs11, or allow_file_signer = 1 to accept it");
        return -EPERM;
    }
    snprintf(why, len, "signer is '%s'; it must be pkcs11 or file", cfg->signer);
    return -EINVAL;
}

/* A PIN the token refused is not tried again until the PIN file changes:
 * a token locks its PIN after a few wrong tries, and stations ask every
 * second. */
static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stat pin_refused;
static bool pin_was_refused;

static bool pin_unchanged_since_refused(const char *path)
{
    struct stat st;
    bool same;

    pthread_mutex_lock(&pin_lock);
    same = pin_was_refused && stat(path, &st) == 0 && st.st_ino == pin_refused.st_ino &&
           st.st_dev == pin_refused.st_dev && st.st_size == pin_refused.st_size &&
           st.st_mtim.tv_sec == pin_refused.st_mtim.tv_sec &&
           st.st_mtim.tv_nsec == pin_refused.st_mtim.tv_nsec;
    pthread_mutex_unlock(&pin_lock);
    return same;
}

static void pin_refused_now(const char *path, bool refused)
{
    pthread_mutex_lock(&pin_lock);
    pin_was_refused = refused && stat(path, &pin_refused) == 0;
    pthread_mutex_unlock(&pin_lock);
}

int ds_open(const struct config *cfg, struct signer **out)
{
    char why[256], cert[4096], key[4096], pin[4096];
    int r = ds_config_check(cfg, why, sizeof(why));

    *out = NULL;
    if (r)
        return r;
    ds_cert_path(cfg, cert, sizeof(cert));
    if (strcmp(cfg->signer, "file") == 0) {
        snprintf(key, sizeof(key), "%s/ds.key", cfg->keys_dir);
        struct signer_file_config fc = { .key_path = key, .cert_path = cert };
        return signer_open(&signer_file_ops, &fc, out);
    }
    ds_pin_path(cfg, pin, sizeof(pin));
    struct signer_pkcs11_config pc = {
        .module = cfg->pkcs11_module,
        .token = cfg->pkcs11_token,
        .key_label = cfg->pkcs11_key_label,
        .pin_file = pin,
        .cert_path = cert,
    };
    if (pin_unchanged_since_refused(pin))
        return -EACCES;
    r = signer_open(&signer_pkcs11_ops, &pc, out);
    if (r == -EACCES)
        pin_refused_now(pin, true);
    else if (r == 0)
        pin_refused_now(pin, false);
    return r;
}

const char *ds_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case -ENODEV:
        return "the token is not present (HSM unreachable or token removed)";
    case -EACCES:
        return "the token refused the PIN";
    case -ENOENT:
        return "no certificate, key, PIN file or PKCS#11 module where the configuration says";
    case -EPERM:
        return "a key or PIN file is open to others or a symbolic link, or the file signer is not "
               "allowed";
    case -EINVAL:
        return "the certificate does not match the signing key, or a file is unreadable";
    case -ENOTSUP:
        return "the key type is not supported";
    case -EBUSY:
        return "another PKCS#11 module is loaded already";
    case -ENOMEM:
        return "out of memory";
    default:
        return "the token or its library failed";
    }
}

static void name_line(X509_NAME *n, char *buf, size_t len)
{
    if (!X509_NAME_oneline(n, buf, (int)len))
        snprintf(buf, len, "?");
}

int ds_cert_usable(X509 *cert, time_t now, char *why, size_t len)
{
    uint32_t ku;

    if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0) {
        snprintf(why, len, "the certificate is not valid yet");
        return -EKEYREJECTED;
    }
    if (X509_cmp_time(X509_get0_notAfter(cert), &now) <= 0) {
        snprintf(why, len, "the certificate has expired");
        return -EKEYEXPIRED;
    }
    ku = X509_get_key_usage(cert);
    if (ku == UINT32_MAX || !(ku & KU_DIGITAL_SIGNATURE) ||
        (ku & ~(uint32_t)(KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))) {
        snprintf(why, len, "the certificate's key usage is not digitalSignature");
        return -EKEYREJECTED;
    }
    return 0;
}

static time_t asn1_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

int ds_cert_read(const struct config *cfg, time_t now, struct ds_cert_info *info)
{
    char path[4096];
    BIGNUM *bn = NULL;
    char *hex = NULL;
    X509 *cert = NULL;
    FILE *f;

    memset(info, 0, sizeof(*info));
    ds_cert_path(cfg, path, sizeof(path));
    f = fopen(path, "rb");
    if (!f) {
        snprintf(info->why, sizeof(info->why), "no Document Signer certificate at %.120s", path);
        return info->status = -ENOENT;
    }
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    if (!cert) {
        rewind(f);
        cert = d2i_X509_fp(f, NULL);
    }
    fclose(f);
    ERR_clear_error();
    if (!cert) {
        snprintf(info->why, sizeof(info->why), "%.120s is not a certificate", path);
        return info->status = -EINVAL;
    }
    name_line(X509_get_subject_name(cert), info->subject, sizeof(info->subject));
    name_line(X509_get_issuer_name(cert), info->issuer, sizeof(info->issuer));
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(info->serial, sizeof(info->serial), "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
    info->not_before = asn1_time(X509_get0_notBefore(cert));
    info->not_after = asn1_time(X509_get0_notAfter(cert));
    info->status = ds_cert_usable(cert, now, info->why, sizeof(info->why));
    X509_free(cert);
    ERR_clear_error();
    return info->status;
}

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t watch_last;

void ds_cert_watch(const struct config *cfg)
{
    struct ds_cert_info info;
    time_t now = time(NULL);
    bool due;

    pthread_mutex_lock(&watch_lock);
    due = watch_last == 0 || now - watch_last >= 3600;
    if (due)
        watch_last = now;
    pthread_mutex_unlock(&watch_lock);
    if (!due)
        return;
    if (ds_cert_read(cfg, now, &info) != 0) {
        log_error("Document Signer certificate: %s; stations cannot sign", info.why);
        return;
    }
    long days = (long)((info.not_after - now) / 86400);
    if (info.not_after - now < (time_t)cfg->ds_cert_warn_days * 86400)
        log_warn("Document Signer certificate %s (serial %s) expires in %ld day(s): install its "
                 "successor (cardctl signer init, csr, install)",
                 info.subject, info.serial, days);
}

char *ds_metrics(const struct config *cfg)
{
    struct ds_cert_info info;
    time_t now = time(NULL);
    char *out = NULL;
    int r = ds_cert_read(cfg, now, &info);
    bool present = r == 0 || r == -EKEYEXPIRED || r == -EKEYREJECTED;
    long left = present ? (long)(info.not_after - now) : 0;

    if (asprintf(
            &out,
            "# HELP cardd_ds_certificate_valid 1 when the Document Signer certificate is "
            "present and usable now.\n"
            "# TYPE cardd_ds_certificate_valid gauge\n"
            "cardd_ds_certificate_valid %d\n"
            "# HELP cardd_ds_certificate_expiry_seconds Seconds until the Document Signer "
            "certificate expires (0 without one).\n"
            "# TYPE cardd_ds_certificate_expiry_seconds gauge\n"
            "cardd_ds_certificate_expiry_seconds %ld\n"
            "# HELP cardd_ds_certificate_expiring 1 when it expires within ds_cert_warn_days.\n"
            "# TYPE cardd_ds_certificate_expiring gauge\n"
            "cardd_ds_certificate_expiring %d\n",
            r == 0, left, present && left < (long)cfg->ds_cert_warn_days * 86400 ? 1 : 0) < 0)
        return NULL;
    return out;
}
