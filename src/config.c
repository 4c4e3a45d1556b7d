/* config.c — table-driven configuration, in the manner of PgBouncer. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum config_type {
    CT_STRING,
    CT_INT,
    CT_STATION
};

struct config_key {
    const char *name;
    enum config_type type;
    size_t offset;
    const char *default_value;
    int min, max;
    const char *help;
};

#define S(field) offsetof(struct config, field)

static const struct config_key keys[] = {
    { "listen_address", CT_STRING, S(listen_address), "127.0.0.1", 0, 0,
      "address the HTTP API listens on" },
    { "port", CT_INT, S(port), "8080", 0, 65535, "TCP port of the HTTP API (0: any free port)" },
    { "database", CT_STRING, S(database), "", 0, 0,
      "libpq connection string of cardd serve and cardctl, as the service role; empty uses "
      "PGHOST, PGPORT, PGUSER, PGDATABASE" },
    { "migrate_database", CT_STRING, S(migrate_database), "", 0, 0,
      "libpq connection string of cardd migrate, as the owner of the schema; empty: database" },
    { "service_role", CT_STRING, S(service_role), "", 0, 0,
      "the database role of the service (owns nothing); cardd migrate grants it what it needs "
      "and no more; empty: no grants (the service then runs as the owner: not for production)" },
    { "db_pool_size", CT_INT, S(db_pool_size), "16", 1, 256, "database connections kept open" },
    { "db_connect_timeout_s", CT_INT, S(db_connect_timeout_s), "5", 1, 300,
      "seconds a database connection attempt may take" },
    { "db_statement_timeout_ms", CT_INT, S(db_statement_timeout_ms), "5000", 100, 3600000,
      "longest a statement of the service may run; then the call answers 503" },
    { "db_lock_timeout_ms", CT_INT, S(db_lock_timeout_ms), "2000", 10, 3600000,
      "longest a statement may wait for a lock; then the call answers 503" },
    { "db_idle_tx_timeout_ms", CT_INT, S(db_idle_tx_timeout_ms), "10000", 100, 3600000,
      "a transaction left idle this long is ended by the database" },
    { "db_keepalive_idle_s", CT_INT, S(db_keepalive_idle_s), "10", 1, 3600,
      "TCP keepalives on database connections: first probe after this many idle seconds" },
    { "db_acquire_timeout_ms", CT_INT, S(db_acquire_timeout_ms), "2000", 10, 60000,
      "longest an HTTP call waits for a free database connection; then 503" },
    { "db_public_connections", CT_INT, S(db_public_connections), "4", 1, 256,
      "of db_pool_size, the most that anonymous calls (tracking, readiness) hold at once; the "
      "rest stay for authenticated calls and the station workers" },
    { "max_connections", CT_INT, S(max_connections), "512", 1, 65536, "HTTP connections at once" },
    { "per_ip_connections", CT_INT, S(per_ip_connections), "16", 1, 65536,
      "HTTP connections at once from one client address (an IPv4 address or an IPv6 /64)" },
    { "per_ip_held_connections", CT_INT, S(per_ip_held_connections), "16", 0, 65536,
      "connections past per_ip_connections from one client address that are answered 429 "
      "after refusal_delay_ms and closed; past these, further ones are closed at once" },
    { "public_rate", CT_INT, S(public_rate), "10", 0, 100000,
      "calls without a token (no Authorization header: tracking, health, readiness, pages) per "
      "second from one client address; past it (and public_burst) they are answered 429 with "
      "Retry-After before any work; 0: no limit" },
    { "public_burst", CT_INT, S(public_burst), "30", 1, 100000,
      "calls without a token one client address may make at once before public_rate applies" },
    { "refusal_delay_ms", CT_INT, S(refusal_delay_ms), "250", 0, 5000,
      "a call refused past public_rate or per_ip_connections is answered after this long, so "
      "that a client ignoring Retry-After costs a sleeping thread rather than a busy core" },
    { "connection_timeout_s", CT_INT, S(connection_timeout_s), "30", 1, 3600,
      "idle HTTP connections are closed after this many seconds" },
    { "log_level", CT_STRING, S(log_level), "info", 0, 0, "debug, info, warn or error" },
    { "sql_dir", CT_STRING, S(sql_dir), "sql", 0, 0, "folder of the numbered migrations" },
    { "master_key_file", CT_STRING, S(master_key_file), "keys/master.key", 0, 0,
      "32-byte key (hex) from which couriers' HMAC secrets are derived; mode 0600" },
    { "keys_dir", CT_STRING, S(keys_dir), "keys", 0, 0,
      "Document Signer key and certificate, stock batches' transport keys" },
    { "problem_base", CT_STRING, S(problem_base), "https://cards.civilaffairs.example/problems/", 0,
      0, "prefix of the type URI in problem details" },
    { "instance", CT_STRING, S(instance), "cardd", 0, 0,
      "name of this instance (several may share one database)" },
    { "track_fail_limit", CT_INT, S(track_fail_limit), "10", 1, 64,
      "failed tracking look-ups allowed per client address and window" },
    { "track_fail_window_s", CT_INT, S(track_fail_window_s), "60", 1, 86400,
      "the window of track_fail_limit, in seconds" },
    { "trusted_proxies", CT_STRING, S(trusted_proxies), "", 0, 0,
      "proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For names the "
      "client; empty: the connection's address is the client" },
    { "delivery_attempts", CT_INT, S(delivery_attempts), "2", 1, 10,
      "failed delivery attempts before the card goes to the nearest branch" },
    { "collection_days", CT_INT, S(collection_days), "10", 1, 365,
      "working days a branch keeps a card for collection" },
    { "spoil_limit", CT_INT, S(spoil_limit), "3", 1, 100,
      "spoiled cards for one request before it is held for an operator" },
    { "sms_gateway_url", CT_STRING, S(sms_gateway_url), "", 0, 0,
      "URL the notification worker POSTs to; empty: notifications wait" },
    { "notify_batch", CT_INT, S(notify_batch), "50", 1, 1000, "notifications sent per round" },
    { "notify_max_backoff_s", CT_INT, S(notify_max_backoff_s), "300", 1, 86400,
      "longest wait between two attempts at one notification" },
    /* The Document Signer (ds.h): where its key is, and its certificate's life. */
    { "signer", CT_STRING, S(signer), "pkcs11", 0, 0,
      "where the Document Signer key is: pkcs11 (an HSM) or file (<keys_dir>/ds.key, development)" },
    { "allow_file_signer", CT_INT, S(allow_file_signer), "0", 0, 1,
      "1 lets stations sign with signer = file; production refuses it otherwise" },
    { "pkcs11_module", CT_STRING, S(pkcs11_module), "", 0, 0,
      "path of the HSM's PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so" },
    { "pkcs11_token", CT_STRING, S(pkcs11_token), "cardd-ds", 0, 0,
      "label of the token that holds the Document Signer key" },
    { "pkcs11_key_label", CT_STRING, S(pkcs11_key_label), "ds", 0, 0,
      "label of the Document Signer keys on the token" },
    { "pkcs11_pin_file", CT_STRING, S(pkcs11_pin_file), "", 0, 0,
      "file with the token's user PIN, mode 0600, no symlink; empty: <keys_dir>/pkcs11.pin" },
    { "ds_cert_warn_days", CT_INT, S(ds_cert_warn_days), "30", 1, 365,
      "warn (log and metric) when the Document Signer certificate expires within these days" },
    /* Status callbacks to the approval platform (callbacks.h). A send may
     * take callback_timeout_ms; its claim lasts that long and a margin (claim.h). */
    { "platform_callback_url", CT_STRING, S(platform_callback_url), "", 0, 0,
      "URL status callbacks are POSTed to; empty: callbacks wait" },
    { "callback_connect_timeout_ms", CT_INT, S(callback_connect_timeout_ms), "3000", 100, 60000,
      "longest wait to connect to the platform" },
    { "callback_timeout_ms", CT_INT, S(callback_timeout_ms), "10000", 200, 300000,
      "longest a whole callback send may take, connecting included" },
    { "callback_max_backoff_s", CT_INT, S(callback_max_backoff_s), "600", 1, 86400,
      "longest wait between two attempts at one callback (Retry-After may ask for more)" },
    { "callback_max_in_flight", CT_INT, S(callback_max_in_flight), "16", 1, 256,
      "callbacks sent at once, each for a different request" },
    { "station", CT_STATION, 0, NULL, 0, 0,
      "a station, repeatable: ID DRIVER PRINTER_SERIAL READER NAME..." },
};

