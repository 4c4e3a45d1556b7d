/* test_ids.c — national IDs (Luhn), request numbers, phones, UPU S10 numbers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ids.h"

/*
 * Valid national IDs, worked by hand (double the 1st, 3rd, 5th, 7th and 9th
 * digit from the left, a doubled digit over 9 loses 9, total = 0 mod 10):
 *
 *   1000000008  doubled 1->2;                     undoubled 0+0+0+0+8 = 8;   2 + 8 = 10
 *   1234567897  doubled 1->2, 3->6, 5->10->1, 7->14->5, 9->18->9 = 23;
 *               undoubled 2+4+6+8+7 = 27;                                  23 + 27 = 50
 *   2987654320  doubled 2->4, 8->16->7, 6->12->3, 4->8, 2->4 = 26;
 *               undoubled 9+7+5+3+0 = 24;                                  26 + 24 = 50
 *   2000000006  doubled 2->4; undoubled 6;                                  4 + 6 = 10
 */
static void national_id_valid_examples(void **state)
{
    (void)state;
    static const char *const ok[] = { "1000000008", "1234567897", "2987654320", "2000000006" };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(national_id_check(ok[i]), 0);
        assert_true(national_id_valid(ok[i]));
    }
}

/* The same numbers with the last digit off by one: checksum, not format. */
static void national_id_bad_check_digit(void **state)
{
    (void)state;
    static const char *const bad[] = { "1000000009", "1000000007", "1234567890",
                                       "1234567898", "2987654321", "2000000005" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(national_id_check(bad[i]), -2);
        assert_false(national_id_valid(bad[i]));
    }
}

/* Format is judged before the check digit: 3000000004 passes Luhn
 * (3->6, +4 = 10) but 3 is neither citizen nor resident. */
static void national_id_bad_format(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "3000000004", "0000000000", "100000000",   "10000000080", "10000000a8",
        "",           " 100000008", "1000000008 ", "+100000008",  "１000000008",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(national_id_check(bad[i]), -1);
        assert_false(national_id_valid(bad[i]));
    }
}

/* Changing any single digit of a valid ID breaks the Luhn sum. */
static void national_id_every_single_digit_change_is_caught(void **state)
{
    (void)state;
    char id[] = "1234567897";
    for (int pos = 1; pos < 10; pos++) {
        char orig = id[pos];
        for (char c = '0'; c <= '9'; c++) {
            if (c == orig)
                continue;
            id[pos] = c;
            assert_int_equal(national_id_check(id), -2);
        }
        id[pos] = orig;
    }
    assert_int_equal(national_id_check(id), 0);
}

static void request_no_rules(void **state)
{
    (void)state;
    assert_true(request_no_valid("RQ-2026-000123"));
    assert_true(request_no_valid("A"));
    assert_true(request_no_valid("-"));
    assert_true(request_no_valid("0123456789ABCDEFGHIJKLMNOPQRSTUV"));   /* 32 */
    assert_false(request_no_valid("0123456789ABCDEFGHIJKLMNOPQRSTUVW")); /* 33 */
    assert_false(request_no_valid(""));
    assert_false(request_no_valid("rq-2026-000123"));
    assert_false(request_no_valid("RQ 2026"));
    assert_false(request_no_valid("RQ_2026"));
    assert_false(request_no_valid("RQ/2026"));
    assert_false(request_no_valid("RQ-2026\n"));
}

static void phone_rules(void **state)
{
    (void)state;
    assert_true(phone_valid("+966501234567"));
    assert_true(phone_valid("+966599999999"));
    assert_false(phone_valid("+96650123456"));   /* 7 digits after +9665 */
    assert_false(phone_valid("+9665012345678")); /* 9 digits */
    assert_false(phone_valid("+966401234567"));  /* not a mobile */
    assert_false(phone_valid("966501234567"));
    assert_false(phone_valid("00966501234567"));
    assert_false(phone_valid("0501234567"));
    assert_false(phone_valid("+9665O1234567")); /* letter O */
    assert_false(phone_valid("+9665"));
    assert_false(phone_valid(""));
}

/*
 * S10 check digits, weights 8 6 4 2 3 5 9 7:
 *   12345678: 8+12+12+8+15+30+63+56 = 204; 204 mod 11 = 6; 11-6 = 5  (API.md: RR123456785SA)
 *   47312482: 32+42+12+2+6+20+72+14 = 200; 200 mod 11 = 2; 11-2 = 9  (UPU S10 example 47312482 9)
 *   02000000: 2*6 = 12; 12 mod 11 = 1; 11-1 = 10 -> 0
 *   10001000: 1*8 + 1*3 = 11; 11 mod 11 = 0; 11-0 = 11 -> 5
 *   00000001: 7; 11-7 = 4
 *   99999999: 9*44 = 396 = 36*11; mod 0 -> 11 -> 5
 */
