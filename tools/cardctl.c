/* cardctl — the operator's command line.
 *
 * It talks to the database directly with the same configuration as cardd,
 * for the tasks that come before any API call can be made (tokens,
 * reference data, keys) and for the production floor (stations, queue,
 * stock, card faces and chips, the progress of a run). It goes through the
 * same module functions as the HTTP handlers, so both follow one set of
 * rules. Commands are a table, as in Redis.
 *
 * Exit status: 0 done, 1 failed (the message says why), 2 usage. */
#include "audit.h"
#include "auth.h"
#include "callbacks.h"
#include "cli_card.h"
#include "cli_face.h"
#include "cli_signer.h"
#include "config.h"
#include "db.h"
#include "ids.h"
#include "metrics.h"
#include "production.h"
#include "store_request.h"
#include "refdata.h"
#include "stations.h"
#include "stock.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
/* fontconfig keeps its pattern cache (reached through pango's default font
 * map, after `card face`) until exit, by design; not a leak of ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}
#endif

struct command;

struct ctl {
    struct config cfg;
    struct db *db;
    const struct command *cmd; /* the command being run */
    char actor[80];            /* "cardctl:<unix user>", for the audit log */
};

/* Prints the usage of the command being run (and of its siblings, such as
 * `stock` and `stock receive`) and returns the usage exit status. */
static int bad_usage(const struct ctl *ctl);

static int need_db(struct ctl *ctl)
{
    if (ctl->db)
        return 0;
    char msg[512];
    if (db_connect(&ctl->db, ctl->cfg.database, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "cardctl: cannot connect to the database: %s", msg);
        return -1;
    }
    return 0;
}

/* Reports a failed database call: what was being done and the server's
 * word on it. Returns the failure exit status. */
static int db_failed(const struct ctl *ctl, const char *what, int rc)
{
    const char *m = rc == -ENOMEM ? "out of memory" : db_error_message(ctl->db);
    size_t n = strlen(m);
    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    fprintf(stderr, "cardctl: %s: %.*s\n", what, (int)n, n ? m : "database error");
    return 1;
}

/* Who the audit log names: the Unix user running cardctl. */
static const char *actor(struct ctl *ctl)
{
    if (!ctl->actor[0]) {
        const struct passwd *pw = getpwuid(getuid());
        if (pw && pw->pw_name && pw->pw_name[0])
            snprintf(ctl->actor, sizeof(ctl->actor), "cardctl:%.64s", pw->pw_name);
        else
            snprintf(ctl->actor, sizeof(ctl->actor), "cardctl:uid%u", (unsigned)getuid());
    }
    return ctl->actor;
}

/* A whole number from min to max, and nothing else. */
static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

/* Writes one audit line for a token change; detail names the token, never its value. */
static int audit_token(struct ctl *ctl, const char *action, const char *name, const char *role,
                       const char *branch)
{
    json_t *d = json_pack("{s:s}", "token", name);
    if (d && role)
        json_object_set_new(d, "role", json_string(role));
    if (d && branch)
        json_object_set_new(d, "branch", json_string(branch));
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    int rc = detail ? audit_append(ctl->db, actor(ctl), action, NULL, NULL, NULL, detail) : -ENOMEM;
    free(detail);
    return rc;
}

static int cmd_token_create(struct ctl *ctl, int argc, char **argv)
{
    const char *role = opt(argc, argv, "--role"), *name = opt(argc, argv, "--name");
    const char *branch = opt(argc, argv, "--branch"), *expires = opt(argc, argv, "--expires");
    long days = 0;
    if (!role || !name) {
        fprintf(stderr, "usage: cardctl token create --role ROLE --name NAME [--branch ID]"
                        " [--expires DAYS]\n");
        return 2;
    }
    if (!auth_role_bit(role)) {
        fprintf(stderr, "cardctl: unknown role %s (intake, operator, courier, branch, admin)\n",
                role);
        return 2;
    }
    if ((auth_role_bit(role) == ROLE_BRANCH) != (branch != NULL)) {
        fprintf(stderr, "cardctl: a branch token needs --branch ID, and only a branch token takes"
                        " one\n");
        return 2;
    }
    if (expires && !parse_long(expires, 1, AUTH_MAX_EXPIRY_DAYS, &days)) {
        fprintf(stderr, "cardctl: --expires is a number of days from 1 to %d\n",
                AUTH_MAX_EXPIRY_DAYS);
        return 2;
    }
    if (!name[0] || strlen(name) > 64) {
        fprintf(stderr, "cardctl: NAME is 1 to 64 characters\n");
        return 2;
    }
    if (need_db(ctl))
        return 1;
    char token[AUTH_TOKEN_LEN + 1];
    int rc = db_begin(ctl->db);
    if (!rc)
        rc = auth_token_create_for(ctl->db, role, name, branch, (int)days, token, NULL);
    if (!rc) {
        rc = audit_token(ctl, "token.created", name, role, branch);
        if (!rc)
            rc = db_commit(ctl->db);
        if (rc)
            OPENSSL_cleanse(token, sizeof(token));
    }
    db_rollback(ctl->db);
    if (rc == DB_ECONFLICT) {
        fprintf(stderr, "cardctl: a token named %s exists already\n", name);
        return 1;
    }
    if (rc == DB_EINVALID && branch) {
        fprintf(stderr, "cardctl: no branch %s (cardctl branches import first)\n", branch);
        return 1;
    }
    if (rc)
        return db_failed(ctl, "cannot create the token", rc);
    /* Shown once: the database keeps only its hash. */
    printf("%s\n", token);
    OPENSSL_cleanse(token, sizeof(token));
    return 0;
}