static int set_value(struct config *cfg, const struct config_key *k, const char *value)
{
    if (k->type == CT_STRING) {
        char **target = (char **)((char *)cfg + k->offset);
        char *copy = strdup(value);
        if (!copy)
            return -ENOMEM;
        free(*target);
        *target = copy;
        return 0;
    }
    if (k->type == CT_INT) {
        char *end = NULL;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < k->min || v > k->max)
            return -EINVAL;
        *(int *)((char *)cfg + k->offset) = (int)v;
        return 0;
    }
    /* CT_STATION: "ID DRIVER SERIAL READER NAME WITH SPACES" */
    if (cfg->station_count >= CONFIG_MAX_STATIONS)
        return -EINVAL;
    struct station_config *st = &cfg->stations[cfg->station_count];
    memset(st, 0, sizeof(*st));
    int id_len = 0, drv_len = 0, ser_len = 0, consumed = 0;
    if (sscanf(value, "%32s%n %16s%n %32s%n %n", st->id, &id_len, st->printer_driver, &drv_len,
               st->printer_serial, &ser_len, &consumed) < 3 ||
        consumed == 0)
        return -EINVAL;
    /* A word longer than its field stops the conversion mid-word; refuse it
     * rather than carry its rest over into the next field. */
    if (!isspace((unsigned char)value[id_len]) || !isspace((unsigned char)value[drv_len]) ||
        !isspace((unsigned char)value[ser_len]))
        return -EINVAL;
    const char *reader = value + consumed;
    if (!*reader || strlen(reader) >= sizeof(st->reader))
        return -EINVAL;
    strcpy(st->reader, reader);
    for (const char *p = st->id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return -EINVAL;
    for (int i = 0; i < cfg->station_count; i++)
        if (strcmp(cfg->stations[i].id, st->id) == 0)
            return -EINVAL;
    cfg->station_count++;
    return 0;
}

