/* line_env.h — an emulated production line for integration tests: one
 * private pcscd with a virtual reader per station and an emulated card
 * behind each, and one emu-printer process holding every station's USB
 * printer, coupled to its card. The service under test is started with the
 * environment line_env_export() sets (preload, UMOCKDEV_DIR, PC/SC socket). */
#ifndef CARDD_IT_LINE_ENV_H
#define CARDD_IT_LINE_ENV_H

#include <stddef.h>
#include <sys/types.h>

#include "usb_env.h"

#define LINE_MAX_STATIONS 16

struct line_env {
    int n;
    char dir[256];
    pid_t pcscd;
    pid_t card[LINE_MAX_STATIONS];
    struct usb_env usb;
    char csock[300];
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

/* "station = stK evolis SERIAL READER" lines for the service's config,
 * for stations first..first+count-1, ids prefixed with prefix. */
void line_env_config(const struct line_env *env, int first, int count, const char *prefix,
                     char *out, size_t len);

/* Writes the Document Signer (ds.key, ds.pem, csca.pem) into keys_dir and
 * the batch's transport key into keys_dir/transport/<batch_no>.key. */
int line_env_keys(const struct line_env *env, const char *keys_dir, const char *batch_no);

/* Sets, for processes started afterwards, what they need to reach the
 * emulated devices. */
void line_env_export(const struct line_env *env);
void line_env_unexport(void);

/* One control line to station k's printer or card emulator; reply gets
 * the answer line. 0 when it starts with "ok". */
int line_env_printer(const struct line_env *env, int k, const char *line, char *reply, size_t len);
int line_env_card(const struct line_env *env, int k, const char *line, char *reply, size_t len);

/* Stops everything and removes the folder. */
void line_env_stop(struct line_env *env);

#endif
