/*
 * tlv.c — BER-TLV encoder and decoder (see tlv.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tlv.h"

/* A tlv_begin reserves one length byte; tlv_end widens it when needed. */
#define TLV_MARK_RESERVED 1

int tlv_header(const uint8_t *buf, size_t len, uint32_t *tag_out, size_t *hdr_len,
               size_t *value_len)
{
    size_t pos = 0;
    uint32_t tag;
    size_t vlen;

    if (!buf || len < 2)
        return -EBADMSG;
    tag = buf[pos++];
    if (tag == 0x00 || tag == 0xFF)
        return -EBADMSG;
    if ((tag & 0x1F) == 0x1F) {
        /* Multi-byte tag: continuation bytes have bit 8 set; cap at 4 bytes. */
        do {
            if (pos >= len || pos >= 4)
                return -EBADMSG;
            tag = (tag << 8) | buf[pos];
        } while (buf[pos++] & 0x80);
    }
    if (pos >= len)
        return -EBADMSG;
    if (buf[pos] < 0x80) {
        vlen = buf[pos++];
    } else {
        size_t n = buf[pos++] & 0x7F;

        /* 0x80 is the indefinite form; more than 4 length bytes is absurd here. */
        if (n == 0 || n > 4 || n > len - pos)
            return -EBADMSG;
        vlen = 0;
        while (n--)
            vlen = (vlen << 8) | buf[pos++];
    }
    *tag_out = tag;
    *hdr_len = pos;
    *value_len = vlen;
    return 0;
}

int tlv_parse(const uint8_t *buf, size_t len, struct tlv *out)
{
    size_t hdr, vlen;
    uint32_t tag;

    if (!out || tlv_header(buf, len, &tag, &hdr, &vlen))
        return -EBADMSG;
    if (vlen > len - hdr)
        return -EBADMSG;
    out->tag = tag;
    out->value = buf + hdr;
    out->len = vlen;
    out->size = hdr + vlen;
    return 0;
}

int tlv_find(const uint8_t *buf, size_t len, uint32_t tag, struct tlv *out)
{
    size_t pos = 0;

    while (pos < len) {
        struct tlv t;
        int r = tlv_parse(buf + pos, len - pos, &t);

        if (r)
            return r;
        if (t.tag == tag) {
            *out = t;
            return 0;
        }
        pos += t.size;
    }
    return -ENOENT;
}

bool tlv_is_constructed(uint32_t tag)
{
    while (tag > 0xFF)
        tag >>= 8;
    return tag & 0x20;
}

void tlv_buf_init(struct tlv_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void tlv_buf_free(struct tlv_buf *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static int tlv_reserve(struct tlv_buf *b, size_t extra)
{
    size_t need;
    uint8_t *p;

    if (b->err)
        return b->err;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->err = -ENOMEM;
        return b->err;
    }
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    if (need < 2 * b->cap)
        need = 2 * b->cap;
    if (need < 64)
        need = 64;
    p = realloc(b->data, need);
    if (!p) {
        b->err = -ENOMEM;
        return b->err;
    }
    b->data = p;
    b->cap = need;
    return 0;
}

int tlv_put_raw(struct tlv_buf *b, const void *bytes, size_t len)
{
    int r = tlv_reserve(b, len);

    if (r)
        return r;
    if (len)
        memcpy(b->data + b->len, bytes, len);
    b->len += len;
    return 0;
}

static size_t tag_bytes(uint32_t tag, uint8_t out[4])
{
    size_t n = tag > 0xFFFFFF ? 4 : tag > 0xFFFF ? 3 : tag > 0xFF ? 2 : 1;

    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(tag >> (8 * (n - 1 - i)));
    return n;
}

static size_t len_bytes(size_t len, uint8_t out[5])
{
    size_t n;

    if (len < 0x80) {
        out[0] = (uint8_t)len;
        return 1;
    }
    n = len > 0xFFFFFF ? 4 : len > 0xFFFF ? 3 : len > 0xFF ? 2 : 1;
    out[0] = (uint8_t)(0x80 | n);
    for (size_t i = 0; i < n; i++)
        out[1 + i] = (uint8_t)(len >> (8 * (n - 1 - i)));
    return n + 1;
}

int tlv_put(struct tlv_buf *b, uint32_t tag, const void *value, size_t len)
{
    uint8_t hdr[9];
    size_t n;
    int r;

    if (b->err)
        return b->err;
    if (tag == 0 || len > 0xFFFFFFFFu) {
        b->err = -EINVAL;
        return b->err;
    }
    n = tag_bytes(tag, hdr);
    n += len_bytes(len, hdr + n);
    r = tlv_reserve(b, n + len);
    if (r)
        return r;
    memcpy(b->data + b->len, hdr, n);
    if (len)
        memcpy(b->data + b->len + n, value, len);
    b->len += n + len;
    return 0;
}

int tlv_put_uint(struct tlv_buf *b, uint64_t v)
{
    uint8_t be[9];
    size_t i = 0, n = 0;

    /* A leading 0x00 keeps a value with the top bit set positive. */
    be[n++] = 0;
    for (int s = 56; s >= 0; s -= 8)
        be[n++] = (uint8_t)(v >> s);
    while (i < n - 1 && be[i] == 0 && !(be[i + 1] & 0x80))
        i++;
    return tlv_put(b, 0x02, be + i, n - i);
}

size_t tlv_begin(struct tlv_buf *b, uint32_t tag)
{
    uint8_t hdr[4];
    size_t n;
    size_t mark;

    if (b->err)
        return SIZE_MAX;
    if (tag == 0) {
        b->err = -EINVAL;
        return SIZE_MAX;
    }
    n = tag_bytes(tag, hdr);
    if (tlv_reserve(b, n + TLV_MARK_RESERVED))
        return SIZE_MAX;
    memcpy(b->data + b->len, hdr, n);
    b->len += n;
    mark = b->len; /* where the length byte goes */
    b->data[b->len++] = 0;
    return mark;
}

int tlv_end(struct tlv_buf *b, size_t mark)
{
    uint8_t lb[5];
    size_t content, n;
    int r;

    if (b->err)
        return b->err;
    if (mark == SIZE_MAX || mark >= b->len) {
        b->err = -EINVAL;
        return b->err;
    }
    content = b->len - mark - TLV_MARK_RESERVED;
    n = len_bytes(content, lb);
    if (n > TLV_MARK_RESERVED) {
        r = tlv_reserve(b, n - TLV_MARK_RESERVED);
        if (r)
            return r;
        memmove(b->data + mark + n, b->data + mark + TLV_MARK_RESERVED, content);
        b->len += n - TLV_MARK_RESERVED;
    }
    memcpy(b->data + mark, lb, n);
    return 0;
}
