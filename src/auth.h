/* auth.h — API tokens, couriers' signing secrets and request signatures.
 * Tokens and secrets are never stored or logged in clear: the database keeps
 * the SHA-256 of a token, and a courier's secret is derived on demand from
 * the master key and a stored salt, and so is the approval platform's. */
#ifndef CARDD_AUTH_H
#define CARDD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct db_res;

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

#define AUTH_MAX_EXPIRY_DAYS 3650

/* Finds the identity behind a bearer token and notes its use (at most once
 * a minute). Returns 0, -ENOENT for an unknown, revoked or expired token,
 * or a DB_* code. Nothing is cached: a revocation holds from the next call. */
int auth_lookup(struct db *db, const char *token, struct identity *who);

/* Creates a token for role and name; the database keeps only its hash.
 * out receives the token, to be shown once. Returns 0, DB_ECONFLICT when the
 * name is taken, -EINVAL for a bad role, or a DB_* code. */
int auth_token_create(struct db *db, const char *role, const char *name,
                      char out[AUTH_TOKEN_LEN + 1], long *token_id);

/* The same with a branch (required for, and only for, role branch; an
 * unknown branch is DB_EINVALID) and a life of expires_days days (0: no
 * end; at most AUTH_MAX_EXPIRY_DAYS). */
int auth_token_create_for(struct db *db, const char *role, const char *name, const char *branch,
                          int expires_days, char out[AUTH_TOKEN_LEN + 1], long *token_id);

/* Revokes the token called name, at once. Returns 0 (also when it was
 * revoked already), -ENOENT when there is none, or a DB_* code. */
int auth_token_revoke(struct db *db, const char *name);

/* Every token, oldest first: name, role, branch, created, last used,
 * expires, revoked (RFC 3339 or NULL). */
enum {
    TOKEN_COL_NAME,
    TOKEN_COL_ROLE,
    TOKEN_COL_BRANCH,
    TOKEN_COL_CREATED,
    TOKEN_COL_LAST_USED,
    TOKEN_COL_EXPIRES,
    TOKEN_COL_REVOKED
};
int auth_token_list(struct db *db, struct db_res **res);

/* Whether who may act at branch_id: admin anywhere, a branch token only at
 * its own branch, no other role. */
bool auth_may_act_at_branch(const struct identity *who, const char *branch_id);

/* Dual control: the second person's countersignature, an
 * "X-Witness-Authorization: Bearer <token>" value (or a bare token typed at
 * cardctl). The token must be an operator's or an admin's, and not the
 * caller's own (caller may be NULL for a caller with no token, as cardctl's
 * Unix user). Returns 0 with witness filled, -EACCES (missing, unknown,
 * revoked, expired, not an operator, or the caller's own; why names which)
 * or a DB_* code. */
int auth_witness(struct db *db, const char *credential, const struct identity *caller,
                 struct identity *witness, const char **why);

/* Decodes exactly 2 * len hex digits into out. Returns 0 or -EINVAL. */
int auth_hex_decode(const char *hex, uint8_t *out, size_t len);

/* Reads a secret key of len bytes (at most AUTH_KEY_FILE_MAX) from a key
 * file with the checks every key file gets (keyfile.h: a regular file
 * reached without a symlink, the service's own, readable by no one else):
 * exactly 2*len hex digits, optionally followed by a line end. The text read
 * is wiped, and so is key on failure. Returns 0, -ENOENT, -EPERM (a symlink,
 * another owner, or open to others), -EIO (cannot read) or -EINVAL (not a
 * regular file, or its contents). */
#define AUTH_KEY_FILE_MAX 64
int auth_load_key_file(const char *path, uint8_t *key, size_t len);

/* Reads the 32-byte master key (64 hex digits) with auth_load_key_file. */
int auth_load_master_key(const char *path, uint8_t key[32]);

/* Writes a new master key file with mode 0600; refuses to overwrite. */
int auth_create_master_key(const char *path);

/* A courier's signing secret: hex HMAC-SHA256(master, "courier-secret:" name ":" salt). */
void auth_courier_secret(const uint8_t master[32], const char *courier, const uint8_t salt[16],
                         char out[AUTH_SECRET_HEX_LEN + 1]);

/* Adds a courier, in the caller's transaction: its token (role courier,
 * named name) and the salt of its signing secret. token and secret receive
 * the token and the secret derived from master, to be shown once; neither is
 * stored. Returns 0, DB_ECONFLICT when a courier or token has that name,
 * -EINVAL for a bad name, -EIO, or a DB_* code. */
int auth_courier_create(struct db *db, const uint8_t master[32], const char *name,
                        char token[AUTH_TOKEN_LEN + 1], char secret[AUTH_SECRET_HEX_LEN + 1]);

/* Whether any courier exists (*any). Returns 0 or a DB_* code. */
int auth_couriers_exist(struct db *db, bool *any);

/* The approval platform's signing secret, for status callbacks:
 * hex HMAC-SHA256(master, "platform-secret:" salt). */
void auth_platform_secret(const uint8_t master[32], const uint8_t salt[16],
                          char out[AUTH_SECRET_HEX_LEN + 1]);

/* Checks an X-Signature header "t=<unix>,v1=<hex>" over "<t>.<body>" with the
 * secret, in constant time, and the timestamp within AUTH_MAX_SKEW_S of now.
 * Returns 0, -EINVAL (malformed or missing), -ETIME (skew) or -EACCES (mismatch). */
int auth_verify_signature(const char *header, const char *body, size_t body_len, const char *secret,
                          long now);

/* What a courier call signs after "<t>.": its raw body, or for a call
 * without one (GET) "GET <path>", so that a signature is good for that one
 * resource only. Returns a NUL-terminated copy (free it), its length in
 * *len, or NULL. */
char *auth_signed_text(const char *method, const char *path, const char *body, size_t body_len,
                       size_t *len);

/* Builds the header value for a text (used by couriers' tests and tools). */
void auth_sign(const char *secret, long t, const char *body, size_t body_len, char *out,
               size_t outlen);

#endif
