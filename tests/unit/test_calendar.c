/* test_calendar.c — civil dates, RFC 3339 times, Riyadh days, working days. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "calendar.h"

/* Day numbers checked with `date -u -d 2026-11-21 +%s` / 86400. */
#define D_1900_01_01 (-25567L)
#define D_2026_11_19 20776L /* Thursday */
#define D_2026_11_20 20777L /* Friday */
#define D_2026_11_21 20778L /* Saturday */
#define D_2026_11_22 20779L /* Sunday */
#define D_2100_12_31 47846L

static void civil_known_days(void **state)
{
    (void)state;
    assert_int_equal(days_from_civil(1970, 1, 1), 0);
    assert_int_equal(days_from_civil(1969, 12, 31), -1);
    assert_int_equal(days_from_civil(2026, 11, 21), D_2026_11_21);
    assert_int_equal(days_from_civil(1900, 1, 1), D_1900_01_01);
    assert_int_equal(days_from_civil(2100, 12, 31), D_2100_12_31);
    assert_int_equal(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2); /* leap */
    assert_int_equal(days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28), 1); /* not */
}

/* Walks every day from 1900 to 2100 by hand and compares both directions. */
static void civil_walk_two_centuries(void **state)
{
    (void)state;
    static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y = 1900, m = 1, d = 1;
    for (long day = D_1900_01_01; day <= D_2100_12_31; day++) {
        int yy, mm, dd;
        assert_int_equal(days_from_civil(y, m, d), day);
        civil_from_days(day, &yy, &mm, &dd);
        assert_int_equal(yy, y);
        assert_int_equal(mm, m);
        assert_int_equal(dd, d);
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        int len = m == 2 && leap ? 29 : dm[m - 1];
        if (++d > len) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
    assert_int_equal(y, 2101);
}

static void date_parse_valid(void **state)
{
    (void)state;
    long day = 0;
    assert_int_equal(date_parse("2026-11-21", &day), 0);
    assert_int_equal(day, D_2026_11_21);
    assert_int_equal(date_parse("2024-02-29", &day), 0);
    assert_int_equal(day, days_from_civil(2024, 2, 29));
    assert_int_equal(date_parse("2000-02-29", &day), 0);
    assert_int_equal(date_parse("1900-01-01", &day), 0);
    assert_int_equal(day, D_1900_01_01);
}

static void date_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2026-02-29", "2100-02-29", "1900-02-29", "2026-13-01",  "2026-00-10", "2026-04-31",
        "2026-11-00", "2026-1-21",  "2026/11/21", "2026-11-21T", "26-11-21",   "",
        "2026-11-2x", "1899-12-31", "abcd-ef-gh", " 2026-11-21",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long day = 12345;
        assert_int_equal(date_parse(bad[i], &day), -EINVAL);
    }
}

static void date_format_values(void **state)
{
    (void)state;
    char out[11];
    date_format(D_2026_11_21, out);
    assert_string_equal(out, "2026-11-21");
    date_format(0, out);
    assert_string_equal(out, "1970-01-01");
    date_format(days_from_civil(2024, 2, 29), out);
    assert_string_equal(out, "2024-02-29");
    date_format(D_1900_01_01, out);
    assert_string_equal(out, "1900-01-01");
}

/* 2026-11-21T08:00:00Z = 1795248000 (date -u -d 2026-11-21T08:00:00Z +%s). */
static void timestamp_parse_valid(void **state)
{
    (void)state;
    time_t t = 0;
    assert_int_equal(timestamp_parse("2026-11-21T08:00:00Z", &t), 0);
    assert_int_equal(t, 1795248000);
    assert_int_equal(timestamp_parse("2026-11-21T11:00:00+03:00", &t), 0);
    assert_int_equal(t, 1795248000);
    assert_int_equal(timestamp_parse("2026-11-21T07:30:00-00:30", &t), 0);
    assert_int_equal(t, 1795248000);
    assert_int_equal(timestamp_parse("2026-11-21t08:00:00z", &t), 0);
    assert_int_equal(t, 1795248000);
    assert_int_equal(timestamp_parse("2026-11-21T08:00:00.123456789Z", &t), 0);
    assert_int_equal(t, 1795248000);
    assert_int_equal(timestamp_parse("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(timestamp_parse("2026-11-21T23:59:59Z", &t), 0);
    assert_int_equal(t, 1795248000 + 16 * 3600 - 1);
}

static void timestamp_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2026-11-21T08:00:00",  /* no zone */
        "2026-11-21",           /* a date */
        "2026-11-21 08:00:00Z", /* space */
        "2026-11-21T24:00:00Z",
        "2026-11-21T08:60:00Z",
        "2026-11-21T08:00:61Z",
        "2026-11-21T8:00:00Z",
        "2026-11-21T08:00:00.Z",           /* empty fraction */
        "2026-11-21T08:00:00.1234567890Z", /* 10 fraction digits */
        "2026-11-21T08:00:00+0300",
        "2026-11-21T08:00:00+03:00x",
        "2026-11-21T08:00:00+24:00",
        "2026-11-21T08:00:00+16:00", /* PostgreSQL stops at 15:59 */
        "9999-12-31T23:59:60.5z",    /* found by fuzz_time: year 10000 */
        "9999-12-31T23:59:60Z",
        "9999-12-31T20:00:00-04:00",
        "2026-11-21T08:00:00Zjunk",
        "2026-02-30T08:00:00Z",
        "2026-11-21T08:00:00UTC",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        time_t t = 42;
        assert_int_equal(timestamp_parse(bad[i], &t), -EINVAL);
    }
}

