/* test_auth.c — courier signatures, derived secrets, tokens and the master
 * key file. RAND_bytes is replaced at link time (test_auth.wrap) so that
 * tokens and keys can be predicted and randomness can fail, and the
 * database by a stand-in that records what it is sent. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "db.h"

/* ---- randomness under the test's control ---- */

enum rand_mode {
    RAND_REAL,
    RAND_COUNTING,
    RAND_FAIL
};
static enum rand_mode rand_mode = RAND_REAL;

int __real_RAND_bytes(unsigned char *buf, int num);
int __wrap_RAND_bytes(unsigned char *buf, int num);
int __wrap_RAND_bytes(unsigned char *buf, int num)
{
    switch (rand_mode) {
    case RAND_COUNTING:
        for (int i = 0; i < num; i++)
            buf[i] = (unsigned char)i;
        return 1;
    case RAND_FAIL:
        return 0;
    default:
        return __real_RAND_bytes(buf, num);
    }
}

/* ---- the file system under the test's control ---- */

static bool fstat_fails;
static int reads; /* read() calls made by the code under test */

int __real_fstat(int fd, struct stat *st);
int __wrap_fstat(int fd, struct stat *st);
int __wrap_fstat(int fd, struct stat *st)
{
    if (fstat_fails) {
        errno = EIO;
        return -1;
    }
    return __real_fstat(fd, st);
}

ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n)
{
    reads++;
    return __real_read(fd, buf, n);
}

static int real_randomness(void **state)
{
    (void)state;
    rand_mode = RAND_REAL;
    return 0;
}

/* ---- signatures ---- */

/* A courier secret (64 hex) and the delivery_failed event of API.md, signed
 * at its own time 2026-11-25T14:03:00Z = 1795615380. The expected MAC was
 * computed apart from this code:
 *   printf '1795615380.%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" */
#define SECRET "3f9a1c0d5e7b2a4c6d8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"
#define BODY                                                                                       \
    "{\"event_id\":\"evt-000001\",\"tracking_no\":\"RR123456785SA\",\"code\":\"delivery_failed\"," \
    "\"at\":\"2026-11-25T14:03:00Z\",\"reason\":\"no_one_home\",\"location\":\"Riyadh\"}"
#define T      1795615380L
#define MAC    "4042d2ba0819b6a6e1116916c42ad7369c279eb2281174b44ea05e43a61e3b74"
#define HEADER "t=1795615380,v1=" MAC

static void sign_known_answer(void **state)
{
    (void)state;
    char header[128];
    auth_sign(SECRET, T, BODY, strlen(BODY), header, sizeof(header));
    assert_string_equal(header, HEADER);
    /* an empty body: openssl dgst over "1795615380." */
    auth_sign(SECRET, T, "", 0, header, sizeof(header));
    assert_string_equal(
        header, "t=1795615380,v1=f553409121b869e654fc9b9ba0487f60c01e37590c9499250383f2e93d8f79b5");
}

static void verify_good_signature(void **state)
{
    (void)state;
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY), SECRET, T), 0);
    char header[128];
    auth_sign("another secret", T + 5, BODY, strlen(BODY), header, sizeof(header));
    assert_int_equal(auth_verify_signature(header, BODY, strlen(BODY), "another secret", T), 0);
}

static void verify_uppercase_hex(void **state)
{
    (void)state;
    char header[128] = HEADER;
    for (char *p = header + 16; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(auth_verify_signature(header, BODY, strlen(BODY), SECRET, T), 0);
}

static void verify_wrong_secret(void **state)
{
    (void)state;
    char wrong[] = SECRET;
    wrong[63] = wrong[63] == 'e' ? 'f' : 'e';
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY), wrong, T), -EACCES);
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY), "", T), -EACCES);
}

static void verify_tampered_body(void **state)
{
    (void)state;
    char body[] = BODY;
    char *code = strstr(body, "delivery_failed");
    memcpy(code, "delivered\",\"xx", 14); /* same length, other meaning */
    assert_int_equal(auth_verify_signature(HEADER, body, strlen(body), SECRET, T), -EACCES);
    /* one byte cut off the end, and one byte more */
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY) - 1, SECRET, T), -EACCES);
    char longer[sizeof(BODY) + 1] = BODY " ";
    assert_int_equal(auth_verify_signature(HEADER, longer, strlen(longer), SECRET, T), -EACCES);
}

