/*
 * encoder.h — the chip encoder contract: what a driver for a contact chip
 * station (a PC/SC reader today) implements, and the core API that the
 * personalisation code calls.
 *
 * Layering, as in pcsc-lite's ifdhandler.h: a driver exports one
 * `const struct encoder_ops` and sees only its private state, which the
 * core allocates (ops->priv_size bytes, zeroed) and frees. The core
 * serialises every call to one encoder with a mutex, so a driver never sees
 * two calls at once on the same state. Calls on different encoders may run
 * in parallel.
 *
 * Errors. Every action returns 0 or a negative code, and the codes keep
 * four situations apart, because the production line reacts to each
 * differently:
 *   -ENODEV     the card (or the reader) is gone: pulled, ejected, reader
 *               unplugged. The card is spoiled if it was mid-sequence.
 *   -ETIMEDOUT  nothing happened within the time allowed (no card came).
 *   -EIO        communication error with a card that is still there
 *               (garbled exchange, mute card, reader protocol error).
 *   -ENCODER_E_STATUS  the exchange worked, but the card answered a status
 *               word other than 90 00; the word is in the response. Only
 *               encoder_command() returns it; encoder_transmit() returns 0
 *               and lets the caller judge the status word.
 * Others: -EINVAL (caller error), -ENOMEM, -EBUSY (reader held by another
 * process), -EMSGSIZE (APDU larger than card and reader allow),
 * -ENOTCONN (no card connected).
 */
#ifndef CARDD_ENCODER_H
#define CARDD_ENCODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Negated like an errno: "the card answered an error status word". */
#define ENCODER_E_STATUS 4096

/* encoder_open flags */
#define ENCODER_SHORT_APDUS 0x1u /* never use extended length */

#define ENCODER_ATR_MAX 33

/* What the driver learnt about the card at connect time. */
struct encoder_card {
    uint8_t atr[ENCODER_ATR_MAX];
    size_t atr_len;
    unsigned protocol;        /* 0 for T=0, 1 for T=1 */
    bool extended;            /* card and reader both take extended APDUs */
    size_t max_command_data;  /* largest Lc: 255, or more when extended */
    size_t max_response_data; /* largest Le: 256, or more when extended */
};

/*
 * Driver operations. Every entry is mandatory. 'priv' is the driver's
 * private state (priv_size bytes, zeroed by the core before open).
 */
struct encoder_ops {
    const char *name; /* "pcsc" */
    size_t priv_size;

    /* Called once, first. Binds the driver to the reader named 'reader'
	 * (the exact name, or a unique prefix of it; NULL for the first reader).
	 * Returns 0, -ENODEV if no such reader, -EIO if the reader service
	 * cannot be reached. Does not wait for a card. */
    int (*open)(void *priv, const char *reader, unsigned flags);

    /* Called before connect, possibly many times. Returns 0 as soon as a
	 * card is in the reader (at once if one already is), -ETIMEDOUT if none
	 * came within timeout_ms, -ENODEV if the reader went away, -EIO. */
    int (*wait_card)(void *priv, unsigned timeout_ms);

    /* Called once a card is present. Powers it and opens an exclusive
	 * session; fills *card. Returns 0, -ENODEV (no card / card left),
	 * -EBUSY (held by someone else), -EIO (card mute or protocol failure). */
    int (*connect)(void *priv, struct encoder_card *card);

    /* Called only between connect and disconnect. Sends one command APDU
	 * (already encoded, short or extended as the core decided) and returns
	 * the whole response, data then SW1 SW2, in rapdu[0..*rlen), *rlen in
	 * as the buffer's size. The driver hides the transport: on T=0 it
	 * fetches data announced by 61xx with GET RESPONSE and resends a command
	 * answered 6Cxx with the right Le, so the caller sees what a T=1 card
	 * would answer. Returns 0 whatever the status word, -ENODEV (card gone),
	 * -EIO, -ETIMEDOUT, -EMSGSIZE (response larger than *rlen). */
    int (*transmit)(void *priv, const uint8_t *capdu, size_t clen, uint8_t *rapdu, size_t *rlen);

    /* Called after connect, also after a failure. Ends the session and
	 * powers the card down. Returns 0, or -ENODEV if the card already left
	 * (harmless). Must leave the driver able to connect again. */
    int (*disconnect)(void *priv);

    /* Called once, last, also after a failed open. Releases everything the
	 * driver holds; the core then frees priv. */
    void (*close)(void *priv);
};

/* The PC/SC driver (drivers/pcsc.c). */
extern const struct encoder_ops encoder_pcsc_ops;

/* One command APDU, before encoding. */
struct apdu {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data; /* Lc bytes, may be NULL when lc is 0 */
    size_t lc;           /* 0 .. card->max_command_data */
    size_t le;           /* 0: no data expected; else 1 .. 65536 */
};

/* A response: data into a buffer the caller owns. */
struct apdu_resp {
    uint8_t *data; /* may be NULL when cap is 0 */
    size_t cap;
    size_t len;  /* data bytes received (without SW) */
    uint16_t sw; /* SW1 SW2, e.g. 0x9000 */
};

struct encoder;

/* Allocates an encoder on driver 'ops' and opens reader 'reader' (see
 * ops->open). flags: ENCODER_SHORT_APDUS. Returns 0 and *out, or the
 * driver's error (nothing allocated then). */
int encoder_open(const struct encoder_ops *ops, const char *reader, unsigned flags,
                 struct encoder **out);

/* Waits up to timeout_ms for a card in the reader. See ops->wait_card. */
int encoder_wait_card(struct encoder *e, unsigned timeout_ms);

/* Connects to the card in the reader. See ops->connect. */
int encoder_connect(struct encoder *e);

/* What connect learnt; NULL before a successful connect. */
const struct encoder_card *encoder_card(const struct encoder *e);

/*
 * Encodes 'cmd' (short form when it fits, extended when it does not and
 * the card allows it), exchanges it and fills *resp. Returns 0 whatever the
 * status word; -EMSGSIZE if the command needs a length the card cannot take
 * or the response does not fit resp->cap; -ENOTCONN before connect; else
 * the driver's -ENODEV / -EIO / -ETIMEDOUT.
 */
int encoder_transmit(struct encoder *e, const struct apdu *cmd, struct apdu_resp *resp);

/* encoder_transmit, then -ENCODER_E_STATUS unless the card said 90 00. */
int encoder_command(struct encoder *e, const struct apdu *cmd, struct apdu_resp *resp);

/* Command APDUs exchanged since encoder_connect (counts retries the
 * driver made for T=0, so that benchmarks see the real cost). */
unsigned long encoder_apdu_count(const struct encoder *e);

/* Ends the session with the card. Safe to call when not connected. */
int encoder_disconnect(struct encoder *e);

/* Disconnects, closes the driver and frees the encoder. NULL-safe. */
void encoder_close(struct encoder *e);

/* Called by drivers to count an extra APDU they sent on their own (GET
 * RESPONSE, a resend after 6Cxx). 'priv' is the driver's state. */
void encoder_count_extra(void *priv);

#endif