static int cmd_token_list(struct ctl *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return bad_usage(ctl);
    if (need_db(ctl))
        return 1;
    struct db_res *res = NULL;
    int rc = auth_token_list(ctl->db, &res);
    if (rc)
        return db_failed(ctl, "cannot list the tokens", rc);
    static const char *const heading[] = { "NAME",      "ROLE",    "BRANCH", "CREATED",
                                           "LAST USED", "EXPIRES", "REVOKED" };
    int width[7];
    for (int c = 0; c < 7; c++) {
        width[c] = (int)strlen(heading[c]);
        for (size_t r = 0; r < db_rows(res); r++) {
            const char *v = db_get(res, r, c);
            if (v && (int)strlen(v) > width[c])
                width[c] = (int)strlen(v);
        }
    }
    for (int c = 0; c < 7; c++)
        printf("%-*s%s", width[c], heading[c], c < 6 ? "  " : "\n");
    for (size_t r = 0; r < db_rows(res); r++)
        for (int c = 0; c < 7; c++) {
            const char *v = db_get(res, r, c);
            printf("%-*s%s", c < 6 ? width[c] : 0, v ? v : "-", c < 6 ? "  " : "\n");
        }
    db_res_free(res);
    return 0;
}

static int cmd_token_revoke(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 2 || !argv[1][0])
        return bad_usage(ctl);
    if (need_db(ctl))
        return 1;
    int rc = db_begin(ctl->db);
    if (!rc)
        rc = auth_token_revoke(ctl->db, argv[1]);
    if (!rc)
        rc = audit_token(ctl, "token.revoked", argv[1], NULL, NULL);
    if (!rc)
        rc = db_commit(ctl->db);
    db_rollback(ctl->db);
    if (rc == -ENOENT) {
        fprintf(stderr, "cardctl: no token named %s\n", argv[1]);
        return 1;
    }
    if (rc)
        return db_failed(ctl, "cannot revoke the token", rc);
    printf("token %s revoked\n", argv[1]);
    return 0;
}

/* A courier: its token (role courier) and the salt of its signing secret,
 * in one transaction (src/auth.c). The token and the secret are printed once;
 * neither is stored (the secret is derived from the master key and the salt). */
static int cmd_courier_add(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 2 || !argv[1][0] || strlen(argv[1]) > 64) {
        fprintf(stderr, "usage: cardctl courier add NAME   (1 to 64 characters)\n");
        return 2;
    }
    const char *name = argv[1];
    uint8_t master[32];
    char token[AUTH_TOKEN_LEN + 1], secret[AUTH_SECRET_HEX_LEN + 1];
    int rc = auth_load_master_key(ctl->cfg.master_key_file, master);
    if (rc) {
        fprintf(stderr, "cardctl: cannot read the master key %s (%s); run cardctl keys init\n",
                ctl->cfg.master_key_file, rc == -EPERM ? "readable by others" : strerror(-rc));
        return 1;
    }
    if (need_db(ctl)) {
        OPENSSL_cleanse(master, sizeof(master));
        return 1;
    }
    rc = db_begin(ctl->db);
    if (!rc)
        rc = auth_courier_create(ctl->db, master, name, token, secret);
    if (!rc)
        rc = db_commit(ctl->db);
    OPENSSL_cleanse(master, sizeof(master));
    if (rc) {
        db_rollback(ctl->db);
        OPENSSL_cleanse(secret, sizeof(secret));
        if (rc == DB_ECONFLICT)
            fprintf(stderr, "cardctl: a courier or token named %s exists already\n", name);
        else
            fprintf(stderr, "cardctl: cannot add the courier (%d)\n", rc);
        return 1;
    }
    printf("token:  %s\nsecret: %s\n", token, secret);
    OPENSSL_cleanse(token, sizeof(token));
    OPENSSL_cleanse(secret, sizeof(secret));
    return 0;
}

/* The approval platform's signing secret for status callbacks: a new salt
 * is stored (the secret itself never is) and the secret printed once. A
 * second run replaces it: the platform must be given the new one. */