/* The timestamp is part of what is signed: moving it breaks the MAC. */
static void verify_tampered_timestamp(void **state)
{
    (void)state;
    assert_int_equal(auth_verify_signature("t=1795615381,v1=" MAC, BODY, strlen(BODY), SECRET, T),
                     -EACCES);
    assert_int_equal(auth_verify_signature("t=01795615380,v1=" MAC, BODY, strlen(BODY), SECRET, T),
                     -EACCES);
}

static void verify_tampered_mac(void **state)
{
    (void)state;
    char header[] = HEADER;
    for (size_t i = 16; i < strlen(header); i += 9) {
        char orig = header[i];
        header[i] = orig == '0' ? '1' : '0';
        assert_int_equal(auth_verify_signature(header, BODY, strlen(BODY), SECRET, T), -EACCES);
        header[i] = orig;
    }
}

/* Up to 300 s of skew either way is accepted, 301 s is not. */
static void verify_clock_skew(void **state)
{
    (void)state;
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY), SECRET, T + 300), 0);
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY), SECRET, T - 300), 0);
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY), SECRET, T + 301), -ETIME);
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY), SECRET, T - 301), -ETIME);
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY), SECRET, T + 86400), -ETIME);
    assert_int_equal(auth_verify_signature(HEADER, BODY, strlen(BODY), SECRET, 0), -ETIME);
}

static void verify_malformed_headers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "t=",
        "t=1795615380",
        "t=1795615380,",
        "t=1795615380,v1=",
        "v1=" MAC ",t=1795615380",
        "t=abc,v1=" MAC,
        "t=-1795615380,v1=" MAC,
        "t=1795615380 ,v1=" MAC,
        " t=1795615380,v1=" MAC,
        "T=1795615380,v1=" MAC,
        "t=1795615380,v2=" MAC,
        "t=1795615380;v1=" MAC,
        "t=1795615380,v1=" MAC "0", /* 65 hex */
        "t=1795615380,v1=4042d2ba0819b6a6e1116916c42ad7369c279eb2281174b44ea05e43a61e3b7",
        "t=1795615380,v1=g042d2ba0819b6a6e1116916c42ad7369c279eb2281174b44ea05e43a61e3b74",
        "t=1795615380,v1=4042d2ba0819b6a6e1116916c42ad7369c279eb2281174b44ea05e43a61e3b7 ",
        "t=1795615380,v1=" MAC ",v0=00",
        "t=1234567890123,v1=" MAC, /* 13 digits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(auth_verify_signature(bad[i], BODY, strlen(BODY), SECRET, T), -EINVAL);
    assert_int_equal(auth_verify_signature(NULL, BODY, strlen(BODY), SECRET, T), -EINVAL);
}

/* ---- courier secrets ---- */

/* master = 00 01 .. 1f, salt = a0 a1 .. af; computed apart with Python:
 *   hmac.new(master, b"courier-secret:smsa:" + salt, sha256).hexdigest() */
static void courier_secret_known_answer(void **state)
{
    (void)state;
    uint8_t master[32], salt[16];
    for (int i = 0; i < 32; i++)
        master[i] = (uint8_t)i;
    for (int i = 0; i < 16; i++)
        salt[i] = (uint8_t)(0xa0 + i);
    char out[AUTH_SECRET_HEX_LEN + 1];
    auth_courier_secret(master, "smsa", salt, out);
    assert_string_equal(out, "f4cded5772cc8eac335967744df3cd970b052b685d26238c44267e9b5ee63b1b");

    char other[AUTH_SECRET_HEX_LEN + 1];
    auth_courier_secret(master, "aramex", salt, other);
    assert_string_not_equal(out, other);
    salt[15] ^= 1;
    auth_courier_secret(master, "smsa", salt, other);
    assert_string_not_equal(out, other);
    salt[15] ^= 1;
    master[0] ^= 1;
    auth_courier_secret(master, "smsa", salt, other);
    assert_string_not_equal(out, other);
}

/* The platform's secret, the same way: hmac.new(master, b"platform-secret:" + salt,
 * sha256).hexdigest(); never a courier's. */
