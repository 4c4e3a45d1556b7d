/* line_env.h — an emulated production line for integration tests.
 *
 * vpcd gives one pcscd at most two virtual readers, so the line is made of
 * hosts of two stations each, as a production centre would run several
 * instances of the service: each host has its own private pcscd with two
 * readers, an emulated card behind each, and one emu-printer process with
 * its two USB printers, coupled to the cards. Each host's service instance
 * is started with the environment line_env_export() sets for that host. */
#ifndef CARDD_IT_LINE_ENV_H
#define CARDD_IT_LINE_ENV_H

#include <stddef.h>
#include <sys/types.h>

#include "usb_env.h"

#define LINE_MAX_STATIONS      16
#define LINE_STATIONS_PER_HOST 2

struct line_host {
    pid_t pcscd;
    int vpcd_port;   /* of the host's first reader; the second is the next */
    char csock[300]; /* a symbolic link to the current pcscd's socket */
    struct usb_env usb;
};

struct line_env {
    int n; /* stations */
    int hosts;
    char dir[256];
    struct line_host host[LINE_MAX_STATIONS / LINE_STATIONS_PER_HOST];
    pid_t card[LINE_MAX_STATIONS];
    char reader[LINE_MAX_STATIONS][64];
    char serial[LINE_MAX_STATIONS][32];
    char printer_control[LINE_MAX_STATIONS][300];
    char card_control[LINE_MAX_STATIONS][300];
    char hopper[LINE_MAX_STATIONS][300];
    char chips[LINE_MAX_STATIONS][300];
    char transport_key[17];
};

/* Starts n stations (printing cycle cycle_ms, 0 for none). 0 or -errno. */
int line_env_start(struct line_env *env, int n, int cycle_ms);

/* The config lines of host h: "instance = hostH" and its stations, whose
 * ids are prefix followed by the station's number from 1. */
void line_env_config(const struct line_env *env, int h, const char *prefix, char *out, size_t len);

/* Writes the Document Signer (ds.key, ds.pem, csca.pem) into keys_dir and
 * the batch's transport key into keys_dir/transport/<batch_no>.key. */
int line_env_keys(const struct line_env *env, const char *keys_dir, const char *batch_no);

/* Sets, for processes started afterwards, what host h's service needs to
 * reach its emulated devices; line_env_unexport() clears it. */
void line_env_export(const struct line_env *env, int h);
void line_env_unexport(void);

/* One control line to station k's printer or card emulator; reply gets
 * the answer line. 0 when it starts with "ok". */
int line_env_printer(const struct line_env *env, int k, const char *line, char *reply, size_t len);
int line_env_card(const struct line_env *env, int k, const char *line, char *reply, size_t len);

/* Kills host h's pcscd (SIGKILL), as a crash would; its readers are gone
 * for the host's service until line_env_pcscd_start(). 0 or -EINVAL. */
int line_env_pcscd_stop(struct line_env *env, int h);

/* Starts host h's pcscd again behind the same client socket path (new vpcd
 * ports; the host's emulated cards are restarted on them). 0 or -errno. */
int line_env_pcscd_start(struct line_env *env, int h);

/* Stops everything and removes the folder (kept when LINE_ENV_KEEP=1). */
void line_env_stop(struct line_env *env);

#endif