static int cmd_platform_secret(struct ctl *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return bad_usage(ctl);
    uint8_t master[32];
    char secret[AUTH_SECRET_HEX_LEN + 1];
    int rc = auth_load_master_key(ctl->cfg.master_key_file, master);
    if (rc) {
        fprintf(stderr, "cardctl: cannot read the master key %s (%s); run cardctl keys init\n",
                ctl->cfg.master_key_file, rc == -EPERM ? "readable by others" : strerror(-rc));
        return 1;
    }
    if (need_db(ctl)) {
        OPENSSL_cleanse(master, sizeof(master));
        return 1;
    }
    rc = db_begin(ctl->db);
    if (!rc)
        rc = callbacks_secret_new(ctl->db, master, secret);
    if (!rc)
        rc = audit_append(ctl->db, actor(ctl), "platform.secret", NULL, NULL, NULL, NULL);
    if (!rc)
        rc = db_commit(ctl->db);
    OPENSSL_cleanse(master, sizeof(master));
    if (rc) {
        db_rollback(ctl->db);
        OPENSSL_cleanse(secret, sizeof(secret));
        return db_failed(ctl, "cannot make the platform secret", rc);
    }
    printf("secret: %s\n", secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    return 0;
}

static void callback_line(const struct callback_row *row, void *ctx)
{
    int *n = ctx;
    if ((*n)++ == 0)
        printf("%-32s %7s %6s %5s %-7s %8s %-20s %s\n", "REQUEST", "WAITING", "FAILED", "NEXT",
               "STATE", "ATTEMPTS", "NEXT TRY", "LAST ERROR");
    printf("%-32s %7ld %6ld %5ld %-7s %8ld %-20s %s\n", row->request_no, row->waiting, row->failed,
           row->head_sequence, row->head_state, row->head_attempts,
           strcmp(row->head_state, "failed") == 0 ? "-" : row->next_try,
           row->last_error ? row->last_error : "");
}

/* What waits and what failed, per request: the first callback not sent
 * (NEXT is its sequence) and how it fared. */
static int cmd_callbacks(struct ctl *ctl, int argc, char **argv)
{
    bool failed_only = argc == 2 && strcmp(argv[1], "--failed") == 0;
    if (argc > 2 || (argc == 2 && !failed_only))
        return bad_usage(ctl);
    if (need_db(ctl))
        return 1;
    int n = 0;
    int rc = callbacks_list(ctl->db, failed_only, callback_line, &n);
    if (rc)
        return db_failed(ctl, "cannot read the callbacks", rc);
    if (n == 0)
        printf(failed_only ? "no failed callbacks\n" : "no callbacks waiting or failed\n");
    return 0;
}

static int cmd_callbacks_retry(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 2)
        return bad_usage(ctl);
    bool all = strcmp(argv[1], "--all-failed") == 0;
    if (!all && !request_no_valid(argv[1])) {
        fprintf(stderr, "cardctl: %s is not a request number\n", argv[1]);
        return 2;
    }
    if (need_db(ctl))
        return 1;
    long count = 0;
    int rc = callbacks_retry(ctl->db, all ? NULL : argv[1], actor(ctl), &count);
    if (rc == -ENOENT) {
        fprintf(stderr, "cardctl: no request %s\n", argv[1]);
        return 1;
    }
    if (rc)
        return db_failed(ctl, "cannot retry the callbacks", rc);
    printf("%ld failed callback(s) waiting again\n", count);
    return 0;
}

/* The witness's token, typed by the witness: read from the terminal with
 * echo off (or one line of standard input when it is not a terminal), never
 * from the command line, where other users could see it. */
static int read_witness_token(char *out, size_t len)
{
    FILE *in = stdin;
    struct termios saved, quiet;
    bool tty = isatty(fileno(in)) && tcgetattr(fileno(in), &saved) == 0;
    if (tty) {
        fprintf(stderr, "witness: a second operator types their token: ");
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(in), TCSAFLUSH, &quiet);
    }
    char *line = fgets(out, (int)len, in);
    if (tty) {
        tcsetattr(fileno(in), TCSAFLUSH, &saved);
        fprintf(stderr, "\n");
    }
    if (!line)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

/* Checks the witness for a hand-made card change; 0 with witness filled. */
static int witness_of(struct ctl *ctl, struct identity *witness)
{
    char token[256];
    const char *why = NULL;
    if (read_witness_token(token, sizeof(token)) != 0) {
        fprintf(stderr, "cardctl: no witness token given\n");
        return 1;
    }
    int rc = need_db(ctl) ? DB_EDOWN : auth_witness(ctl->db, token, NULL, witness, &why);
    OPENSSL_cleanse(token, sizeof(token));
    if (rc == -EACCES) {
        fprintf(stderr, "cardctl: refused: %s\n", why);
        return 1;
    }
    return rc ? db_failed(ctl, "cannot check the witness", rc) : 0;
}

static int card_change_result(struct ctl *ctl, int rc, const char *serial, const char *state,
                              const char *rule)
{
    if (rc == -ENOENT) {
        fprintf(stderr, "cardctl: no card %s\n", serial);
        return 1;
    }
    if (rc == -EBUSY) {
        fprintf(stderr, "cardctl: card %s is %s; %s\n", serial, state, rule);
        return 1;
    }
    return rc ? db_failed(ctl, "cannot change the card", rc) : 0;
}

