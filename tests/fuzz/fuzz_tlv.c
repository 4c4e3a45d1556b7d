/* fuzz_tlv.c — BER-TLV decoding (tlv.c), the reader of every card answer
 * and LDS file: the whole tree is walked; every element stays inside the
 * buffer, and re-encoding a primitive element gives its bytes back. */
#include <errno.h>
#include <stdio.h>

#include "fuzz.h"
#include "tlv.h"

static void walk(const uint8_t *buf, size_t len, int depth)
{
    size_t off = 0;
    while (off < len && depth < 64) {
        struct tlv t;
        uint32_t tag;
        size_t hdr, vlen;
        int h = tlv_header(buf + off, len - off, &tag, &hdr, &vlen);
        if (tlv_parse(buf + off, len - off, &t) != 0)
            return;
        FUZZ_ASSERT(h == 0 && tag == t.tag && vlen == t.len);
        FUZZ_ASSERT(t.value >= buf + off && t.value + t.len <= buf + len);
        FUZZ_ASSERT(t.size == hdr + t.len && t.size <= len - off);
        if (tlv_is_constructed(t.tag)) {
            walk(t.value, t.len, depth + 1);
        } else if (t.tag != 0) {
            struct tlv_buf b;
            tlv_buf_init(&b);
            tlv_put(&b, t.tag, t.value, t.len);
            struct tlv back;
            if (b.err == 0) {
                FUZZ_ASSERT(tlv_parse(b.data, b.len, &back) == 0);
                FUZZ_ASSERT(back.tag == t.tag && back.len == t.len);
                FUZZ_ASSERT(t.len == 0 || memcmp(back.value, t.value, t.len) == 0);
            }
            tlv_buf_free(&b);
        }
        off += t.size;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    walk(copy, size, 0);
    struct tlv t;
    static const uint32_t tags[] = { 0x60, 0x61, 0x77, 0x5F1F, 0x30, 0x04, 0x5C };
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        if (tlv_find(copy, size, tags[i], &t) == 0)
            FUZZ_ASSERT(t.tag == tags[i] && t.value + t.len <= copy + size);
    free(copy);
    return 0;
}
