/*
 * tlv.h — BER-TLV (ISO 7816-4 / ITU-T X.690) encoding and decoding.
 *
 * One implementation for every TLV the product reads or writes: the LDS
 * files (tags 60, 61, 6B, 77, 5Fxx), the DER of the LDSSecurityObject and
 * the CMS SignedData around it, and the answers a card gives.
 *
 * Tags are kept as the integer of their encoded bytes (0x5F1F, 0x77, 0x30),
 * which is how ICAO 9303 and ISO 7816 write them. Lengths are definite only:
 * the indefinite form (0x80) is refused, since neither DER nor the LDS
 * allow it.
 */
#ifndef CARDD_TLV_H
#define CARDD_TLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One decoded element. 'value' points into the parsed buffer. */
struct tlv {
    uint32_t tag;
    const uint8_t *value;
    size_t len;  /* length of value */
    size_t size; /* tag + length + value: where the next sibling starts */
};

/*
 * Decodes the element at the start of buf[0..len). Returns 0 and fills *out,
 * -EBADMSG if the bytes are not one complete well-formed element (truncated,
 * indefinite length, tag longer than 4 bytes, length over SIZE_MAX/2).
 * Never reads outside buf.
 */
int tlv_parse(const uint8_t *buf, size_t len, struct tlv *out);

/*
 * Decodes only the tag and length at the start of buf[0..len), for a
 * reader that has the first bytes of a file and must learn its size.
 * Returns 0 with *tag, *hdr_len (tag + length bytes) and *value_len
 * (which may exceed what buf holds), or -EBADMSG.
 */
int tlv_header(const uint8_t *buf, size_t len, uint32_t *tag, size_t *hdr_len, size_t *value_len);

/*
 * Looks for the first element with 'tag' among the siblings in buf[0..len)
 * (no descent into constructed elements). Returns 0 and fills *out,
 * -ENOENT if no sibling has that tag, -EBADMSG if a sibling before it is
 * malformed.
 */
int tlv_find(const uint8_t *buf, size_t len, uint32_t tag, struct tlv *out);

/* True if the tag's first byte marks a constructed element (bit 6). */
bool tlv_is_constructed(uint32_t tag);

/* Growable output buffer. 'err' latches the first failure so that a long
 * run of tlv_put calls can be checked once at the end. */
struct tlv_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int err; /* 0 or the first -errno met */
};

/* Starts an empty buffer. Allocates nothing. */
void tlv_buf_init(struct tlv_buf *b);

/* Frees the buffer's memory and empties it. NULL-safe. */
void tlv_buf_free(struct tlv_buf *b);

/* Appends raw bytes. Returns 0 or -ENOMEM (also latched in b->err). */
int tlv_put_raw(struct tlv_buf *b, const void *bytes, size_t len);

/* Appends one element tag|length|value. Returns 0, -EINVAL for tag 0,
 * -ENOMEM. A failure is latched in b->err and later calls do nothing. */
int tlv_put(struct tlv_buf *b, uint32_t tag, const void *value, size_t len);

/* Appends an INTEGER (tag 0x02) in minimal two's-complement form. */
int tlv_put_uint(struct tlv_buf *b, uint64_t v);

/*
 * Opens a constructed element: writes the tag and reserves its length.
 * Returns the mark to give to tlv_end (or SIZE_MAX once b->err is set).
 * Elements nest: every tlv_begin needs its own tlv_end, innermost first.
 */
size_t tlv_begin(struct tlv_buf *b, uint32_t tag);

/* Closes the element opened at 'mark', writing its definite length in the
 * minimal number of bytes. Returns 0, -EINVAL for a bad mark, -ENOMEM. */
int tlv_end(struct tlv_buf *b, size_t mark);

#endif