static int cmd_card_spoil(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 3 || !argv[2][0] || strlen(argv[2]) > 200)
        return bad_usage(ctl);
    struct identity witness;
    char state[16];
    int rc = witness_of(ctl, &witness);
    if (rc)
        return rc;
    rc = stock_card_spoil(ctl->db, argv[1], argv[2], actor(ctl), witness.name, state);
    rc = card_change_result(ctl, rc, argv[1], state, "only an available blank can be spoiled");
    if (!rc)
        printf("card %s spoiled by %s, witnessed by %s\n", argv[1], actor(ctl), witness.name);
    return rc;
}

static int cmd_card_destroy(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 2)
        return bad_usage(ctl);
    struct identity witness;
    char state[16];
    int rc = witness_of(ctl, &witness);
    if (rc)
        return rc;
    rc = stock_card_destroy(ctl->db, argv[1], actor(ctl), witness.name, state);
    rc = card_change_result(ctl, rc, argv[1], state, "only a spoiled card is destroyed");
    if (!rc)
        printf("card %s destroyed by %s, witnessed by %s\n", argv[1], actor(ctl), witness.name);
    return rc;
}

typedef int (*import_fn)(struct db *, FILE *, char *, size_t);

static int run_import(struct ctl *ctl, int argc, char **argv, import_fn fn, const char *what)
{
    if (argc != 2) {
        fprintf(stderr, "usage: cardctl %s import FILE\n", what);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        fprintf(stderr, "cardctl: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int rc = 1;
    char msg[512];
    if (need_db(ctl) == 0) {
        int n = fn(ctl->db, f, msg, sizeof(msg));
        if (n < 0)
            fprintf(stderr, "cardctl: %s: %s; nothing imported\n", argv[1], msg);
        else
            printf("%s: %d %s imported\n", argv[1], n, what);
        rc = n < 0;
    }
    fclose(f);
    return rc;
}

static int cmd_branches_import(struct ctl *ctl, int argc, char **argv)
{
    return run_import(ctl, argc, argv, refdata_import_branches, "branches");
}

static int cmd_cities_import(struct ctl *ctl, int argc, char **argv)
{
    return run_import(ctl, argc, argv, refdata_import_cities, "cities");
}

static int cmd_holidays_import(struct ctl *ctl, int argc, char **argv)
{
    return run_import(ctl, argc, argv, refdata_import_holidays, "holidays");
}

static int cmd_keygen(struct ctl *ctl, int argc, char **argv)
{
    if (argc > 2)
        return bad_usage(ctl);
    const char *path = argc > 1 ? argv[1] : ctl->cfg.master_key_file;
    int rc = auth_create_master_key(path);
    if (rc == -EEXIST) {
        fprintf(stderr, "cardctl: %s exists; a master key is never overwritten\n", path);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "cardctl: cannot write %s: %s\n", path, strerror(-rc));
        return 1;
    }
    printf("master key written to %s (mode 0600)\n", path);
    return 0;
}

/* cardctl card read ...: argv[0] is "read", as cli_card_read() wants it. */
static int cmd_card_read(struct ctl *ctl, int argc, char **argv)
{
    (void)ctl;
    return cli_card_read(argc, argv);
}

/* cardctl signer ...: the Document Signer key on the token (cli_signer.h). */
static int signer_run(struct ctl *ctl, int argc, char **argv,
                      int (*fn)(const struct config *, int, char **))
{
    int rc = fn(&ctl->cfg, argc, argv);
    return rc == 2 ? bad_usage(ctl) : rc;
}

static int cmd_signer_init(struct ctl *ctl, int argc, char **argv)
{
    return signer_run(ctl, argc, argv, cli_signer_init);
}

static int cmd_signer_csr(struct ctl *ctl, int argc, char **argv)
{
    return signer_run(ctl, argc, argv, cli_signer_csr);
}

static int cmd_signer_install(struct ctl *ctl, int argc, char **argv)
{
    return signer_run(ctl, argc, argv, cli_signer_install);
}

static int cmd_signer_status(struct ctl *ctl, int argc, char **argv)
{
    return signer_run(ctl, argc, argv, cli_signer_status);
}

/* The face a request's card has or would have, as a PNG; no card yet is a
 * preview with a placeholder serial. */
static int cmd_card_face(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 3)
        return bad_usage(ctl);
    const char *request_no = argv[1], *out = argv[2];
    if (!request_no_valid(request_no)) {
        fprintf(stderr, "cardctl: %s is not a request number (1 to 32 of A-Z 0-9 -)\n", request_no);
        return 2;
    }
    if (need_db(ctl))
        return 1;
    struct job job;
    int rc = card_face_data(ctl->db, request_no, &job);
    if (rc == -ENOENT) {
        fprintf(stderr, "cardctl: no request %s\n", request_no);
        return 1;
    }
    if (rc)
        return db_failed(ctl, "cannot read the request", rc);
    bool family = strcmp(job.kind, "family_record") == 0;
    const char *serial = job.card_serial[0] ? job.card_serial : "PREVIEW";
    struct face_data face;
    production_face_data(&job, serial, &face);
    rc = cli_card_face_render(&face, out);
    if (rc) {
        fprintf(stderr, "cardctl: cannot render the face of %s to %s: %s\n", request_no, out,
                rc == -EINVAL ? "a field is missing or does not fit on the card"
                : rc == -EIO  ? "the file cannot be written"
                              : strerror(-rc));
        return 1;
    }
    printf("%s: %s of %s, card %s%s, expiry %s\n", out,
           family ? "family record" : "national ID card", request_no, serial,
           job.card_serial[0] ? "" : " (no card yet)", job.expiry_date);
    struct face_field fields[FACE_MAX_FIELDS];
    size_t nf = face_fields(&face, fields);
    for (size_t i = 0; i < nf; i++)
        printf("  %s: %s\n", fields[i].label_en, fields[i].value);
    return 0;
}

