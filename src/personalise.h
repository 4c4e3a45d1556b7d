/*
 * personalise.h — writes a holder's LDS files to a blank card through a
 * chip encoder, in the CARD.md sequence, and says exactly how it went.
 */
#ifndef CARDD_PERSONALISE_H
#define CARDD_PERSONALISE_H

#include <stddef.h>
#include <stdint.h>

#include "encoder.h"
#include "lds.h"
#include "signer.h"

#define PERSO_KEY_LEN 8

/* The outcome the production line records. On failure it is the spoil
 * reason: the step, the file, the status word. Holds no secret. */
struct perso_result {
    int err;             /* 0, or -errno / -ENCODER_E_STATUS */
    const char *step;    /* "select_application", "verify_transport_key", ...; NULL on success */
    uint16_t fid;        /* file concerned, 0 if none */
    uint16_t sw;         /* status word answered, 0 if the failure was not one */
    int tries_left;      /* transport key tries the card reported, -1 if unknown */
    unsigned long apdus; /* command APDUs exchanged */
    char reason
        [160]; /* one line, e.g. "update_binary EF.DG1: card answered 6A84 (not enough memory)" */
};

/* Options; a zeroed struct gives the defaults. */
struct perso_opts {
    unsigned min_tries; /* do not present the key when fewer tries are left (default 2) */
    size_t max_chunk;   /* cap on UPDATE/READ BINARY data per APDU (0: what the card takes) */
};

/*
 * Personalises the card connected on 'enc': builds EF.COM, EF.DG1, EF.DG11
 * and EF.SOD for h (signed by ds), then SELECT the application, VERIFY the
 * transport key, CREATE FILE / SELECT / UPDATE BINARY each file, READ
 * BINARY every file back and check it as an inspection system would (SOD
 * signature, DG hashes), PUT DATA the BAC material and lock.
 *
 * The transport key is presented at most once, and only if the card reports
 * at least opts->min_tries tries left, so a wrong key never exhausts the
 * retry counter. Any status word other than the expected one stops the
 * sequence.
 *
 * Returns 0 only for a card fully written, read back, verified and locked;
 * otherwise the negative code also left in res->err, with res naming the
 * step. The card is then spoiled: the caller ejects it. 'opts' may be NULL.
 */
int personalise(struct encoder *enc, const struct holder *h, struct signer *ds,
                const uint8_t transport_key[PERSO_KEY_LEN], const struct perso_opts *opts,
                struct perso_result *res);

/* A short English meaning of a status word ("not enough memory"), or
 * "unexpected" for words CARD.md does not list. */
const char *perso_sw_text(uint16_t sw);

#endif
