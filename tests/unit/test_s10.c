/* test_s10.c — UPU S10 tracking numbers: check digits against published
 * examples and the two special cases of the rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ids.h"

static void test_published_examples(void **state)
{
    (void)state;
    /* API.md's example, and the UPU S10 example quoted in most references. */
    assert_int_equal(s10_check_digit("12345678"), 5);
    assert_true(s10_valid("RR123456785SA"));
    assert_int_equal(s10_check_digit("47312482"), 9); /* AA 47312482 9 GB */
    assert_false(s10_valid("RR123456784SA"));
}

static void test_special_cases(void **state)
{
    (void)state;
    /* Sum 0: 11 - 0 = 11, written 5. */
    assert_int_equal(s10_check_digit("00000000"), 5);
    /* 8 x 7 = 56, 56 mod 11 = 1: 11 - 1 = 10, written 0. */
    assert_int_equal(s10_check_digit("00000008"), 0);
    /* 3 x 7 = 21, mod 11 = 10: 1. */
    assert_int_equal(s10_check_digit("00000003"), 1);
    assert_int_equal(s10_check_digit("1234567"), -1);
    assert_int_equal(s10_check_digit("1234567a"), -1);
}

static void test_format(void **state)
{
    (void)state;
    char out[14];
    assert_int_equal(s10_format("RR", 12345678, out), 0);
    assert_string_equal(out, "RR123456785SA");
    assert_int_equal(s10_format("RR", 8, out), 0);
    assert_string_equal(out, "RR000000080SA");
    assert_true(s10_valid(out));
    assert_int_equal(s10_format("RR", 0, out), -22);
    assert_int_equal(s10_format("RR", 100000000, out), -22);
    assert_int_equal(s10_format("R1", 1, out), -22);
    /* Every number the sequence can give formats to a valid S10 number. */
    static const long samples[] = { 1, 2, 9, 10, 99, 1000, 4567890, 99999998, 99999999 };
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        assert_int_equal(s10_format("RR", samples[i], out), 0);
        assert_int_equal(strlen(out), 13);
        assert_true(s10_valid(out));
    }
    assert_false(s10_valid("rr123456785SA"));
    assert_false(s10_valid("RR123456785GB"));
    assert_false(s10_valid("RR123456785SAX"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_examples),
        cmocka_unit_test(test_special_cases),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests_name("s10", tests, NULL, NULL);
}