/* The widest value of a column, at least the heading; NULL counts as "-". */
static int column_width(const struct db_res *res, int col, const char *heading)
{
    size_t w = strlen(heading);
    for (size_t r = 0; r < db_rows(res); r++) {
        const char *v = db_get(res, r, col);
        size_t n = v ? strlen(v) : 1;
        if (n > w)
            w = n;
    }
    return w > 64 ? 64 : (int)w;
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static int cmd_stations(struct ctl *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return bad_usage(ctl);
    if (need_db(ctl))
        return 1;
    struct db_res *res = NULL;
    int rc = stations_fetch(ctl->db, &res);
    if (rc)
        return db_failed(ctl, "cannot list the stations", rc);
    if (db_rows(res) == 0) {
        printf("no stations: cardd records its configured stations when it starts\n");
        db_res_free(res);
        return 0;
    }
    int wid = column_width(res, STATION_COL_ID, "STATION");
    int winst = column_width(res, STATION_COL_INSTANCE, "INSTANCE");
    int wstate = column_width(res, STATION_COL_STATE, "STATE");
    int wreason = column_width(res, STATION_COL_REASON, "REASON");
    printf("%-*s  %-*s  %-*s  %-*s  %8s  %7s  %s\n", wid, "STATION", winst, "INSTANCE", wstate,
           "STATE", wreason, "REASON", "PRODUCED", "SPOILED", "JOB");
    for (size_t r = 0; r < db_rows(res); r++) {
        char job[80] = "-";
        if (!db_is_null(res, r, STATION_COL_JOB_REQUEST))
            snprintf(job, sizeof(job), "%s card %s", db_get(res, r, STATION_COL_JOB_REQUEST),
                     or_dash(db_get(res, r, STATION_COL_JOB_CARD)));
        printf("%-*s  %-*s  %-*s  %-*s  %8ld  %7ld  %s\n", wid, db_get(res, r, STATION_COL_ID),
               winst, db_get(res, r, STATION_COL_INSTANCE), wstate,
               db_get(res, r, STATION_COL_STATE), wreason,
               or_dash(db_get(res, r, STATION_COL_REASON)),
               db_get_long(res, r, STATION_COL_PRODUCED, 0),
               db_get_long(res, r, STATION_COL_SPOILED, 0), job);
    }
    db_res_free(res);
    return 0;
}

static int set_paused(struct ctl *ctl, int argc, char **argv, bool paused)
{
    if (argc != 2)
        return bad_usage(ctl);
    if (need_db(ctl))
        return 1;
    char state[16];
    int rc = station_set_paused(ctl->db, argv[1], paused, actor(ctl), state);
    if (rc == -ENOENT) {
        fprintf(stderr, "cardctl: no station %s (cardctl stations lists them)\n", argv[1]);
        return 1;
    }
    if (rc)
        return db_failed(ctl, paused ? "cannot pause the station" : "cannot resume the station",
                         rc);
    printf("station %s %s; it is %s%s\n", argv[1], paused ? "paused" : "resumed", state,
           paused && strcmp(state, "busy") == 0 ? " (it finishes the card it has, then stops)"
                                                : "");
    return 0;
}

static int cmd_station_pause(struct ctl *ctl, int argc, char **argv)
{
    return set_paused(ctl, argc, argv, true);
}

static int cmd_station_resume(struct ctl *ctl, int argc, char **argv)
{
    return set_paused(ctl, argc, argv, false);
}

#define QUEUE_LIMIT_MAX 500 /* as GET /v1/production/queue */

static int cmd_queue(struct ctl *ctl, int argc, char **argv)
{
    long limit = 50;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc &&
            parse_long(argv[i + 1], 1, QUEUE_LIMIT_MAX, &limit))
            i++;
        else
            return bad_usage(ctl);
    }
    if (need_db(ctl))
        return 1;
    struct db_res *queue = NULL, *held = NULL;
    struct production_progress p;
    int rc = production_progress(ctl->db, 10, &p);
    /* One row more than shown says whether more wait. */
    if (!rc)
        rc = production_queue_fetch(ctl->db, 0, limit + 1, false, &queue);
    if (!rc)
        rc = production_queue_fetch(ctl->db, 0, limit + 1, true, &held);
    if (rc) {
        db_res_free(queue);
        return db_failed(ctl, "cannot read the queue", rc);
    }
    printf("%ld waiting, %ld in production, %ld held\n", p.waiting, p.in_production, p.held);
    size_t n = db_rows(queue), shown = n > (size_t)limit ? (size_t)limit : n;
    if (shown > 0) {
        int wno = column_width(queue, QUEUE_COL_REQUEST_NO, "REQUEST");
        printf("%-*s  %-13s  %-6s  %-13s  %-20s  %7s  %s\n", wno, "REQUEST", "KIND", "REASON",
               "STATUS", "QUEUED AT", "SPOILED", "WHERE");
        for (size_t r = 0; r < shown; r++) {
            char where[64];
            if (!db_is_null(queue, r, QUEUE_COL_STATION))
                snprintf(where, sizeof(where), "station %s", db_get(queue, r, QUEUE_COL_STATION));
            else
                snprintf(where, sizeof(where), "%s",
                         db_is_null(queue, r, QUEUE_COL_HOLD_REASON) ? "waiting" : "held");
            printf("%-*s  %-13s  %-6s  %-13s  %-20s  %7ld  %s\n", wno,
                   db_get(queue, r, QUEUE_COL_REQUEST_NO), db_get(queue, r, QUEUE_COL_KIND),
                   db_get(queue, r, QUEUE_COL_REASON), db_get(queue, r, QUEUE_COL_STATUS),
                   db_get(queue, r, QUEUE_COL_QUEUED_AT),
                   db_get_long(queue, r, QUEUE_COL_SPOILED_CARDS, 0), where);
        }
        if (n > shown)
            printf("... more: the oldest %zu are shown (--limit N, up to %d)\n", shown,
                   QUEUE_LIMIT_MAX);
    }
    n = db_rows(held);
    shown = n > (size_t)limit ? (size_t)limit : n;
    if (shown > 0) {
        printf("\nheld for an operator (cardctl request release REQUEST_NO):\n");
        int wno = column_width(held, QUEUE_COL_REQUEST_NO, "REQUEST");
        for (size_t r = 0; r < shown; r++)
            printf("  %-*s  %ld spoiled  %s\n", wno, db_get(held, r, QUEUE_COL_REQUEST_NO),
                   db_get_long(held, r, QUEUE_COL_SPOILED_CARDS, 0),
                   db_get(held, r, QUEUE_COL_HOLD_REASON));
        if (n > shown)
            printf("  ... more: the oldest %zu are shown\n", shown);
    }
    db_res_free(queue);
    db_res_free(held);
    return 0;
}