static void platform_secret_known_answer(void **state)
{
    (void)state;
    uint8_t master[32], salt[16];
    for (int i = 0; i < 32; i++)
        master[i] = (uint8_t)i;
    for (int i = 0; i < 16; i++)
        salt[i] = (uint8_t)(0xa0 + i);
    char out[AUTH_SECRET_HEX_LEN + 1], courier[AUTH_SECRET_HEX_LEN + 1];
    auth_platform_secret(master, salt, out);
    assert_string_equal(out, "7496c596e48c50d99fae4be6349bf0f0d180aa6e6a87d8a4e33a7fc6816cefc7");
    auth_courier_secret(master, "", salt, courier);
    assert_string_not_equal(out, courier);
}

static void hex_decode(void **state)
{
    (void)state;
    uint8_t b[2];
    assert_int_equal(auth_hex_decode("a0Ff", b, 2), 0);
    assert_int_equal(b[0], 0xa0);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(auth_hex_decode("a0f", b, 2), -EINVAL);
    assert_int_equal(auth_hex_decode("a0fg", b, 2), -EINVAL);
    assert_int_equal(auth_hex_decode("a0ff00", b, 2), -EINVAL);
    assert_int_equal(auth_hex_decode(NULL, b, 2), -EINVAL);
}

/* ---- tokens ---- */

static void token_format(void **state)
{
    (void)state;
    char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1];
    assert_int_equal(auth_token_new(a), 0);
    assert_int_equal(auth_token_new(b), 0);
    assert_int_equal(strlen(a), 54);
    assert_memory_equal(a, "cdt_", 4);
    assert_int_equal(strspn(a + 4, "abcdefghijklmnopqrstuvwxyz234567"), 50);
    assert_string_not_equal(a, b);
}

/* Random bytes 0, 1, 2, ... give the base-32 alphabet in order. */
static void token_from_known_randomness(void **state)
{
    (void)state;
    char t[AUTH_TOKEN_LEN + 1];
    rand_mode = RAND_COUNTING;
    assert_int_equal(auth_token_new(t), 0);
    assert_string_equal(t, "cdt_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqr");
    /* sha256 of that token: python3 -c 'import hashlib; print(hashlib.sha256(b"cdt_...").hexdigest())' */
    static const uint8_t want[32] = {
        0x72, 0x44, 0x2f, 0x13, 0x37, 0xca, 0x78, 0xd3, 0xf5, 0x9e, 0x5b,
        0x91, 0x70, 0x14, 0x79, 0x9e, 0xdb, 0x30, 0x46, 0xf4, 0x0b, 0x54,
        0xd9, 0xcd, 0x1f, 0xcd, 0x4b, 0x29, 0xe6, 0xf6, 0x21, 0xb1,
    };
    uint8_t hash[32];
    auth_token_hash(t, hash);
    assert_memory_equal(hash, want, 32);
}

static void token_without_randomness(void **state)
{
    (void)state;
    char t[AUTH_TOKEN_LEN + 1];
    rand_mode = RAND_FAIL;
    assert_int_equal(auth_token_new(t), -EIO);
}

static void roles(void **state)
{
    (void)state;
    assert_int_equal(auth_role_bit("intake"), ROLE_INTAKE);
    assert_int_equal(auth_role_bit("operator"), ROLE_OPERATOR);
    assert_int_equal(auth_role_bit("courier"), ROLE_COURIER);
    assert_int_equal(auth_role_bit("branch"), ROLE_BRANCH);
    assert_int_equal(auth_role_bit("admin"), ROLE_ADMIN);
    assert_int_equal(auth_role_bit("Admin"), 0);
    assert_int_equal(auth_role_bit(""), 0);
    assert_string_equal(auth_role_name(ROLE_COURIER), "courier");
    assert_string_equal(auth_role_name(ROLE_ADMIN), "admin");
    assert_string_equal(auth_role_name(ROLE_INTAKE | ROLE_BRANCH), "?");
}

/* ---- tokens in the database: only their hash is ever sent ---- */

struct db_res {
    size_t rows;
    const char *cells[4];
};

static struct {
    int rc;            /* what db_exec answers */
    struct db_res res; /* the rows it gives when rc is 0 */
    int calls, live;
    char sql[512];
    int nparams;
    char params[5][160];
} fake;

int __wrap_db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
                   const char *const *params);
/* A prepared statement runs as its text would. */
int __wrap_db_exec_stmt(struct db *db, struct db_res **res, const struct db_stmt *stmt,
                        const char *const *params);
int __wrap_db_exec_stmt(struct db *db, struct db_res **res, const struct db_stmt *stmt,
                        const char *const *params)
{
    return __wrap_db_exec(db, res, stmt->sql, stmt->nparams, params);
}

