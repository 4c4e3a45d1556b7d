/* Unit tests for mrz.c against the published ICAO 9303 examples. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "mrz.h"

/* ICAO 9303 part 4 (TD3 specimen): document number L898902C3 -> 6,
 * birth 740812 -> 2, expiry 120415 -> 9. */
static void check_digit_part4(void **state)
{
    (void)state;
    assert_int_equal(mrz_check_digit("L898902C3", 9), 6);
    assert_int_equal(mrz_check_digit("740812", 6), 2);
    assert_int_equal(mrz_check_digit("120415", 6), 9);
    assert_int_equal(mrz_check_digit("<<<<<<<<<", 9), 0);
    assert_int_equal(mrz_check_digit("ab", 2), -EINVAL);
}

/* ICAO 9303 part 5, TD1 specimen (Utopia, Anna Maria Eriksson). */
static void td1_specimen_part5(void **state)
{
    struct mrz_td1 m;
    struct mrz_fields f = {
        .document_code = "I",
        .issuing_state = "UTO",
        .document_number = "D23145890",
        .birth_date = "740812",
        .sex = 'F',
        .expiry_date = "120415",
        .nationality = "UTO",
        .surname = "Eriksson",
        .given_names = "Anna Maria",
    };
    char all[91];

    (void)state;
    assert_int_equal(mrz_td1_build(&f, &m), 0);
    assert_string_equal(m.line[0], "I<UTOD231458907<<<<<<<<<<<<<<<");
    assert_string_equal(m.line[1], "7408122F1204159UTO<<<<<<<<<<<6");
    assert_string_equal(m.line[2], "ERIKSSON<<ANNA<MARIA<<<<<<<<<<");
    snprintf(all, sizeof(all), "%s%s%s", m.line[0], m.line[1], m.line[2]);
    assert_true(mrz_td1_valid(all, 90));
    all[14] = '8';
    assert_false(mrz_td1_valid(all, 90));
}

static void td1_saudi_card(void **state)
{
    struct mrz_td1 m;
    struct mrz_fields f = {
        .document_code = "ID",
        .issuing_state = "SAU",
        .document_number = "A12345678",
        .birth_date = "900101",
        .sex = 'M',
        .expiry_date = "310101",
        .nationality = "SAU",
        .surname = "Al-Qahtani",
        .given_names = "Mohammed Abdullah",
    };

    (void)state;
    assert_int_equal(mrz_td1_build(&f, &m), 0);
    assert_memory_equal(m.line[0], "IDSAUA12345678", 14);
    assert_string_equal(m.line[2], "AL<QAHTANI<<MOHAMMED<ABDULLAH<");
}

static void td1_truncation(void **state)
{
    struct mrz_td1 m;
    struct mrz_fields f = {
        .document_code = "ID",
        .issuing_state = "SAU",
        .document_number = "1",
        .birth_date = "900101",
        .sex = '<',
        .expiry_date = "310101",
        .nationality = "SAU",
        .surname = "Abdulrahman Al Saud",
        .given_names = "Faisal Bin Abdulaziz Bin",
    };

    (void)state;
    assert_int_equal(mrz_td1_build(&f, &m), 0);
    assert_int_equal(strlen(m.line[2]), 30);
    /* 30 characters, ends on a letter, surname kept whole. */
    assert_string_equal(m.line[2], "ABDULRAHMAN<AL<SAUD<<FAISAL<BI");
    assert_memory_equal(m.line[0] + 5, "1<<<<<<<<", 9);
}

static void td1_refuses_bad_input(void **state)
{
    struct mrz_td1 m;
    struct mrz_fields f = {
        .document_code = "ID",
        .issuing_state = "SAU",
        .document_number = "A123456789",
        .birth_date = "900101",
        .sex = 'M',
        .expiry_date = "310101",
        .nationality = "SAU",
        .surname = "X",
    };

    (void)state;
    assert_int_equal(mrz_td1_build(&f, &m), -EINVAL); /* 10-char number */
    f.document_number = "a1";
    assert_int_equal(mrz_td1_build(&f, &m), -EINVAL); /* lower case */
    f.document_number = "A1";
    f.surname = "\xd9\x85\xd8\xad\xd9\x85\xd8\xaf"; /* Arabic: not MRZ */
    assert_int_equal(mrz_td1_build(&f, &m), -EINVAL);
    f.surname = "X";
    f.birth_date = "9001";
    assert_int_equal(mrz_td1_build(&f, &m), -EINVAL);
    f.birth_date = "900101";
    f.sex = 'X';
    assert_int_equal(mrz_td1_build(&f, &m), -EINVAL);
    assert_false(mrz_td1_valid("short", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_digit_part4),     cmocka_unit_test(td1_specimen_part5),
        cmocka_unit_test(td1_saudi_card),        cmocka_unit_test(td1_truncation),
        cmocka_unit_test(td1_refuses_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