static int cmd_request_release(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 2)
        return bad_usage(ctl);
    const char *request_no = argv[1];
    if (!request_no_valid(request_no)) {
        fprintf(stderr, "cardctl: %s is not a request number (1 to 32 of A-Z 0-9 -)\n", request_no);
        return 2;
    }
    if (need_db(ctl))
        return 1;
    char reason[512];
    int rc = request_release_hold(ctl->db, request_no, actor(ctl), reason, sizeof(reason));
    if (rc == -ENOENT) {
        fprintf(stderr, "cardctl: no request %s\n", request_no);
        return 1;
    }
    if (rc == -EALREADY) {
        fprintf(stderr, "cardctl: request %s is not held; nothing to release\n", request_no);
        return 1;
    }
    if (rc)
        return db_failed(ctl, "cannot release the request", rc);
    printf("request %s released to production (it was %s)\n", request_no, reason);
    return 0;
}

static int cmd_stock(struct ctl *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return bad_usage(ctl);
    if (need_db(ctl))
        return 1;
    struct stock_batch *batches = NULL;
    size_t n = 0;
    long totals[STOCK_NCOUNTS];
    int rc = stock_census(ctl->db, &batches, &n, totals);
    if (rc)
        return db_failed(ctl, "cannot count the stock", rc);
    static const char *const heading[STOCK_NCOUNTS] = { "RECEIVED",  "USED",    "SPOILED",
                                                        "DESTROYED", "IN_PROD", "AVAILABLE" };
    int wbatch = (int)strlen("BATCH");
    for (size_t b = 0; b < n; b++)
        if ((int)strlen(batches[b].batch_no) > wbatch)
            wbatch = (int)strlen(batches[b].batch_no);
    printf("%-*s  %-9s", wbatch, "BATCH", "FIRST");
    for (int k = 0; k < STOCK_NCOUNTS; k++)
        printf("  %9s", heading[k]);
    printf("  RECEIVED AT\n");
    for (size_t b = 0; b < n; b++) {
        printf("%-*s  %-9s", wbatch, batches[b].batch_no, batches[b].first_serial);
        for (int k = 0; k < STOCK_NCOUNTS; k++)
            printf("  %9ld", batches[b].count[k]);
        printf("  %s\n", batches[b].received_at);
    }
    printf("%-*s  %-9s", wbatch, "total", "");
    for (int k = 0; k < STOCK_NCOUNTS; k++)
        printf("  %9ld", totals[k]);
    printf("\n");
    free(batches);
    return 0;
}

static const char *stock_rule(const struct stock_problem *p)
{
    if (strcmp(p->code, "no_room_for_count") == 0)
        return "the numeric tail of FIRST_SERIAL has no room for COUNT cards";
    if (strcmp(p->field, "batch_no") == 0)
        return "BATCH is 1 to 32 of A-Z 0-9 -";
    if (strcmp(p->field, "first_serial") == 0)
        return "FIRST_SERIAL is 1 to 9 of A-Z 0-9, ending in digits";
    return "COUNT is 1 to 100000";
}

