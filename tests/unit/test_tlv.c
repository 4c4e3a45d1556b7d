/* Unit tests for tlv.c: round trips, length forms, malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <errno.h>
#include <stdlib.h>
#include <cmocka.h>

#include "tlv.h"

static void parse_short_and_long_forms(void **state)
{
    static const uint8_t a[] = { 0x5F, 0x1F, 0x03, 'A', 'B', 'C' };
    static const uint8_t b[] = { 0x77, 0x81, 0x80 };
    static const uint8_t c[] = { 0x04, 0x82, 0x01, 0x00 };
    uint8_t big[4 + 256];
    struct tlv t;

    (void)state;
    assert_int_equal(tlv_parse(a, sizeof(a), &t), 0);
    assert_int_equal(t.tag, 0x5F1F);
    assert_int_equal(t.len, 3);
    assert_int_equal(t.size, 6);
    assert_memory_equal(t.value, "ABC", 3);
    assert_int_equal(tlv_parse(b, sizeof(b), &t), -EBADMSG); /* truncated */
    assert_int_equal(tlv_parse(c, sizeof(c), &t), -EBADMSG);
    memcpy(big, c, 4);
    memset(big + 4, 0xAA, 256);
    assert_int_equal(tlv_parse(big, sizeof(big), &t), 0);
    assert_int_equal(t.len, 256);
    assert_int_equal(t.size, 260);
}

static void parse_refuses_malformed(void **state)
{
    static const uint8_t indefinite[] = { 0x30, 0x80, 0x00, 0x00 };
    static const uint8_t longtag[] = { 0x5F, 0x81, 0x81, 0x81, 0x01, 0x00 };
    static const uint8_t huge[] = { 0x04, 0x85, 1, 0, 0, 0, 0 };
    static const uint8_t notag[] = { 0x5F };
    struct tlv t;

    (void)state;
    assert_int_equal(tlv_parse(indefinite, sizeof(indefinite), &t), -EBADMSG);
    assert_int_equal(tlv_parse(longtag, sizeof(longtag), &t), -EBADMSG);
    assert_int_equal(tlv_parse(huge, sizeof(huge), &t), -EBADMSG);
    assert_int_equal(tlv_parse(notag, sizeof(notag), &t), -EBADMSG);
    assert_int_equal(tlv_parse(NULL, 0, &t), -EBADMSG);
}

/* Every prefix of a valid encoding must be refused, never over-read
 * (ASan catches an over-read since each prefix is its own allocation). */
static void parse_every_prefix(void **state)
{
    struct tlv_buf b;
    struct tlv t;

    (void)state;
    tlv_buf_init(&b);
    size_t m = tlv_begin(&b, 0x6B);
    uint8_t name[300];
    memset(name, 'x', sizeof(name));
    tlv_put(&b, 0x5F0E, name, sizeof(name));
    tlv_end(&b, m);
    assert_int_equal(b.err, 0);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, b.data, n);
        assert_int_equal(tlv_parse(p, n, &t), -EBADMSG);
        free(p);
    }
    assert_int_equal(tlv_parse(b.data, b.len, &t), 0);
    tlv_buf_free(&b);
}

static void nested_round_trip(void **state)
{
    struct tlv_buf b;
    struct tlv outer, inner;
    uint8_t blob[200];

    (void)state;
    memset(blob, 0x42, sizeof(blob));
    tlv_buf_init(&b);
    size_t m1 = tlv_begin(&b, 0x77);
    size_t m2 = tlv_begin(&b, 0x30);
    tlv_put(&b, 0x04, blob, sizeof(blob)); /* forces both lengths to 2 bytes */
    tlv_end(&b, m2);
    tlv_put(&b, 0x5F10, "1234567890", 10);
    tlv_end(&b, m1);
    assert_int_equal(b.err, 0);
    assert_int_equal(b.data[0], 0x77);
    assert_int_equal(b.data[1], 0x81);
    assert_int_equal(tlv_parse(b.data, b.len, &outer), 0);
    assert_int_equal(outer.size, b.len);
    assert_int_equal(tlv_find(outer.value, outer.len, 0x5F10, &inner), 0);
    assert_memory_equal(inner.value, "1234567890", 10);
    assert_int_equal(tlv_find(outer.value, outer.len, 0x5F0E, &inner), -ENOENT);
    assert_int_equal(tlv_find(outer.value, outer.len, 0x30, &inner), 0);
    assert_true(tlv_is_constructed(inner.tag));
    assert_false(tlv_is_constructed(0x5F10));
    assert_true(tlv_is_constructed(0x7F61));
    tlv_buf_free(&b);
    tlv_buf_free(NULL);
}

