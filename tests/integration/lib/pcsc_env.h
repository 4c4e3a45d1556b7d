/*
 * pcsc_env.h — a private PC/SC stack for tests: the real pcscd with the
 * vsmartcard vpcd driver in a mount namespace of its own (TESTBENCH.md,
 * "unshare recipe"), on a free vpcd port, plus optionally one emu-card.
 *
 * One environment per process: pcsc-lite's client library reads
 * PCSCLITE_CSOCK_NAME once, at its first call, and pcsc_env_start sets it.
 * Start the environment before any PC/SC call.
 *
 *   struct pcsc_env *env;
 *   pcsc_env_start(&(struct pcsc_env_opts){ .with_card = true }, &env);
 *   pcsc_env_card(env, NULL, 0, "insert %s %s", serial, keyhex);
 *   ... encoder_open(&encoder_pcsc_ops, pcsc_env_reader(env), 0, &enc) ...
 *   pcsc_env_stop(env);
 */
#ifndef PCSC_ENV_H
#define PCSC_ENV_H

#include <stdbool.h>
#include <stddef.h>

struct pcsc_env_opts {
    bool with_card;       /* also start build/emu-card on the reader */
    bool card_t0;         /* the emulated card speaks T=0 */
    const char *emu_card; /* emu-card binary; NULL: $BUILD/emu-card */
};

struct pcsc_env;

/*
 * Makes a work folder, writes a reader.conf for a free vpcd port, starts
 * pcscd (and emu-card), waits until vpcd listens and the control socket
 * answers, and points this process's PC/SC client at the private pcscd.
 * Returns 0 and *out, or -errno (everything started is stopped again).
 */
int pcsc_env_start(const struct pcsc_env_opts *opts, struct pcsc_env **out);

/* The reader's PC/SC name ("Virtual PCD 00 00"). */
const char *pcsc_env_reader(const struct pcsc_env *env);

/* The vpcd TCP port a card emulator must connect to. */
int pcsc_env_vpcd_port(const struct pcsc_env *env);

/* The emu-card control socket path, and the folder where it keeps each
 * card's files (<outdir>/<serial>/<FID>.bin, status.json). */
const char *pcsc_env_control(const struct pcsc_env *env);
const char *pcsc_env_card_outdir(const struct pcsc_env *env);

/*
 * Sends one control line (printf format) to emu-card and reads its reply
 * line into reply[0..cap) if reply is not NULL. Returns 0 on "ok ...",
 * -EPROTO on "err ...", -errno if the socket fails (10 s time-out).
 */
int pcsc_env_card(struct pcsc_env *env, char *reply, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Stops emu-card and pcscd (SIGTERM, then waits), removes the work folder
 * unless PCSC_ENV_KEEP=1 is set, and frees env. NULL-safe.
 * PCSC_ENV_DEBUG=1 runs pcscd with -d (log in the work folder). */
void pcsc_env_stop(struct pcsc_env *env);

#endif