size_t __wrap_db_rows(const struct db_res *res);
const char *__wrap_db_get(const struct db_res *res, size_t row, int col);
long __wrap_db_get_long(const struct db_res *res, size_t row, int col, long fallback);
void __wrap_db_res_free(struct db_res *res);

int __wrap_db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
                   const char *const *params)
{
    (void)db;
    fake.calls++;
    snprintf(fake.sql, sizeof(fake.sql), "%s", sql);
    fake.nparams = nparams;
    for (int i = 0; i < nparams && i < 5; i++)
        snprintf(fake.params[i], sizeof(fake.params[i]), "%s", params[i] ? params[i] : "(null)");
    if (res)
        *res = NULL;
    if (fake.rc)
        return fake.rc;
    if (res) {
        *res = malloc(sizeof(**res));
        assert_non_null(*res);
        **res = fake.res;
        fake.live++;
    }
    return 0;
}

size_t __wrap_db_rows(const struct db_res *res)
{
    return res ? res->rows : 0;
}

const char *__wrap_db_get(const struct db_res *res, size_t row, int col)
{
    if (!res || row >= res->rows || col < 0 || col > 3)
        return NULL;
    return res->cells[col];
}

long __wrap_db_get_long(const struct db_res *res, size_t row, int col, long fallback)
{
    const char *s = __wrap_db_get(res, row, col);
    return s ? strtol(s, NULL, 10) : fallback;
}

void __wrap_db_res_free(struct db_res *res)
{
    if (res)
        fake.live--;
    free(res);
}

static int fake_reset(void **state)
{
    (void)state;
    memset(&fake, 0, sizeof(fake));
    rand_mode = RAND_REAL;
    return 0;
}

#define DB ((struct db *)&fake)
/* The token that counting randomness gives, and "\x" + its SHA-256 (see
 * token_from_known_randomness). */
#define KNOWN_TOKEN "cdt_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqr"
#define KNOWN_HASH  "\\x72442f1337ca78d3f59e5b917014799edb3046f40b54d9cd1fcd4b29e6f621b1"

static void lookup_sends_the_hash_and_fills_the_identity(void **state)
{
    (void)state;
    fake.res = (struct db_res){ 1, { "42", "courier", "smsa", "" } };
    struct identity who;
    memset(&who, 0, sizeof(who));
    assert_int_equal(auth_lookup(DB, KNOWN_TOKEN, &who), 0);
    assert_int_equal(fake.calls, 1);
    assert_int_equal(fake.nparams, 1);
    assert_string_equal(fake.params[0], KNOWN_HASH);
    assert_non_null(strstr(fake.sql, "revoked_at IS NULL"));
    assert_non_null(strstr(fake.sql, "expires_at > now()"));
    assert_int_equal(who.token_id, 42);
    assert_int_equal(who.role, ROLE_COURIER);
    assert_string_equal(who.name, "smsa");
    assert_int_equal(fake.live, 0);
}

static void lookup_unknown_token(void **state)
{
    (void)state;
    struct identity who;
    fake.res = (struct db_res){ 0, { NULL, NULL, NULL } };
    assert_int_equal(auth_lookup(DB, KNOWN_TOKEN, &who), -ENOENT);
    assert_int_equal(fake.live, 0);
    /* a token of the wrong length never reaches the database */
    fake.calls = 0;
    assert_int_equal(auth_lookup(DB, "cdt_short", &who), -ENOENT);
    assert_int_equal(auth_lookup(DB, "", &who), -ENOENT);
    assert_int_equal(auth_lookup(DB, KNOWN_TOKEN "a", &who), -ENOENT);
    assert_int_equal(fake.calls, 0);
}

static void lookup_database_down(void **state)
{
    (void)state;
    struct identity who;
    fake.rc = DB_EDOWN;
    assert_int_equal(auth_lookup(DB, KNOWN_TOKEN, &who), DB_EDOWN);
}