static int cmd_stock_receive(struct ctl *ctl, int argc, char **argv)
{
    if (argc != 4)
        return bad_usage(ctl);
    const char *batch_no = argv[1], *first = argv[2];
    long count = 0;
    struct stock_problem problems[3];
    char last[CARD_SERIAL_MAX + 1] = "";
    if (!parse_long(argv[3], 1, STOCK_MAX_BATCH, &count)) {
        fprintf(stderr, "cardctl: COUNT is a whole number from 1 to %d\n", STOCK_MAX_BATCH);
        return 2;
    }
    int nproblems = stock_batch_check(batch_no, first, &count, problems, last);
    for (int k = 0; k < nproblems; k++)
        fprintf(stderr, "cardctl: %s\n", stock_rule(&problems[k]));
    if (nproblems)
        return 2;
    if (need_db(ctl))
        return 1;
    int rc = stock_batch_receive(ctl->db, batch_no, first, count, actor(ctl), last);
    switch (rc) {
    case STOCK_RECEIVED:
        printf("batch %s received: %ld cards %s..%s\n", batch_no, count, first, last);
        return 0;
    case STOCK_SAME_BATCH:
        printf("batch %s was already received with these %ld cards %s..%s; nothing changed\n",
               batch_no, count, first, last);
        return 0;
    case -EEXIST:
        fprintf(stderr, "cardctl: a different batch %s was already received; nothing received\n",
                batch_no);
        return 1;
    case -EADDRINUSE:
        fprintf(stderr,
                "cardctl: some serials of %s..%s were already received in another batch;"
                " nothing received\n",
                first, last);
        return 1;
    default:
        return db_failed(ctl, "cannot receive the batch", rc);
    }
}

static volatile sig_atomic_t stop_watch;

static void on_stop(int sig)
{
    (void)sig;
    stop_watch = 1;
}

