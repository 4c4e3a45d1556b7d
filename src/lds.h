/*
 * lds.h — the ICAO 9303 LDS1 files of the national ID card (CARD.md):
 * EF.COM, EF.DG1 (TD1 MRZ), EF.DG11 (Arabic name, national ID) and EF.SOD
 * (CMS SignedData over the LDSSecurityObject, SHA-256 of each data group,
 * signed through signer.h); and the inspection-system check of a card's
 * files (SOD signature and hashes), done with OpenSSL's own parsers so that
 * it does not share the encoder's code.
 */
#ifndef CARDD_LDS_H
#define CARDD_LDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "signer.h"

/* What the bureau knows about the holder: a plain struct, every string
 * NUL-terminated. */
struct holder {
    char document_number[10]; /* the card serial: 1-9 of A-Z 0-9 */
    char surname[64];         /* Latin */
    char given_names[96];     /* Latin, may be empty */
    char name_ar[256];        /* full name in Arabic, UTF-8 */
    char national_id[16];     /* 10 digits */
    char birth_date[7];       /* YYMMDD */
    char sex;                 /* 'M', 'F' or '<' */
    char expiry_date[7];      /* YYMMDD */
    char nationality[4];      /* "SAU" */
};

#define LDS_FID_COM  0x011E
#define LDS_FID_DG1  0x0101
#define LDS_FID_DG11 0x010B
#define LDS_FID_SOD  0x011D

enum {
    LDS_COM,
    LDS_DG1,
    LDS_DG11,
    LDS_SOD,
    LDS_NFILES
};

struct lds_file {
    uint16_t fid;
    int dg;           /* data group number, 0 for COM and SOD */
    const char *name; /* "EF.DG1" */
    uint8_t *data;
    size_t len;
};

/* The files in the order they are written to the card. */
struct lds {
    struct lds_file file[LDS_NFILES];
};

/*
 * Builds every file for holder h and signs the SOD with s. Returns 0 and
 * fills *out (free with lds_free), -EINVAL if a holder field is missing,
 * malformed or too long for its file (the MRZ refuses non-Latin names;
 * name_ar must be valid UTF-8; national_id 10 digits), -ENOMEM, or the
 * signer's error. Nothing is allocated on failure.
 */
int lds_build(const struct holder *h, struct signer *s, struct lds *out);

/* Frees the files. NULL-safe; a zeroed struct lds is valid. */
void lds_free(struct lds *l);

/* The data of PUT DATA 00 62, from which the card derives its BAC keys
 * (ICAO 9303-11 "MRZ information"), encoded as the open-source applets
 * expect it: 62 { 04 document number (9, '<'-padded), 04 birth date,
 * 04 expiry }. Returns 0 and fills *out (free with tlv_buf_free), or
 * -EINVAL / -ENOMEM. */
struct tlv_buf;
int lds_bac_material(const struct holder *h, struct tlv_buf *out);

/* Result of an inspection-system check of EF.SOD against the data groups. */
struct lds_check {
    bool sod_ok;          /* EF.SOD parsed as CMS SignedData */
    bool content_type_ok; /* eContentType is 2.23.136.1.1.1 */
    bool signature_valid; /* the signature verifies with the embedded DS cert */
    bool signer_trusted;  /* ... and the DS cert chains to 'trust' (if given) */
    bool hashes_match;    /* every DG given hashes as the SOD says */
    int dg_listed;        /* data groups in the LDSSecurityObject */
    int dg_mismatch;      /* first DG whose hash differs, 0 if none */
    char signer[256];     /* subject of the DS certificate */
    char error[160];      /* first problem found, "" if none */
};

/* One data group as read from a card. */
struct lds_dg {
    int dg;
    const uint8_t *data;
    size_t len;
};

/*
 * Checks EF.SOD (the whole file, tag 77) as an inspection system does: the
 * CMS signature, the DS certificate against trust_pem (a CSCA or the DS
 * certificate itself, PEM; NULL to skip that step), and each given data
 * group's SHA-256 against the LDSSecurityObject. Returns 0 once the check
 * ran (the verdict is in *out), -EINVAL on bad arguments, -ENOMEM.
 */
int lds_check(const uint8_t *sod, size_t sod_len, const struct lds_dg *dgs, size_t ndg,
              const char *trust_pem, struct lds_check *out);

#endif