static void create_stores_only_the_hash(void **state)
{
    (void)state;
    char token[AUTH_TOKEN_LEN + 1];
    long id = 0;
    rand_mode = RAND_COUNTING;
    fake.res = (struct db_res){ 1, { "7", NULL, NULL } };
    assert_int_equal(auth_token_create(DB, "courier", "smsa", token, &id), 0);
    assert_string_equal(token, KNOWN_TOKEN);
    assert_int_equal(id, 7);
    assert_int_equal(fake.nparams, 5);
    assert_string_equal(fake.params[0], "smsa");
    assert_string_equal(fake.params[1], "courier");
    assert_string_equal(fake.params[2], KNOWN_HASH);
    assert_string_equal(fake.params[3], "(null)"); /* no branch */
    assert_string_equal(fake.params[4], "0");      /* no end */
    for (int i = 0; i < 5; i++)
        assert_null(strstr(fake.params[i], "cdt_"));
    assert_null(strstr(fake.sql, "cdt_"));
    assert_int_equal(fake.live, 0);
}

static void create_refuses_bad_role_or_name(void **state)
{
    (void)state;
    char token[AUTH_TOKEN_LEN + 1];
    char name[66];
    memset(name, 'n', 65);
    name[65] = '\0';
    fake.res = (struct db_res){ 1, { "8", NULL, NULL } };
    assert_int_equal(auth_token_create(DB, "root", "smsa", token, NULL), -EINVAL);
    assert_int_equal(auth_token_create(DB, "", "smsa", token, NULL), -EINVAL);
    assert_int_equal(auth_token_create(DB, "courier", "", token, NULL), -EINVAL);
    assert_int_equal(auth_token_create(DB, "courier", name, token, NULL), -EINVAL); /* 65 */
    /* a branch token has a branch; no other role has one */
    assert_int_equal(auth_token_create(DB, "branch", "b1", token, NULL), -EINVAL);
    assert_int_equal(auth_token_create_for(DB, "operator", "o1", "RUH-01", 0, token, NULL),
                     -EINVAL);
    assert_int_equal(auth_token_create_for(DB, "branch", "b1", "", 0, token, NULL), -EINVAL);
    assert_int_equal(auth_token_create_for(DB, "branch", "b1", "RUH-01", -1, token, NULL), -EINVAL);
    assert_int_equal(
        auth_token_create_for(DB, "branch", "b1", "RUH-01", AUTH_MAX_EXPIRY_DAYS + 1, token, NULL),
        -EINVAL);
    assert_int_equal(fake.calls, 0);
    name[64] = '\0';
    assert_int_equal(auth_token_create(DB, "admin", name, token, NULL), 0); /* 64 */
    assert_int_equal(fake.calls, 1);
}

static void branch_tokens_act_at_their_branch_only(void **state)
{
    (void)state;
    struct identity who = { .role = ROLE_BRANCH, .branch = "RUH-01" };
    assert_true(auth_may_act_at_branch(&who, "RUH-01"));
    assert_false(auth_may_act_at_branch(&who, "RUH-02"));
    assert_false(auth_may_act_at_branch(&who, "RUH-0"));
    who.branch[0] = '\0'; /* a branch token from before branches were bound */
    assert_false(auth_may_act_at_branch(&who, ""));
    assert_false(auth_may_act_at_branch(&who, "RUH-01"));
    who.role = ROLE_ADMIN;
    assert_true(auth_may_act_at_branch(&who, "RUH-02"));
    who.role = ROLE_OPERATOR;
    assert_false(auth_may_act_at_branch(&who, "RUH-02"));
}

/* A name already taken: the conflict comes back and the token that was
 * never stored is wiped. */
static void create_conflict_wipes_the_token(void **state)
{
    (void)state;
    char token[AUTH_TOKEN_LEN + 1];
    static const char zeros[AUTH_TOKEN_LEN] = { 0 };
    fake.rc = DB_ECONFLICT;
    long id = -1;
    assert_int_equal(auth_token_create(DB, "operator", "op1", token, &id), DB_ECONFLICT);
    assert_memory_equal(token, zeros, AUTH_TOKEN_LEN);
    assert_int_equal(id, -1);
}

static void create_without_randomness(void **state)
{
    (void)state;
    char token[AUTH_TOKEN_LEN + 1];
    rand_mode = RAND_FAIL;
    assert_int_equal(auth_token_create(DB, "operator", "op1", token, NULL), -EIO);
    assert_int_equal(fake.calls, 0);
}

/* ---- master key file ---- */

struct keydir {
    char dir[64];
    char path[96];
};

static int keydir_setup(void **state)
{
    struct keydir *k = calloc(1, sizeof(*k));
    if (!k)
        return -1;
    snprintf(k->dir, sizeof(k->dir), "/tmp/cardd-test-auth-XXXXXX");
    if (!mkdtemp(k->dir))
        return -1;
    snprintf(k->path, sizeof(k->path), "%s/master.key", k->dir);
    rand_mode = RAND_REAL;
    *state = k;
    return 0;
}

