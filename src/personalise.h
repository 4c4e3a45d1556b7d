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
#include "tlv.h"

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

/* A card's data, built and checked before a blank card is fed: the LDS
 * files (SOD signed) and the BAC material. */
struct perso_data {
    struct lds l;
    struct tlv_buf bac;
};

/*
 * Builds the files of h, signs the SOD with ds and checks the signature and
 * the hashes as an inspection system would, touching no card. Returns 0 and
 * fills *d (free with perso_data_free), or the error, with res naming the
 * step: "build_files" with -EINVAL when the holder's data cannot go on a
 * chip (the request cannot be produced as it is), "build_files" with the
 * signer's error or "check_signature" when the Document Signer failed.
 */
int personalise_prepare(const struct holder *h, struct signer *ds, struct perso_data *d,
                        struct perso_result *res);

/* Frees what personalise_prepare built. NULL-safe; idempotent after it. */
void perso_data_free(struct perso_data *d);

/* Writes prepared data to the card connected on enc (as personalise(),
 * from SELECT on). */
int personalise_write(struct encoder *enc, const struct perso_data *d,
                      const uint8_t transport_key[PERSO_KEY_LEN], const struct perso_opts *opts,
                      struct perso_result *res);

/* A short English meaning of a status word ("not enough memory"), or
 * "unexpected" for words CARD.md does not list. */
const char *perso_sw_text(uint16_t sw);

#endif