static void timestamp_format_values(void **state)
{
    (void)state;
    char out[21];
    timestamp_format(1795248000, out);
    assert_string_equal(out, "2026-11-21T08:00:00Z");
    timestamp_format(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    timestamp_format(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59Z");
    timestamp_format(-86400, out);
    assert_string_equal(out, "1969-12-31T00:00:00Z");

    /* format then parse gives the same instant */
    for (time_t t = 1795248000 - 86400 * 3; t < 1795248000 + 86400 * 3; t += 3593) {
        time_t back = 0;
        timestamp_format(t, out);
        assert_int_equal(timestamp_parse(out, &back), 0);
        assert_int_equal(back, t);
    }
}

/* Riyadh is UTC+3: its day turns at 21:00 UTC. */
static void riyadh_day_turns_at_21_utc(void **state)
{
    (void)state;
    time_t t;
    assert_int_equal(timestamp_parse("2026-11-21T20:59:59Z", &t), 0);
    assert_int_equal(riyadh_day(t), D_2026_11_21);
    assert_int_equal(timestamp_parse("2026-11-21T21:00:00Z", &t), 0);
    assert_int_equal(riyadh_day(t), D_2026_11_22);
    assert_int_equal(timestamp_parse("2026-11-21T00:00:00+03:00", &t), 0);
    assert_int_equal(riyadh_day(t), D_2026_11_21);
    assert_int_equal(timestamp_parse("2026-11-20T23:59:59+03:00", &t), 0);
    assert_int_equal(riyadh_day(t), D_2026_11_20);
    assert_int_equal(riyadh_day(-3 * 3600), 0);
    assert_int_equal(riyadh_day(-3 * 3600 - 1), -1);
}

static void weekdays_and_weekend(void **state)
{
    (void)state;
    assert_int_equal(weekday(0), 3); /* 1970-01-01 Thursday */
    assert_int_equal(weekday(D_2026_11_19), 3);
    assert_int_equal(weekday(D_2026_11_20), 4);
    assert_int_equal(weekday(D_2026_11_21), 5);
    assert_int_equal(weekday(D_2026_11_22), 6);
    assert_int_equal(weekday(D_2026_11_22 + 1), 0);
    assert_int_equal(weekday(-1), 2);           /* 1969-12-31 Wednesday */
    assert_int_equal(weekday(D_1900_01_01), 0); /* 1900-01-01 Monday */
    assert_false(is_weekend(D_2026_11_19));
    assert_true(is_weekend(D_2026_11_20));
    assert_true(is_weekend(D_2026_11_21));
    assert_false(is_weekend(D_2026_11_22));
    int weekend_days = 0;
    for (long d = D_2026_11_19; d < D_2026_11_19 + 70; d++)
        weekend_days += is_weekend(d);
    assert_int_equal(weekend_days, 20);
}

static void working_days_skip_weekend(void **state)
{
    (void)state;
    /* Thursday + 1 = Sunday; Saturday + 1 = Sunday; Sunday + 5 = Thursday. */
    assert_int_equal(add_working_days(D_2026_11_19, 1, NULL, 0), D_2026_11_22);
    assert_int_equal(add_working_days(D_2026_11_21, 1, NULL, 0), D_2026_11_22);
    assert_int_equal(add_working_days(D_2026_11_20, 1, NULL, 0), D_2026_11_22);
    assert_int_equal(add_working_days(D_2026_11_22, 5, NULL, 0), D_2026_11_22 + 7);
    assert_int_equal(add_working_days(D_2026_11_22, 0, NULL, 0), D_2026_11_22);
    /* ten working days are always two calendar weeks */
    for (long d = D_2026_11_19; d < D_2026_11_19 + 7; d++)
        if (!is_weekend(d))
            assert_int_equal(add_working_days(d, 10, NULL, 0), d + 14);
}

static void working_days_skip_holidays(void **state)
{
    (void)state;
    /* Sunday 2026-11-22, Monday 23 and Tuesday 24 are holidays; Friday 27
     * is one too but is a weekend day anyway. From Saturday 21: Wed 25 (1),
     * Thu 26 (2), Sun 29 (3). */
    long holidays[] = { D_2026_11_22, D_2026_11_22 + 1, D_2026_11_22 + 2, D_2026_11_22 + 5 };
    assert_int_equal(add_working_days(D_2026_11_21, 1, holidays, 4), D_2026_11_22 + 3);
    assert_int_equal(add_working_days(D_2026_11_21, 3, holidays, 4), D_2026_11_22 + 7);
    /* a holiday before the start changes nothing */
    long past[] = { D_2026_11_19 - 10 };
    assert_int_equal(add_working_days(D_2026_11_19, 1, past, 1), D_2026_11_22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(civil_known_days),           cmocka_unit_test(civil_walk_two_centuries),
        cmocka_unit_test(date_parse_valid),           cmocka_unit_test(date_parse_invalid),
        cmocka_unit_test(date_format_values),         cmocka_unit_test(timestamp_parse_valid),
        cmocka_unit_test(timestamp_parse_invalid),    cmocka_unit_test(timestamp_format_values),
        cmocka_unit_test(riyadh_day_turns_at_21_utc), cmocka_unit_test(weekdays_and_weekend),
        cmocka_unit_test(working_days_skip_weekend),  cmocka_unit_test(working_days_skip_holidays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