static int keydir_teardown(void **state)
{
    struct keydir *k = *state;
    unlink(k->path);
    rmdir(k->dir);
    free(k);
    rand_mode = RAND_REAL;
    return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static void master_key_created_0600_and_loaded(void **state)
{
    struct keydir *k = *state;
    rand_mode = RAND_COUNTING;
    mode_t old = umask(0); /* even a lax umask gives 0600 */
    int rc = auth_create_master_key(k->path);
    umask(old);
    assert_int_equal(rc, 0);
    struct stat st;
    assert_int_equal(stat(k->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);

    char text[80] = "";
    FILE *f = fopen(k->path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_string_equal(text, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");

    uint8_t key[32];
    assert_int_equal(auth_load_master_key(k->path, key), 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(key[i], i);
}

static void master_key_never_overwritten(void **state)
{
    struct keydir *k = *state;
    assert_int_equal(auth_create_master_key(k->path), 0);
    uint8_t first[32], again[32];
    assert_int_equal(auth_load_master_key(k->path, first), 0);
    assert_int_equal(auth_create_master_key(k->path), -EEXIST);
    assert_int_equal(auth_load_master_key(k->path, again), 0);
    assert_memory_equal(first, again, 32);
}

static void master_key_without_randomness(void **state)
{
    struct keydir *k = *state;
    rand_mode = RAND_FAIL;
    assert_int_equal(auth_create_master_key(k->path), -EIO);
    assert_int_equal(access(k->path, F_OK), -1); /* nothing half-written */
}

#define KEY_HEX "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF"

static void master_key_mode_refusal(void **state)
{
    struct keydir *k = *state;
    uint8_t key[32];
    static const struct {
        mode_t mode;
        int rc;
    } cases[] = {
        { 0600, 0 },      { 0400, 0 },      { 0644, -EPERM }, { 0640, -EPERM },
        { 0604, -EPERM }, { 0620, -EPERM }, { 0602, -EPERM }, { 0666, -EPERM },
    };
    write_file(k->path, KEY_HEX "\n", 0600);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(chmod(k->path, cases[i].mode), 0);
        memset(key, 0x5a, sizeof(key));
        assert_int_equal(auth_load_master_key(k->path, key), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_int_equal(key[0], 0x00);
            assert_int_equal(key[1], 0x11);
            assert_int_equal(key[15], 0xff);
            assert_int_equal(key[31], 0xff);
        }
    }
}

/* The checks every key file gets: no symlink, a regular file, the
 * service's own. */
static void master_key_file_checks(void **state)
{
    struct keydir *k = *state;
    uint8_t key[32];
    char link[128];
    write_file(k->path, KEY_HEX "\n", 0600);
    snprintf(link, sizeof(link), "%s/link.key", k->dir);
    assert_int_equal(symlink(k->path, link), 0);
    assert_int_equal(auth_load_master_key(link, key), -EPERM);
    assert_int_equal(auth_load_master_key(k->dir, key), -EINVAL); /* a directory */
    if (geteuid() == 0) {
        assert_int_equal(chown(k->path, 1, 1), 0);
        assert_int_equal(auth_load_master_key(k->path, key), -EPERM);
        assert_int_equal(chown(k->path, 0, 0), 0);
    }
    assert_int_equal(auth_load_master_key(k->path, key), 0);
    unlink(link);
}

static void master_key_bad_contents(void **state)
{
    struct keydir *k = *state;
    uint8_t key[32];
    assert_int_equal(auth_load_master_key(k->path, key), -ENOENT); /* absent */
    write_file(k->path, "0011223344\n", 0600);
    assert_int_equal(auth_load_master_key(k->path, key), -EINVAL);
    write_file(k->path, "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
    assert_int_equal(auth_load_master_key(k->path, key), -EINVAL);
    write_file(k->path, "", 0600);
    assert_int_equal(auth_load_master_key(k->path, key), -EINVAL);
    write_file(k->path, KEY_HEX, 0600); /* no newline is fine */
    assert_int_equal(auth_load_master_key(k->path, key), 0);
}

/* A key file whose mode cannot be known is not read at all. */
static void key_file_unknown_mode_not_read(void **state)
{
    struct keydir *k = *state;
    uint8_t key[8];
    write_file(k->path, "1122334455667788\n", 0600);
    fstat_fails = true;
    reads = 0;
    memset(key, 0x5a, sizeof(key));
    int rc = auth_load_key_file(k->path, key, sizeof(key));
    fstat_fails = false;
    assert_int_equal(rc, -EIO);
    assert_int_equal(reads, 0);
    for (size_t i = 0; i < sizeof(key); i++)
        assert_int_equal(key[i], 0);
    assert_int_equal(auth_load_key_file(k->path, key, sizeof(key)), 0);
    assert_int_equal(reads, 1);
}

/* Exactly 2*len hex digits and at most a line end: what sscanf("%2hhx")
 * took (a leading blank or sign, digits beyond the key) is refused, and a
 * refused key leaves nothing behind. */
static void key_file_strict_contents(void **state)
{
    struct keydir *k = *state;
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        { "1122334455667788", 0 },
        { "1122334455667788\n", 0 },
        { "1122334455667788\r\n", 0 },
        { " 1122334455667788", -EINVAL },
        { "+122334455667788", -EINVAL },
        { "11223344556677", -EINVAL },
        { "112233445566778899", -EINVAL },
        { "11223344556677zz", -EINVAL },
        { "1122334455667788 x", -EINVAL },
        { "11223344 55667788", -EINVAL },
        { "", -EINVAL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t key[8];
        write_file(k->path, cases[i].text, 0600);
        memset(key, 0x5a, sizeof(key));
        int rc = auth_load_key_file(k->path, key, sizeof(key));
        if (rc != cases[i].rc)
            fail_msg("\"%s\": %d, expected %d", cases[i].text, rc, cases[i].rc);
        for (size_t j = 0; j < sizeof(key); j++)
            assert_int_equal(key[j], rc == 0 ? 0x11 * (j + 1) : 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_known_answer),
        cmocka_unit_test(verify_good_signature),
        cmocka_unit_test(verify_uppercase_hex),
        cmocka_unit_test(verify_wrong_secret),
        cmocka_unit_test(verify_tampered_body),
        cmocka_unit_test(verify_tampered_timestamp),
        cmocka_unit_test(verify_tampered_mac),
        cmocka_unit_test(verify_clock_skew),
        cmocka_unit_test(verify_malformed_headers),
        cmocka_unit_test(courier_secret_known_answer),
        cmocka_unit_test(platform_secret_known_answer),
        cmocka_unit_test(hex_decode),
        cmocka_unit_test_teardown(token_format, real_randomness),
        cmocka_unit_test_teardown(token_from_known_randomness, real_randomness),
        cmocka_unit_test_teardown(token_without_randomness, real_randomness),
        cmocka_unit_test(roles),
        cmocka_unit_test_setup(lookup_sends_the_hash_and_fills_the_identity, fake_reset),
        cmocka_unit_test_setup(lookup_unknown_token, fake_reset),
        cmocka_unit_test_setup(lookup_database_down, fake_reset),
        cmocka_unit_test_setup_teardown(create_stores_only_the_hash, fake_reset, real_randomness),
        cmocka_unit_test_setup(create_refuses_bad_role_or_name, fake_reset),
        cmocka_unit_test(branch_tokens_act_at_their_branch_only),
        cmocka_unit_test_setup(create_conflict_wipes_the_token, fake_reset),
        cmocka_unit_test_setup_teardown(create_without_randomness, fake_reset, real_randomness),
        cmocka_unit_test_setup_teardown(master_key_created_0600_and_loaded, keydir_setup,
                                        keydir_teardown),
        cmocka_unit_test_setup_teardown(master_key_never_overwritten, keydir_setup,
                                        keydir_teardown),
        cmocka_unit_test_setup_teardown(master_key_without_randomness, keydir_setup,
                                        keydir_teardown),
        cmocka_unit_test_setup_teardown(master_key_mode_refusal, keydir_setup, keydir_teardown),
        cmocka_unit_test_setup_teardown(master_key_bad_contents, keydir_setup, keydir_teardown),
        cmocka_unit_test_setup_teardown(key_file_unknown_mode_not_read, keydir_setup,
                                        keydir_teardown),
        cmocka_unit_test_setup_teardown(key_file_strict_contents, keydir_setup, keydir_teardown),
        cmocka_unit_test_setup_teardown(master_key_file_checks, keydir_setup, keydir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
