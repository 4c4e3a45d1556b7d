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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_short_and_long_forms), cmocka_unit_test(parse_refuses_malformed),
        cmocka_unit_test(parse_every_prefix),         cmocka_unit_test(nested_round_trip),
        cmocka_unit_test(integers_are_minimal),       cmocka_unit_test(errors_latch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
