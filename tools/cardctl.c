/* cardctl — the operator's command line.
 *
 * It talks to the database directly with the same configuration as cardd,
 * for the tasks that come before any API call can be made (tokens,
 * reference data, keys). Commands are a table, as in Redis. */
#include "auth.h"
#include "config.h"
#include "db.h"
#include "refdata.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl {
    struct config cfg;
    struct db *db;
};

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

static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static int cmd_token_create(struct ctl *ctl, int argc, char **argv)
{
    const char *role = opt(argc, argv, "--role"), *name = opt(argc, argv, "--name");
    if (!role || !name) {
        fprintf(stderr, "usage: cardctl token create --role ROLE --name NAME\n");
        return 2;
    }
    if (!auth_role_bit(role)) {
        fprintf(stderr, "cardctl: unknown role %s (intake, operator, courier, branch, admin)\n", role);
        return 2;
    }
    if (need_db(ctl))
        return 1;
    char token[AUTH_TOKEN_LEN + 1];
    int rc = auth_token_create(ctl->db, role, name, token, NULL);
    if (rc == DB_ECONFLICT) {
        fprintf(stderr, "cardctl: a token named %s exists already\n", name);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "cardctl: cannot create the token (%d)\n", rc);
        return 1;
    }
    /* Shown once: the database keeps only its hash. */
    printf("%s\n", token);
    memset(token, 0, sizeof(token));
    return 0;
}

/* A courier: its token (role courier) and the salt of its signing secret,
 * in one transaction. The token and the secret are printed once; neither is
 * stored (the secret is derived from the master key and the salt). */
static int cmd_courier_add(struct ctl *ctl, int argc, char **argv)
{
    if (argc < 1 || !argv[0][0] || strlen(argv[0]) > 64) {
        fprintf(stderr, "usage: cardctl courier add NAME   (1 to 64 characters)\n");
        return 2;
    }
    const char *name = argv[0];
    uint8_t master[32], salt[16];
    char token[AUTH_TOKEN_LEN + 1], secret[AUTH_SECRET_HEX_LEN + 1], salt_hex[2 + 33] = "\\x";
    long token_id = 0;
    int rc = auth_load_master_key(ctl->cfg.master_key_file, master);
    if (rc) {
        fprintf(stderr, "cardctl: cannot read the master key %s (%s); run cardctl keys init\n",
                ctl->cfg.master_key_file, rc == -EPERM ? "readable by others" : strerror(-rc));
        return 1;
    }
    if (RAND_bytes(salt, sizeof(salt)) != 1 || need_db(ctl)) {
        OPENSSL_cleanse(master, sizeof(master));
        return 1;
    }
    for (int i = 0; i < 16; i++)
        sprintf(salt_hex + 2 + 2 * i, "%02x", salt[i]);
    char tid[24];
    rc = db_begin(ctl->db);
    if (!rc)
        rc = auth_token_create(ctl->db, "courier", name, token, &token_id);
    snprintf(tid, sizeof(tid), "%ld", token_id);
    if (!rc)
        rc = db_query(ctl->db, NULL,
                      "INSERT INTO couriers (name, token_id, secret_salt) VALUES ($1, $2::bigint, $3::bytea)",
                      name, tid, salt_hex);
    if (!rc)
        rc = db_commit(ctl->db);
    if (rc) {
        db_rollback(ctl->db);
        OPENSSL_cleanse(master, sizeof(master));
        if (rc == DB_ECONFLICT)
            fprintf(stderr, "cardctl: a courier or token named %s exists already\n", name);
        else
            fprintf(stderr, "cardctl: cannot add the courier (%d)\n", rc);
        return 1;
    }
    auth_courier_secret(master, name, salt, secret);
    printf("token:  %s\nsecret: %s\n", token, secret);
    OPENSSL_cleanse(master, sizeof(master));
    OPENSSL_cleanse(token, sizeof(token));
    OPENSSL_cleanse(secret, sizeof(secret));
    return 0;
}

typedef int (*import_fn)(struct db *, FILE *, char *, size_t);

static int run_import(struct ctl *ctl, int argc, char **argv, import_fn fn, const char *what)
{
    if (argc < 1) {
        fprintf(stderr, "usage: cardctl %s import FILE\n", what);
        return 2;
    }
    FILE *f = fopen(argv[0], "r");
    if (!f) {
        fprintf(stderr, "cardctl: %s: %s\n", argv[0], strerror(errno));
        return 1;
    }
    int rc = 1;
    char msg[512];
    if (need_db(ctl) == 0) {
        int n = fn(ctl->db, f, msg, sizeof(msg));
        if (n < 0)
            fprintf(stderr, "cardctl: %s: %s; nothing imported\n", argv[0], msg);
        else
            printf("%s: %d %s imported\n", argv[0], n, what);
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
    const char *path = argc > 0 ? argv[0] : ctl->cfg.master_key_file;
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

static const struct command {
    const char *word1, *word2;
    int (*run)(struct ctl *, int, char **);
    const char *usage;
} commands[] = {
    { "token", "create", cmd_token_create, "token create --role ROLE --name NAME" },
    { "courier", "add", cmd_courier_add, "courier add NAME   (prints its token and signing secret once)" },
    { "branches", "import", cmd_branches_import, "branches import FILE.csv" },
    { "cities", "import", cmd_cities_import, "cities import FILE.csv" },
    { "holidays", "import", cmd_holidays_import, "holidays import FILE.csv" },
    { "keys", "init", cmd_keygen, "keys init [FILE]   (the master key)" },
};

static void usage(void)
{
    fprintf(stderr, "usage: cardctl [-c FILE] COMMAND\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(stderr, "  cardctl %s\n", commands[i].usage);
}

int main(int argc, char **argv)
{
    struct ctl ctl = { 0 };
    const char *config_path = getenv("CARDD_CONFIG");
    int i = 1, rc = 2;
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
    if (i + 1 >= argc) {
        usage();
        goto out;
    }
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
        if (strcmp(argv[i], commands[c].word1) == 0 && strcmp(argv[i + 1], commands[c].word2) == 0) {
            rc = commands[c].run(&ctl, argc - i - 2, argv + i + 2);
            goto out;
        }
    }
    usage();
out:
    db_close(ctl.db);
    config_free(&ctl.cfg);
    return rc;
}
