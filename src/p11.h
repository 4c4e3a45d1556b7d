/*
 * p11.h — a PKCS#11 token, reached through a module loaded at run time
 * (dlopen), for the Document Signer: the service's signer
 * (signer_pkcs11.c) and the operator's `cardctl signer` commands use it.
 *
 * The module is loaded and initialised once per process (with the
 * operating system's locking, so several threads may use it) and shared;
 * each struct p11_token holds its own session, so one per thread. The user
 * PIN is read from a file with the key file's rules and kept in memory
 * only to log in again after the token came back; it is never logged.
 */
#ifndef CARDD_P11_H
#define CARDD_P11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "signer.h"

#define P11_PIN_MAX   128
#define P11_KEYS_MAX  16
#define P11_ID_MAX    32
#define P11_LABEL_MAX 64

struct p11_config {
    const char *module;    /* path of the PKCS#11 module (.so) */
    const char *token;     /* token label */
    const char *key_label; /* CKA_LABEL of the Document Signer keys */
    const char *pin_file;  /* the user PIN: regular file, no symlink, mode 0600/0400 */
};

struct p11_token {
    const struct p11_fns *fns; /* the loaded module; NULL until p11_token_open */
    char module[256], token[33], key_label[P11_LABEL_MAX];
    char pin[P11_PIN_MAX];
    size_t pin_len;
    unsigned long slot;
    unsigned long session;    /* 0: none open */
    unsigned long generation; /* of the module when the session was opened */
};

/* A private key of the token with the configured label. */
struct p11_key {
    unsigned long handle;
    uint8_t id[P11_ID_MAX]; /* CKA_ID */
    size_t id_len;
    enum signer_alg alg;
    bool sensitive, extractable; /* CKA_SENSITIVE, CKA_EXTRACTABLE */
};

/* Reads a PIN file: a regular file, not a symbolic link (checked on the
 * opened descriptor), closed to group and others; one line. Returns 0,
 * -ENOENT, -EPERM (too open or a link), -EINVAL (empty, too long). */
int p11_pin_read(const char *path, char *pin, size_t size, size_t *len);

/* Loads the module (once per process), reads the PIN. Does not touch the
 * token yet. Returns 0, -ENOENT (module or PIN file missing), -EPERM,
 * -EINVAL (not a PKCS#11 module), -EIO (C_Initialize failed). Call
 * p11_token_close afterwards in every case. */
int p11_token_open(struct p11_token *t, const struct p11_config *cfg);

/* Finds the token by label, opens a session and logs the user in, unless
 * a session is open already. Returns 0, -ENODEV (no token with that label
 * present), -EACCES (wrong or locked PIN), -EIO. */
int p11_connect(struct p11_token *t);

/* Whether the open session still works (the token may have gone); closes
 * it if not. Returns 0 or -ENODEV. */
int p11_check(struct p11_token *t);

/* Closes the session (the next p11_connect opens another). */
void p11_disconnect(struct p11_token *t);

/* Disconnects, wipes the PIN and releases the module. Safe on a zeroed or
 * half-opened struct. */
void p11_token_close(struct p11_token *t);

/* The token's private keys labelled key_label (at most P11_KEYS_MAX). */
int p11_find_keys(struct p11_token *t, struct p11_key *keys, size_t max, size_t *n);

/* Generates a key pair on the token: ECDSA P-256 (rsa false) or RSA-2048,
 * private key sensitive, not extractable, for signing only, with a fresh
 * random CKA_ID. Returns 0 and *key, or -EIO. */
int p11_generate(struct p11_token *t, bool rsa, struct p11_key *key);

/* The public key of a private key (from its public key object, same
 * CKA_ID). Returns 0 and *out (EVP_PKEY_free it), -ENOENT, -EIO. */
int p11_public_key(struct p11_token *t, const struct p11_key *key, EVP_PKEY **out);

/* Hashes msg with SHA-256 and signs with key; ECDSA signatures come back
 * DER encoded (Ecdsa-Sig-Value), as signer.h promises. Returns 0, -EMSGSIZE,
 * -ENODEV (token or session gone: reconnect and retry), -EIO. */
int p11_sign(struct p11_token *t, const struct p11_key *key, const uint8_t *msg, size_t len,
             uint8_t *sig, size_t *sig_len);

/* Whether key signs what cert's public key verifies (a test signature).
 * Returns 1 yes, 0 no, or p11_sign's error. */
int p11_key_matches(struct p11_token *t, const struct p11_key *key, X509 *cert);

/* The first key of the token's that matches cert. Returns 0 and *key,
 * -ENOENT (no key matches: key and certificate do not belong together),
 * or p11_sign's error. */
int p11_key_for_cert(struct p11_token *t, X509 *cert, struct p11_key *key);

/* Token facts for `cardctl signer status`. */
struct p11_token_info {
    char label[33], manufacturer[33], model[17], serial[17];
};
int p11_token_info(struct p11_token *t, struct p11_token_info *out);

/* Hex of an id ("" when empty) into out (2 * P11_ID_MAX + 1 bytes). */
void p11_id_hex(const struct p11_key *key, char *out, size_t len);

#endif
