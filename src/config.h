/* config.h — the service's settings: one table of name, type, target and
 * default (config.c), read from a "key = value" file. */
#ifndef CARDD_CONFIG_H
#define CARDD_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#define CONFIG_MAX_STATIONS 32

/* One production station: a printer and the chip reader wired to it. */
struct station_config {
    char id[33];
    char printer_driver[17]; /* e.g. "evolis" */
    char printer_serial[33]; /* the printer's own serial number (Rsn) */
    char reader[129];        /* the PC/SC reader name */
};

struct config {
    char *listen_address;
    int port;
    char *database;         /* libpq connection string; empty: the PG* environment */
    char *migrate_database; /* cardd migrate's, as the schema's owner; empty: database */
    char *service_role;     /* the role cardd serve connects as; migrate grants it its rights */
    int db_pool_size;
    int db_connect_timeout_s;    /* giving up on a connection attempt */
    int db_statement_timeout_ms; /* one statement at most */
    int db_lock_timeout_ms;      /* waiting for a row or table lock at most */
    int db_idle_tx_timeout_ms;   /* a transaction left idle is ended by the server */
    int db_keepalive_idle_s;     /* TCP keepalives: a dead peer is found in */
    int db_acquire_timeout_ms;   /* a request waits this long for a pooled connection */
    int db_public_connections;   /* of those, most that anonymous calls may hold */
    int max_connections;
    int per_ip_connections;
    int per_ip_held_connections; /* past those, answered 429 and closed; past these, closed */
    int public_rate;             /* calls without a token per second and client address (0: any) */
    int public_burst;            /* ... in bursts of at most this many */
    int refusal_delay_ms;        /* a refusal past the rate is answered after this long */
    int connection_timeout_s;
    char *log_level;
    char *sql_dir;
    char *master_key_file;   /* 32 random bytes (hex), readable only by the service */
    char *keys_dir;          /* Document Signer key/certificate, stock transport keys */
    char *problem_base;      /* prefix of the "type" URI of problem details */
    char *instance;          /* this instance's name, for stations and claims */
    int track_fail_limit;    /* failed look-ups a client address may make ... */
    int track_fail_window_s; /* ... in this many seconds */
    char *trusted_proxies;   /* proxies whose X-Forwarded-For is believed */
    int delivery_attempts;   /* failed attempts before the parcel goes to a branch */
    int collection_days;     /* working days a branch keeps a card for collection */
    int spoil_limit;         /* spoiled cards before a request is held for an operator */
    char *sms_gateway_url;
    int notify_batch;
    int notify_max_backoff_s;
    /* The Document Signer (ds.h); its certificate is <keys_dir>/ds.pem. */
    char *signer;          /* "pkcs11" or "file" */
    int allow_file_signer; /* 1: stations may use the file signer */
    char *pkcs11_module;
    char *pkcs11_token;
    char *pkcs11_key_label;
    char *pkcs11_pin_file; /* "": <keys_dir>/pkcs11.pin */
    int ds_cert_warn_days;
    char *platform_callback_url; /* status callbacks; see callbacks.h */
    int callback_connect_timeout_ms;
    int callback_timeout_ms;
    int callback_max_backoff_s;
    int callback_max_in_flight;
    int station_count;
    struct station_config stations[CONFIG_MAX_STATIONS];
};

/* Fills cfg with the defaults. Returns 0 or -ENOMEM. */
int config_defaults(struct config *cfg);

/* Reads a file over the defaults. Unknown keys and bad values are errors,
 * reported on err with the line number. Returns 0, -ENOENT or -EINVAL. */
int config_load(struct config *cfg, const char *path, FILE *err);

/* Sets one key from text, as a line of the file would. Returns 0 or -EINVAL. */
int config_set(struct config *cfg, const char *key, const char *value);

/* Writes every setting with its help text: the documented default file. */
void config_describe(FILE *out);

/* Frees what config_defaults and config_load allocated. NULL-safe. */
void config_free(struct config *cfg);

#endif