static void s10_check_digits(void **state)
{
    (void)state;
    assert_int_equal(s10_check_digit("12345678"), 5);
    assert_int_equal(s10_check_digit("47312482"), 9);
    assert_int_equal(s10_check_digit("02000000"), 0);
    assert_int_equal(s10_check_digit("10001000"), 5);
    assert_int_equal(s10_check_digit("00000001"), 4);
    assert_int_equal(s10_check_digit("99999999"), 5);
    assert_int_equal(s10_check_digit("1234567"), -1);
    assert_int_equal(s10_check_digit("123456789"), -1);
    assert_int_equal(s10_check_digit("1234567a"), -1);
    assert_int_equal(s10_check_digit(""), -1);
}

static void s10_valid_numbers(void **state)
{
    (void)state;
    assert_true(s10_valid("RR123456785SA"));
    assert_true(s10_valid("EE473124829SA"));
    assert_true(s10_valid("CP020000000SA"));
    assert_false(s10_valid("RR123456784SA")); /* wrong check digit */
    assert_false(s10_valid("RR123456786SA"));
    assert_false(s10_valid("RR123456785GB")); /* not SA */
    assert_false(s10_valid("rr123456785SA"));
    assert_false(s10_valid("R1123456785SA"));
    assert_false(s10_valid("RR12345678SA"));
    assert_false(s10_valid("RR1234567855SA"));
    assert_false(s10_valid("RR12345A785SA"));
    assert_false(s10_valid("RR123456785Sa"));
    assert_false(s10_valid(""));
}

static void s10_format_numbers(void **state)
{
    (void)state;
    char out[14];
    memset(out, 'x', sizeof(out));
    assert_int_equal(s10_format("RR", 12345678, out), 0);
    assert_string_equal(out, "RR123456785SA");
    assert_int_equal(s10_format("CP", 1, out), 0);
    assert_string_equal(out, "CP000000014SA");
    assert_int_equal(s10_format("EE", 99999999, out), 0);
    assert_string_equal(out, "EE999999995SA");
    assert_int_equal(s10_format("RR", 2000000, out), 0);
    assert_string_equal(out, "RR020000000SA");

    assert_int_equal(s10_format("RR", 0, out), -EINVAL);
    assert_int_equal(s10_format("RR", -5, out), -EINVAL);
    assert_int_equal(s10_format("RR", 100000000, out), -EINVAL);
    assert_int_equal(s10_format("R", 1, out), -EINVAL);
    assert_int_equal(s10_format("RRR", 1, out), -EINVAL);
    assert_int_equal(s10_format("rr", 1, out), -EINVAL);
    assert_int_equal(s10_format("R1", 1, out), -EINVAL);
}

/* Whatever s10_format builds, s10_valid accepts, and no other check digit. */
static void s10_format_round_trip(void **state)
{
    (void)state;
    char out[14];
    for (long serial = 1; serial <= 99999999; serial += 7919 * 13) {
        assert_int_equal(s10_format("RR", serial, out), 0);
        assert_int_equal(strlen(out), 13);
        assert_true(s10_valid(out));
        char good = out[10];
        for (char c = '0'; c <= '9'; c++) {
            out[10] = c;
            assert_int_equal(s10_valid(out), c == good);
        }
    }
}

static void digit_and_set_helpers(void **state)
{
    (void)state;
    assert_true(all_digits("0123", 4));
    assert_false(all_digits("0123", 3));
    assert_false(all_digits("012", 4));
    assert_false(all_digits("01a3", 4));
    assert_true(all_digits("", 0));
    assert_true(all_of("ABBA", "AB"));
    assert_false(all_of("ABCA", "AB"));
    assert_true(all_of("", "AB"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(national_id_valid_examples),
        cmocka_unit_test(national_id_bad_check_digit),
        cmocka_unit_test(national_id_bad_format),
        cmocka_unit_test(national_id_every_single_digit_change_is_caught),
        cmocka_unit_test(request_no_rules),
        cmocka_unit_test(phone_rules),
        cmocka_unit_test(s10_check_digits),
        cmocka_unit_test(s10_valid_numbers),
        cmocka_unit_test(s10_format_numbers),
        cmocka_unit_test(s10_format_round_trip),
        cmocka_unit_test(digit_and_set_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
