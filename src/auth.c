/* auth.c — tokens, derived courier secrets and HMAC signatures (OpenSSL). */
#include "auth.h"
#include "db.h"
#include "keyfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

int auth_token_new(char out[AUTH_TOKEN_LEN + 1])
{
    uint8_t raw[50];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    memcpy(out, "cdt_", 4);
    for (size_t i = 0; i < sizeof(raw); i++)
        out[4 + i] = b32[raw[i] & 31]; /* 250 bits of entropy */
    out[AUTH_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

void auth_token_hash(const char *token, uint8_t out[32])
{
    unsigned int len = 0;
    EVP_Digest(token, strlen(token), out, &len, EVP_sha256(), NULL);
}

static const struct {
    const char *name;
    unsigned bit;
} roles[] = {
    { "intake", ROLE_INTAKE }, { "operator", ROLE_OPERATOR }, { "courier", ROLE_COURIER },
    { "branch", ROLE_BRANCH }, { "admin", ROLE_ADMIN },
};

unsigned auth_role_bit(const char *name)
{
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(roles[i].name, name) == 0)
            return roles[i].bit;
    return 0;
}

const char *auth_role_name(unsigned role)
{
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (roles[i].bit == role)
            return roles[i].name;
    return "?";
}

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

static const struct db_stmt auth_lookup_stmt = {
    "auth_lookup_stmt",
    "WITH t AS (SELECT id, role, name, branch, last_used_at FROM api_tokens"
    "  WHERE token_hash = $1::bytea AND revoked_at IS NULL"
    "  AND (expires_at IS NULL OR expires_at > now())),"
    " u AS (UPDATE api_tokens a SET last_used_at = now() FROM t"
    "  WHERE a.id = t.id AND (t.last_used_at IS NULL"
    "  OR t.last_used_at < now() - interval '1 minute'))"
    " SELECT t.id, t.role, t.name, coalesce(t.branch, ''), c.id,"
    "  encode(c.secret_salt, 'hex')"
    " FROM t LEFT JOIN couriers c ON c.token_id = t.id",
    1,
};

int auth_lookup(struct db *db, const char *token, struct identity *who)
{
    if (strlen(token) != AUTH_TOKEN_LEN)
        return -ENOENT;
    uint8_t hash[32];
    char hex[2 + 65] = "\\x";
    auth_token_hash(token, hash);
    hex_encode(hash, 32, hex + 2);
    struct db_res *res = NULL;
    /* The use is noted in the same statement, at most once a minute, so
     * that a busy token costs no extra round trip and no extra write; a
     * courier's token brings its courier and salt along, which its signed
     * call needs next. */
    int rc = db_query_stmt(db, &res, &auth_lookup_stmt, hex);
    if (rc)
        return rc;
    if (db_rows(res) != 1) {
        db_res_free(res);
        return -ENOENT;
    }
    memset(who, 0, sizeof(*who));
    who->token_id = db_get_long(res, 0, 0, 0);
    who->role = auth_role_bit(db_get(res, 0, 1));
    snprintf(who->name, sizeof(who->name), "%s", db_get(res, 0, 2));
    snprintf(who->branch, sizeof(who->branch), "%s", db_get(res, 0, 3) ? db_get(res, 0, 3) : "");
    if (db_get(res, 0, 4) &&
        auth_hex_decode(db_get(res, 0, 5), who->courier_salt, sizeof(who->courier_salt)) == 0)
        snprintf(who->courier_id, sizeof(who->courier_id), "%s", db_get(res, 0, 4));
    db_res_free(res);
    return 0;
}

int auth_token_create(struct db *db, const char *role, const char *name,
                      char out[AUTH_TOKEN_LEN + 1], long *token_id)
{
    return auth_token_create_for(db, role, name, NULL, 0, out, token_id);
}

int auth_token_create_for(struct db *db, const char *role, const char *name, const char *branch,
                          int expires_days, char out[AUTH_TOKEN_LEN + 1], long *token_id)
{
    unsigned bit = auth_role_bit(role);
    bool has_branch = branch && branch[0];
    if (!bit || !name[0] || strlen(name) > 64 || (bit == ROLE_BRANCH) != has_branch ||
        (has_branch && strlen(branch) > 32) || expires_days < 0 ||
        expires_days > AUTH_MAX_EXPIRY_DAYS)
        return -EINVAL;
    uint8_t hash[32];
    char hex[2 + 65] = "\\x", days[16];
    int rc = auth_token_new(out);
    if (rc)
        return rc;
    auth_token_hash(out, hash);
    hex_encode(hash, 32, hex + 2);
    snprintf(days, sizeof(days), "%d", expires_days);
    struct db_res *res = NULL;
    rc = db_query(db, &res,
                  "INSERT INTO api_tokens (name, role, token_hash, branch, expires_at)"
                  " VALUES ($1, $2, $3::bytea, $4,"
                  "  CASE WHEN $5::int > 0 THEN now() + make_interval(days => $5::int) END)"
                  " RETURNING id",
                  name, role, hex, has_branch ? branch : NULL, days);
    if (rc == 0 && token_id)
        *token_id = db_get_long(res, 0, 0, 0);
    db_res_free(res);
    if (rc)
        OPENSSL_cleanse(out, AUTH_TOKEN_LEN);
    return rc;
}

int auth_token_revoke(struct db *db, const char *name)
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
                      " WHERE name = $1 RETURNING id",
                      name);
    if (!rc && db_rows(res) != 1)
        rc = -ENOENT;
    db_res_free(res);
    return rc;
}

