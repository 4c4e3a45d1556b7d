/* harness.h — integration tests drive the real service: a database of their
 * own in the throw-away cluster (pg_virtualenv), cardd started as a process
 * on a free port, cardctl for set-up, and libcurl for HTTP. */
#ifndef CARDD_TEST_HARNESS_H
#define CARDD_TEST_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct service {
    pid_t pid;
    int port;
    char dir[256]; /* a private folder: config, keys, logs */
    char config[300];
    char log[300];
    char base[64]; /* "http://127.0.0.1:PORT" */
    long log_seen; /* how much of the log was looked at for sanitizer reports */
};

struct reply {
    long status;
    char *body;
    size_t len;
    json_t *json; /* parsed body, or NULL */
    char content_type[128];
    char request_id[80];
    char retry_after[16];
};

/* Path of a built binary ("cardd", "cardctl", "emu-card") under $BUILD. */
const char *harness_bin(const char *name, char *buf, size_t len);
/* Path under the source tree ($CARDD_ROOT, else "."). */
const char *harness_src(const char *rel, char *buf, size_t len);

/* Creates a fresh database owned by the owner role, points PGDATABASE at
 * it, prepares a private folder with a config file (extra lines appended as
 * given) in which cardd and cardctl connect as the service's role and cardd
 * migrate as the owner, a master key, and migrates. Returns 0 or -1. */
int harness_setup(struct service *svc, const char *extra_config);
/* The same without the migration: the database is empty. */
int harness_setup_unmigrated(struct service *svc, const char *extra_config);
/* Runs cardd migrate with the service's config; what it prints (output and
 * errors) is copied to out, trimmed. Returns its exit status. */
int harness_migrate(struct service *svc, char *out, size_t outlen);

/* Prepares a second instance of the service on the same database, keys
 * and master key as base, with its own folder, log and extra config lines
 * (e.g. "instance = b" and its stations). Returns 0 or -1. */
int harness_clone(const struct service *base, struct service *svc, const char *extra_config);

/* Starts cardd and waits until it listens. Returns 0 or -1. */
int harness_start(struct service *svc);
/* Stops it with SIGTERM (or SIGKILL when hard) and waits. Returns -1 when
 * the service's log shows a sanitizer report or the service did not exit
 * cleanly after SIGTERM, else 0. */
int harness_stop(struct service *svc, bool hard);

/* Runs cardctl with the service's config; its standard output (trimmed) is
 * copied to out when given. Returns the exit status. */
int harness_ctl(struct service *svc, char *out, size_t outlen, const char *arg, ...);
/* The same with input written to cardctl's standard input (e.g. a token
 * that a person would type). */
int harness_ctl_input(struct service *svc, const char *input, char *out, size_t outlen,
                      const char *arg, ...);

/* Creates a token for role and name through cardctl. Returns 0 or -1. */
int harness_token(struct service *svc, const char *role, const char *name, char *token, size_t len);
/* The same for a branch token, which belongs to one branch. */
int harness_branch_token(struct service *svc, const char *branch, const char *name, char *token,
                         size_t len);

/* Runs an SQL statement through libpq in the test database; the first
 * field of the first row (or "") is copied to out. Returns 0 or -1.
 * harness_sql runs as the cluster's superuser (set-up and inspection that
 * no role of the service may do, such as back-dating events); the others
 * as the schema's owner (what cardd migrate connects as) and as the
 * service's role (what cardd serve and cardctl connect as). */
int harness_sql(char *out, size_t outlen, const char *sql);
int harness_sql_as_owner(char *out, size_t outlen, const char *sql);
int harness_sql_as_service(char *out, size_t outlen, const char *sql);

/* The first field of a formatted statement as a number; -1 on failure. */
long harness_sql_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Polls a formatted count (every 100 ms) until it is above 0 or seconds
 * pass. Returns whether it got there. */
bool harness_wait_sql(int seconds, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The test PKI (tests/make-test-pki.sh) in keys_dir/pki, and the file
 * Document Signer (ds.key, ds.pem) and csca.pem in keys_dir: what an
 * instance with stations needs to be ready. Returns 0 or -1. */
int harness_ds_files(const char *keys_dir);

/* A whole file in a malloc'd buffer (*len its size, a NUL after it), or NULL. */
unsigned char *harness_slurp(const char *path, size_t *len);

/* Looks through the service's log for personal data: a national ID (ten
 * digits with a good check digit), a Saudi mobile number, or the holder's
 * name or street as sample_request writes them. Returns how many lines hold
 * some (0: none); the first is described in found. */
int harness_log_personal_data(const struct service *svc, char *found, size_t len);

/* When set, HTTP calls leave from this loopback address (e.g. "127.0.0.9"). */
extern const char *harness_source_ip;

/* One HTTP call. headers is a NULL-terminated list of "Name: value" lines
 * (may be NULL). body may be NULL. Returns 0 (and fills r) or -1. */
int http_call(struct service *svc, const char *method, const char *path, const char *const *headers,
              const char *body, size_t body_len, struct reply *r);
void reply_free(struct reply *r);

/* Shorthands with a bearer token (may be NULL) and a JSON body. */
int http_get(struct service *svc, const char *token, const char *path, struct reply *r);
int http_post_json(struct service *svc, const char *token, const char *path, const char *json,
                   struct reply *r);

/* The "code" of the errors[] entry whose field is field, or NULL. */
const char *problem_code_for(const struct reply *r, const char *field);

/* A valid approved request as JSON text with the given number, national
 * ID, kind and reason; the caller frees it. */
char *sample_request(const char *request_no, const char *national_id, const char *kind,
                     const char *reason);

/* The same, parsed. */
json_t *sample_json(const char *request_no, const char *national_id, const char *kind,
                    const char *reason);

/* A valid national ID and a request number not used before by this test
 * binary, so that requests never collide. */
void harness_fresh_nid(char out[11]);
void harness_fresh_no(const char *prefix, char *out, size_t len);

/* Makes a valid national ID from 9 digits (the first 1 or 2) by computing
 * the Luhn check digit. */
void make_national_id(const char *nine, char out[11]);

#endif
