/*
 * ds.h — the service's Document Signer: the implementation the
 * configuration names (signer.h: a PKCS#11 token, or the key file for
 * development), the rule that production does not sign from a file, and
 * the life of the certificate (<keys_dir>/ds.pem): valid now, expiring,
 * replaced while running.
 */
#ifndef CARDD_DS_H
#define CARDD_DS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "config.h"
#include "signer.h"

/* Whether the configuration may sign: signer is "pkcs11" (with a module
 * set) or "file" with allow_file_signer = 1. Returns 0, or -EPERM / -EINVAL
 * with why filled in. */
int ds_config_check(const struct config *cfg, char *why, size_t len);

/* Opens the configured signer (one per thread; see signer_pkcs11.c).
 * Returns 0 or the signer's error (signer.h), or ds_config_check's. */
int ds_open(const struct config *cfg, struct signer **out);

/* One line saying what a ds_open or signing error means, for logs and
 * the operator ("token 'cardd-ds' not present", "PIN refused", ...). */
const char *ds_strerror(int err);

/* <keys_dir>/ds.pem, and the PIN file the configuration names. */
void ds_cert_path(const struct config *cfg, char *buf, size_t len);
void ds_pin_path(const struct config *cfg, char *buf, size_t len);

/* The checks a Document Signer certificate must pass to be used at 'now':
 * inside its validity, key usage digitalSignature (and no other than
 * nonRepudiation). Returns 0, or -EKEYEXPIRED / -EKEYREJECTED (not valid
 * yet or wrong key usage) with why filled in. */
int ds_cert_usable(X509 *cert, time_t now, char *why, size_t len);

/* What the certificate file holds, as /readyz, /metrics and `cardctl
 * signer status` report it. */
struct ds_cert_info {
    int status; /* 0 usable; -ENOENT no file; -EINVAL unreadable; ds_cert_usable's errors */
    char why[160];
    char subject[256], issuer[256], serial[80];
    time_t not_before, not_after;
};

/* Reads and checks the certificate file at 'now'. Returns info->status. */
int ds_cert_read(const struct config *cfg, time_t now, struct ds_cert_info *info);

/* Logs a warning when the certificate expires within ds_cert_warn_days
 * (an error when it is not usable), at most once an hour per process. */
void ds_cert_watch(const struct config *cfg);

/* The certificate's gauges in the Prometheus text format (malloc'd). */
char *ds_metrics(const struct config *cfg);

#endif