static void integers_are_minimal(void **state)
{
    struct tlv_buf b;
    static const uint8_t want[] = { 0x02, 0x01, 0x00, 0x02, 0x01, 0x7F, 0x02,
                                    0x02, 0x00, 0x80, 0x02, 0x02, 0x01, 0x00 };

    (void)state;
    tlv_buf_init(&b);
    tlv_put_uint(&b, 0);
    tlv_put_uint(&b, 127);
    tlv_put_uint(&b, 128);
    tlv_put_uint(&b, 256);
    assert_int_equal(b.err, 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    tlv_buf_free(&b);
}

static void errors_latch(void **state)
{
    struct tlv_buf b;

    (void)state;
    tlv_buf_init(&b);
    assert_int_equal(tlv_put(&b, 0, "", 0), -EINVAL);
    assert_int_equal(tlv_put(&b, 0x04, "x", 1), -EINVAL);
    assert_int_equal(tlv_begin(&b, 0x30), SIZE_MAX);
    assert_int_equal(tlv_end(&b, SIZE_MAX), -EINVAL);
    tlv_buf_free(&b);
}

/* ---- the encoder against the decoder ---- */

struct node {
    uint32_t tag;
    int depth;
    size_t len;
    uint8_t *value; /* primitive elements only */
};

#define MAX_NODES 4096

static size_t random_len(unsigned *seed)
{
    static const size_t edges[] = { 0, 1, 127, 128, 255, 256, 65535, 65536, 70000 };
    if (rand_r(seed) % 4 == 0)
        return edges[(size_t)rand_r(seed) % (rand_r(seed) % 8 == 0 ? 9 : 6)];
    return (size_t)rand_r(seed) % 40;
}

/* Writes a random tree with the encoder and notes it, preorder, in nodes. */
static void generate(struct tlv_buf *b, int depth, unsigned *seed, struct node *nodes, size_t *n)
{
    static const uint32_t primitive[] = { 0x02, 0x04, 0x5C, 0x80, 0x5F1F, 0x5F2B, 0x5F0E };
    static const uint32_t constructed[] = { 0x30, 0x31, 0x61, 0x77, 0xA0, 0x7F61 };
    int children = rand_r(seed) % 5;
    for (int i = 0; i < children && *n < MAX_NODES; i++) {
        struct node *nd = &nodes[(*n)++];
        nd->depth = depth;
        if (depth < 5 && rand_r(seed) % 3 == 0) {
            nd->tag = constructed[(size_t)rand_r(seed) % 6];
            nd->value = NULL;
            size_t mark = tlv_begin(b, nd->tag);
            generate(b, depth + 1, seed, nodes, n);
            assert_int_equal(tlv_end(b, mark), 0);
        } else {
            nd->tag = primitive[(size_t)rand_r(seed) % 7];
            nd->len = random_len(seed);
            nd->value = malloc(nd->len ? nd->len : 1);
            assert_non_null(nd->value);
            for (size_t k = 0; k < nd->len; k++)
                nd->value[k] = (uint8_t)rand_r(seed);
            assert_int_equal(tlv_put(b, nd->tag, nd->value, nd->len), 0);
        }
    }
}

/* Reads the tree back with the decoder and compares it with nodes. */
static void check(const uint8_t *buf, size_t len, int depth, const struct node *nodes, size_t n,
                  size_t *i)
{
    size_t off = 0;
    while (off < len) {
        struct tlv t;
        assert_int_equal(tlv_parse(buf + off, len - off, &t), 0);
        assert_true(*i < n);
        const struct node *nd = &nodes[(*i)++];
        assert_int_equal(t.tag, nd->tag);
        assert_int_equal(depth, nd->depth);
        if (nd->value) {
            assert_false(tlv_is_constructed(t.tag));
            assert_int_equal(t.len, nd->len);
            if (nd->len)
                assert_memory_equal(t.value, nd->value, nd->len);
        } else {
            assert_true(tlv_is_constructed(t.tag));
            check(t.value, t.len, depth + 1, nodes, n, i);
        }
        off += t.size;
    }
    assert_int_equal(off, len);
}

static void encoder_decoder_round_trip(void **state)
{
    (void)state;
    static struct node nodes[MAX_NODES];
    unsigned seed = 9303;
    size_t total = 0;
    for (int round = 0; round < 300; round++) {
        struct tlv_buf b;
        size_t n = 0, i = 0;
        tlv_buf_init(&b);
        generate(&b, 0, &seed, nodes, &n);
        assert_int_equal(b.err, 0);
        check(b.data, b.len, 0, nodes, n, &i);
        assert_int_equal(i, n);
        total += n;
        for (size_t k = 0; k < n; k++)
            free(nodes[k].value);
        tlv_buf_free(&b);
    }
    assert_true(total > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_short_and_long_forms), cmocka_unit_test(parse_refuses_malformed),
        cmocka_unit_test(parse_every_prefix),         cmocka_unit_test(nested_round_trip),
        cmocka_unit_test(integers_are_minimal),       cmocka_unit_test(errors_latch),
        cmocka_unit_test(encoder_decoder_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