int auth_token_list(struct db *db, struct db_res **res)
{
    return db_exec(db, res,
                   "SELECT name, role, branch, rfc3339(created_at), rfc3339(last_used_at),"
                   " rfc3339(expires_at), rfc3339(revoked_at) FROM api_tokens ORDER BY id",
                   0, NULL);
}

bool auth_may_act_at_branch(const struct identity *who, const char *branch_id)
{
    if (who->role == ROLE_ADMIN)
        return true;
    return who->role == ROLE_BRANCH && who->branch[0] && strcmp(who->branch, branch_id) == 0;
}

int auth_witness(struct db *db, const char *credential, const struct identity *caller,
                 struct identity *witness, const char **why)
{
    static const char missing[] = "A second operator must countersign with their own token in "
                                  "X-Witness-Authorization.";
    *why = missing;
    if (!credential)
        return -EACCES;
    if (strncasecmp(credential, "Bearer ", 7) == 0)
        credential += 7;
    while (*credential == ' ')
        credential++;
    if (!*credential)
        return -EACCES;
    int rc = auth_lookup(db, credential, witness);
    if (rc == -ENOENT) {
        *why = "The witness's token is not valid.";
        return -EACCES;
    }
    if (rc)
        return rc;
    if (witness->role != ROLE_OPERATOR && witness->role != ROLE_ADMIN) {
        *why = "The witness's token is not an operator's.";
        return -EACCES;
    }
    if (caller && caller->token_id == witness->token_id) {
        *why = "The witness must be a second operator, not the caller.";
        return -EACCES;
    }
    *why = NULL;
    return 0;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int auth_hex_decode(const char *hex, uint8_t *out, size_t len)
{
    if (!hex || strlen(hex) != 2 * len)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int auth_load_key_file(const char *path, uint8_t *key, size_t len)
{
    char buf[AUTH_KEY_FILE_MAX * 2 + 8];
    ssize_t n = 0;
    int rc = -EINVAL;
    if (len == 0 || len > AUTH_KEY_FILE_MAX)
        return -EINVAL;
    /* The checks every key file gets (keyfile.h), on the opened file. */
    int fd = keyfile_open(path);
    if (fd < 0) {
        OPENSSL_cleanse(key, len);
        return fd == -ENOENT || fd == -EPERM || fd == -EINVAL ? fd : -EIO;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0) {
        rc = -EIO;
        n = 0;
        goto out;
    }
    buf[n] = '\0';
    /* Exactly 2*len hex digits; only a line end may follow. */
    if ((size_t)n < 2 * len || strspn(buf + 2 * len, "\r\n") != (size_t)n - 2 * len)
        goto out;
    buf[2 * len] = '\0';
    rc = auth_hex_decode(buf, key, len);
out:
    OPENSSL_cleanse(buf, (size_t)n);
    if (rc)
        OPENSSL_cleanse(key, len);
    close(fd);
    return rc;
}

int auth_load_master_key(const char *path, uint8_t key[32])
{
    return auth_load_key_file(path, key, 32);
}

int auth_create_master_key(const char *path)
{
    uint8_t key[32];
    char hex[66];
    if (RAND_bytes(key, sizeof(key)) != 1)
        return -EIO;
    hex_encode(key, 32, hex);
    hex[64] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0)
        rc = -errno;
    else if (write(fd, hex, 65) != 65)
        rc = -EIO;
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

/* hex HMAC-SHA256(master, label || salt): a secret that is never stored. */
static void derived_secret(const uint8_t master[32], const char *label, const uint8_t salt[16],
                           char out[AUTH_SECRET_HEX_LEN + 1])
{
    uint8_t msg[256], mac[32];
    unsigned int maclen = 0;
    size_t n = (size_t)snprintf((char *)msg, sizeof(msg) - 16, "%s", label);
    if (n > sizeof(msg) - 16)
        n = sizeof(msg) - 16;
    memcpy(msg + n, salt, 16);
    HMAC(EVP_sha256(), master, 32, msg, n + 16, mac, &maclen);
    hex_encode(mac, 32, out);
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(msg, sizeof(msg));
}

void auth_courier_secret(const uint8_t master[32], const char *courier, const uint8_t salt[16],
                         char out[AUTH_SECRET_HEX_LEN + 1])
{
    char label[256];
    snprintf(label, sizeof(label), "courier-secret:%s:", courier);
    derived_secret(master, label, salt, out);
}

int auth_courier_create(struct db *db, const uint8_t master[32], const char *name,
                        char token[AUTH_TOKEN_LEN + 1], char secret[AUTH_SECRET_HEX_LEN + 1])
{
    uint8_t salt[16];
    char salt_hex[2 + 33] = "\\x", tid[24];
    long token_id = 0;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return -EIO;
    hex_encode(salt, sizeof(salt), salt_hex + 2);
    int rc = auth_token_create(db, "courier", name, token, &token_id);
    if (rc)
        return rc;
    snprintf(tid, sizeof(tid), "%ld", token_id);
    rc = db_query(
        db, NULL,
        "INSERT INTO couriers (name, token_id, secret_salt) VALUES ($1, $2::bigint, $3::bytea)",
        name, tid, salt_hex);
    if (rc) {
        OPENSSL_cleanse(token, AUTH_TOKEN_LEN);
        return rc;
    }
    auth_courier_secret(master, name, salt, secret);
    return 0;
}

void auth_platform_secret(const uint8_t master[32], const uint8_t salt[16],
                          char out[AUTH_SECRET_HEX_LEN + 1])
{
    derived_secret(master, "platform-secret:", salt, out);
}

static void signature_mac(const char *secret, const char *t, size_t tlen, const char *body,
                          size_t body_len, uint8_t mac[32])
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t len = 0;
    memset(mac, 0, 32);
    if (ctx && EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) == 1) {
        EVP_MAC_update(ctx, (const unsigned char *)t, tlen);
        EVP_MAC_update(ctx, (const unsigned char *)".", 1);
        EVP_MAC_update(ctx, (const unsigned char *)body, body_len);
        EVP_MAC_final(ctx, mac, &len, 32);
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
}

int auth_verify_signature(const char *header, const char *body, size_t body_len, const char *secret,
                          long now)
{
    if (!header || strncmp(header, "t=", 2) != 0)
        return -EINVAL;
    const char *t = header + 2;
    size_t tlen = strspn(t, "0123456789");
    if (tlen == 0 || tlen > 12 || strncmp(t + tlen, ",v1=", 4) != 0)
        return -EINVAL;
    const char *hex = t + tlen + 4;
    if (strlen(hex) != 64)
        return -EINVAL;
    uint8_t given[32], want[32];
    for (int i = 0; i < 32; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        given[i] = (uint8_t)(hi << 4 | lo);
    }
    long ts = strtol(t, NULL, 10);
    signature_mac(secret, t, tlen, body, body_len, want);
    int match = CRYPTO_memcmp(given, want, 32) == 0;
    if (!match)
        return -EACCES;
    if (ts < now - AUTH_MAX_SKEW_S || ts > now + AUTH_MAX_SKEW_S)
        return -ETIME;
    return 0;
}

char *auth_signed_text(const char *method, const char *path, const char *body, size_t body_len,
                       size_t *len)
{
    char *text = NULL;
    if (body_len == 0 && strcmp(method, "GET") == 0) {
        size_t n = strlen(path);
        text = malloc(4 + n + 1);
        if (text) {
            memcpy(text, "GET ", 4);
            memcpy(text + 4, path, n + 1);
            *len = 4 + n;
        }
        return text;
    }
    text = malloc(body_len + 1);
    if (text) {
        memcpy(text, body, body_len);
        text[body_len] = '\0';
        *len = body_len;
    }
    return text;
}

void auth_sign(const char *secret, long t, const char *body, size_t body_len, char *out,
               size_t outlen)
{
    char ts[24];
    uint8_t mac[32];
    char hex[65];
    int tlen = snprintf(ts, sizeof(ts), "%ld", t);
    signature_mac(secret, ts, (size_t)tlen, body, body_len, mac);
    hex_encode(mac, 32, hex);
    snprintf(out, outlen, "t=%s,v1=%s", ts, hex);
}

int auth_couriers_exist(struct db *db, bool *any)
{
    struct db_res *res = NULL;
    int rc = db_exec(db, &res, "SELECT EXISTS (SELECT 1 FROM couriers)", 0, NULL);
    if (!rc)
        *any = db_rows(res) == 1 && strcmp(db_get(res, 0, 0), "t") == 0;
    db_res_free(res);
    return rc;
}