int config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!keys[i].default_value)
            continue;
        int rc = set_value(cfg, &keys[i], keys[i].default_value);
        if (rc)
            return rc;
    }
    return 0;
}

int config_set(struct config *cfg, const char *key, const char *value)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].name, key) == 0)
            return set_value(cfg, &keys[i], value);
    return -EINVAL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int config_load(struct config *cfg, const char *path, FILE *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (err)
            fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return -ENOENT;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            if (err)
                fprintf(err, "%s:%d: line too long\n", path, lineno);
            rc = -EINVAL;
            break;
        }
        char *s = trim(line);
        if (*s == '#' || *s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            if (err)
                fprintf(err, "%s:%d: expected key = value\n", path, lineno);
            rc = -EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (config_set(cfg, key, value)) {
            if (err)
                fprintf(err, "%s:%d: bad setting '%s'\n", path, lineno, key);
            rc = -EINVAL;
            break;
        }
    }
    fclose(f);
    return rc;
}

void config_describe(FILE *out)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        fprintf(out, "# %s\n", keys[i].help);
        if (keys[i].default_value)
            fprintf(out, "#%s = %s\n\n", keys[i].name, keys[i].default_value);
        else
            fprintf(out, "#%s = st1 evolis EV0001 Virtual PCD 00 00\n\n", keys[i].name);
    }
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (keys[i].type != CT_STRING)
            continue;
        char **target = (char **)((char *)cfg + keys[i].offset);
        free(*target);
        *target = NULL;
    }
}