/* Sleeps for seconds, or less when told to stop. */
static void nap(double seconds)
{
    struct timespec ts = { .tv_sec = (time_t)seconds,
                           .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };
    while (!stop_watch && nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void progress_line(const struct production_progress *p, char *line, size_t len)
{
    char clock[16] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
    int n =
        snprintf(line, len,
                 "%s  queued %ld (held %ld) | in production %ld | today produced %ld, spoiled %ld"
                 " | stations %ld busy %ld idle %ld error",
                 clock, p->waiting, p->held, p->in_production, p->produced_today, p->spoiled_today,
                 p->busy, p->idle, p->error);
    if (n > 0 && (size_t)n < len && (p->paused || p->offline))
        n += snprintf(line + n, len - (size_t)n, " %ld paused %ld offline", p->paused, p->offline);
    if (n > 0 && (size_t)n < len)
        snprintf(line + n, len - (size_t)n, " | %.0f cards/h (last %d min)",
                 production_cards_per_hour(p), p->window_min);
}

static int cmd_watch(struct ctl *ctl, int argc, char **argv)
{
    double interval = 5.0;
    long window = 10;
    bool until_idle = false;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--until-idle") == 0) {
            until_idle = true;
        } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            interval = strtod(argv[++i], &end);
            if (!*argv[i] || *end || !(interval >= 0.1 && interval <= 3600)) {
                fprintf(stderr, "cardctl: --interval is 0.1 to 3600 seconds\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) {
            if (!parse_long(argv[++i], 1, 1440, &window)) {
                fprintf(stderr, "cardctl: --window is 1 to 1440 minutes\n");
                return 2;
            }
        } else {
            return bad_usage(ctl);
        }
    }
    if (need_db(ctl))
        return 1;
    bool tty = isatty(STDOUT_FILENO);
    struct sigaction sa = { .sa_handler = on_stop }; /* no SA_RESTART: wake the nap */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int status = 0;
    for (;;) {
        struct production_progress p;
        char line[512];
        int rc = production_progress(ctl->db, (int)window, &p);
        if (rc) {
            if (tty)
                putchar('\n');
            return db_failed(ctl, "cannot read the progress", rc);
        }
        progress_line(&p, line, sizeof(line));
        if (tty) {
            /* One line redrawn in place, cut to the terminal's width so it never wraps. */
            struct winsize ws;
            int cols =
                ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col - 1 : 0;
            printf("\r%.*s\033[K", cols > 0 ? cols : (int)sizeof(line), line);
        } else {
            printf("%s\n", line);
        }
        fflush(stdout);
        if (until_idle && p.waiting == 0 && p.in_production == 0)
            break;
        nap(interval);
        if (stop_watch) {
            /* Stopped before the line went idle: a script waiting for it must not go on. */
            status = until_idle ? 1 : 0;
            break;
        }
    }
    if (tty)
        putchar('\n');
    return status;
}

static const struct command {
    const char *word1, *word2;              /* word2 NULL: a one-word command */
    int (*run)(struct ctl *, int, char **); /* argv[0] is the last command word */
    const char *usage;
} commands[] = {
    { "token", "create", cmd_token_create,
      "token create --role ROLE --name NAME [--branch ID] [--expires DAYS]   (prints it once)" },
    { "token", "list", cmd_token_list,
      "token list   (name, role, branch, created, last used, expires, revoked)" },
    { "token", "revoke", cmd_token_revoke, "token revoke NAME   (refused from the next call on)" },
    { "courier", "add", cmd_courier_add,
      "courier add NAME   (prints its token and signing secret once)" },
    { "platform", "secret", cmd_platform_secret,
      "platform secret   (makes the status callbacks' signing secret and prints it once)" },
    { "callbacks", "retry", cmd_callbacks_retry,
      "callbacks retry REQUEST_NO|--all-failed   (failed callbacks go again, in order)" },
    { "callbacks", NULL, cmd_callbacks,
      "callbacks [--failed]   (status callbacks waiting or failed, per request)" },
    { "branches", "import", cmd_branches_import, "branches import FILE.csv" },
    { "cities", "import", cmd_cities_import, "cities import FILE.csv" },
    { "holidays", "import", cmd_holidays_import, "holidays import FILE.csv" },
    { "keys", "init", cmd_keygen, "keys init [FILE]   (the master key)" },
    { "card", "read", cmd_card_read,
      "card read [--trust PEM] [--timeout MS] [READER]   (exit 0 consistent, 1 not, 3 no reader or card)" },
    { "card", "face", cmd_card_face,
      "card face REQUEST_NO OUT.png   (the card's face; a preview before production)" },
    { "card", "spoil", cmd_card_spoil,
      "card spoil SERIAL REASON   (an available blank; a second operator types their token)" },
    { "card", "destroy", cmd_card_destroy,
      "card destroy SERIAL   (a spoiled card; a second operator types their token)" },
    { "signer", "init", cmd_signer_init,
      "signer init [--rsa]   (a new Document Signer key on the token: ECDSA P-256 or RSA-2048)" },
    { "signer", "csr", cmd_signer_csr,
      "signer csr --subject /C=../O=../CN=.. [--key-id HEX] [OUT.csr]   (PKCS#10, signed on the token)" },
    { "signer", "install", cmd_signer_install,
      "signer install CERT.pem   (checks it against the token's key; stations switch at their next card)" },
    { "signer", "status", cmd_signer_status,
      "signer status   (module, token, keys, certificate; exit 1 when it cannot sign)" },
    { "stations", NULL, cmd_stations, "stations" },
    { "station", "pause", cmd_station_pause, "station pause ID" },
    { "station", "resume", cmd_station_resume, "station resume ID   (also clears an error)" },
    { "queue", NULL, cmd_queue,
      "queue [--limit N]   (what waits, oldest first, and held requests)" },
    { "request", "release", cmd_request_release,
      "request release REQUEST_NO   (a request held after too many spoiled cards)" },
    { "stock", "receive", cmd_stock_receive, "stock receive BATCH FIRST_SERIAL COUNT" },
    { "stock", NULL, cmd_stock, "stock   (cards per batch by state, and totals)" },
    { "watch", NULL, cmd_watch,
      "watch [--interval S] [--window MIN] [--until-idle]   (--until-idle: exit 0 once nothing waits)" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(void)
{
    fprintf(stderr, "usage: cardctl [-c FILE] COMMAND\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(stderr, "  cardctl %s\n", commands[i].usage);
}

static int bad_usage(const struct ctl *ctl)
{
    const char *lead = "usage:";
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].word1, ctl->cmd->word1) == 0) {
            fprintf(stderr, "%-6s cardctl %s\n", lead, commands[i].usage);
            lead = "";
        }
    }
    return 2;
}

/* The command named by the words of argv: two words first, then one.
 * *words says how many it took. */
static const struct command *find_command(int argc, char **argv, int *words)
{
    for (size_t c = 0; argc >= 2 && c < NCOMMANDS; c++) {
        if (commands[c].word2 && strcmp(argv[0], commands[c].word1) == 0 &&
            strcmp(argv[1], commands[c].word2) == 0) {
            *words = 2;
            return &commands[c];
        }
    }
    for (size_t c = 0; argc >= 1 && c < NCOMMANDS; c++) {
        if (!commands[c].word2 && strcmp(argv[0], commands[c].word1) == 0) {
            *words = 1;
            return &commands[c];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct ctl ctl = { 0 };
    const char *config_path = getenv("CARDD_CONFIG");
    int i = 1, rc = 2, words = 0;
    if (config_defaults(&ctl.cfg) != 0)
        return 1;
    if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
        config_path = argv[i + 1];
        i += 2;
    }
    if (config_path && config_load(&ctl.cfg, config_path, stderr) != 0) {
        rc = 1;
        goto out;
    }
    ctl.cmd = find_command(argc - i, argv + i, &words);
    if (!ctl.cmd) {
        usage();
        goto out;
    }
    rc = ctl.cmd->run(&ctl, argc - i - words + 1, argv + i + words - 1);
out:
    db_close(ctl.db);
    config_free(&ctl.cfg);
    return rc;
}
