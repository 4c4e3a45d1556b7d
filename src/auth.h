/* auth.h — API tokens, couriers' signing secrets and request signatures.
 * Tokens and secrets are never stored or logged in clear: the database keeps
 * the SHA-256 of a token, and a courier's secret is derived on demand from
 * the master key and a stored salt. */
#ifndef CARDD_AUTH_H
#define CARDD_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define AUTH_TOKEN_LEN      54 /* "cdt_" + 50 characters */
#define AUTH_SECRET_HEX_LEN 64
#define AUTH_MAX_SKEW_S     300

/* Makes a new random token. Returns 0 or -EIO. */
int auth_token_new(char out[AUTH_TOKEN_LEN + 1]);

/* SHA-256 of a token, as stored. */
void auth_token_hash(const char *token, uint8_t out[32]);

/* ROLE_* bit for a role name, or 0. */
unsigned auth_role_bit(const char *name);
/* Name of one ROLE_* bit, or "?". */
const char *auth_role_name(unsigned role);

/* Finds the identity behind a bearer token. Returns 0, -ENOENT for an
 * unknown or revoked token, or a DB_* code. */
int auth_lookup(struct db *db, const char *token, struct identity *who);

/* Creates a token for role and name; the database keeps only its hash.
 * out receives the token, to be shown once. Returns 0, DB_ECONFLICT when the
 * name is taken, -EINVAL for a bad role, or a DB_* code. */
int auth_token_create(struct db *db, const char *role, const char *name,
                      char out[AUTH_TOKEN_LEN + 1], long *token_id);

/* Reads the 32-byte master key (64 hex digits) from a file that must not
 * be readable by group or others. Returns 0, -ENOENT, -EPERM or -EINVAL. */
/* Whether name is an operator (or admin) whose token is not revoked: the
 * witness of a destruction. Returns 1, 0 or a DB_* code. */
int auth_operator_active(struct db *db, const char *name);

int auth_load_master_key(const char *path, uint8_t key[32]);

/* Writes a new master key file with mode 0600; refuses to overwrite. */
int auth_create_master_key(const char *path);

/* A courier's signing secret: hex HMAC-SHA256(master, "courier-secret:" name ":" salt). */
void auth_courier_secret(const uint8_t master[32], const char *courier, const uint8_t salt[16],
                         char out[AUTH_SECRET_HEX_LEN + 1]);

/* Checks an X-Signature header "t=<unix>,v1=<hex>" over "<t>.<body>" with the
 * secret, in constant time, and the timestamp within AUTH_MAX_SKEW_S of now.
 * Returns 0, -EINVAL (malformed or missing), -ETIME (skew) or -EACCES (mismatch). */
int auth_verify_signature(const char *header, const char *body, size_t body_len, const char *secret,
                          long now);

/* Builds the header value for a body (used by couriers' tests and tools). */
void auth_sign(const char *secret, long t, const char *body, size_t body_len, char *out,
               size_t outlen);

#endif
