/* it_differential.c — two readers of the same text must agree: the
 * service's RFC 3339 parser (timestamp_parse_us) against PostgreSQL's
 * timestamptz input, over random RFC 3339-like strings. Either both accept
 * with the same instant, or the service refuses (it may be stricter, never
 * looser: whatever it lets through, the database reads as it did). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "calendar.h"

#define STRINGS 20000
#define BATCH   2000

static PGconn *pg;

static int group_setup(void **state)
{
    (void)state;
    pg = PQconnectdb("");
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(pg));
        return -1;
    }
    /* PostgreSQL's reading of one string: the instant in Unix
     * microseconds, or NULL when it refuses the string. */
    PGresult *r = PQexec(pg, "SET timezone = 'Asia/Riyadh';"
                             "CREATE OR REPLACE FUNCTION pg_temp.reads(s text) RETURNS bigint"
                             " LANGUAGE plpgsql AS $$ BEGIN"
                             " RETURN (extract(epoch FROM s::timestamptz) * 1000000)::bigint;"
                             " EXCEPTION WHEN others THEN RETURN NULL; END $$");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "set-up: %s", PQerrorMessage(pg));
    PQclear(r);
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(pg);
    return 0;
}

static int pick(unsigned *seed, int n)
{
    return (int)(rand_r(seed) % (unsigned)n);
}

/* Two digits, mostly in range, sometimes just past it. */
static void two(char *out, unsigned *seed, int hi)
{
    int v = pick(seed, 8) == 0 ? hi + pick(seed, 3) : pick(seed, hi);
    out[0] = (char)('0' + v / 10 % 10);
    out[1] = (char)('0' + v % 10);
}

/* An RFC 3339-like string: the fields near and past their limits, leap
 * seconds, fractions of 0 to 10 digits (ties of rounding among them),
 * offsets up to 19:59, odd separators, and now and then a byte changed. */
static void random_timestamp(char *out, size_t len, unsigned *seed)
{
    static const int years[] = { 1899, 1900, 1970, 1999, 2000, 2024, 2026, 2100, 9999 };
    char b[64];
    int y = years[pick(seed, 9)];
    snprintf(b, sizeof(b), "%04d-", y);
    two(b + 5, seed, 13);
    b[7] = '-';
    two(b + 8, seed, 32);
    static const char seps[] = "TTTTtt _";
    b[10] = seps[pick(seed, 8)];
    two(b + 11, seed, 25);
    b[13] = ':';
    two(b + 14, seed, 60);
    b[16] = ':';
    if (pick(seed, 4) == 0)
        memcpy(b + 17, pick(seed, 2) ? "60" : "59", 2);
    else
        two(b + 17, seed, 61);
    size_t n = 19;
    int digits = pick(seed, 3) ? 0 : pick(seed, 11);
    if (digits > 0 || pick(seed, 20) == 0) {
        b[n++] = '.';
        for (int i = 0; i < digits; i++) {
            /* Runs of 9 and a 5 at the seventh digit make carries and ties. */
            int kind = pick(seed, 4);
            b[n++] = kind == 0 ? '9' : kind == 1 && i == 6 ? '5' : (char)('0' + pick(seed, 10));
        }
    }
    switch (pick(seed, 6)) {
    case 0:
    case 1:
        b[n++] = 'Z';
        break;
    case 2:
        b[n++] = 'z';
        break;
    default:
        b[n++] = pick(seed, 2) ? '+' : '-';
        two(b + n, seed, 20);
        n += 2;
        b[n++] = ':';
        two(b + n, seed, 60);
        n += 2;
    }
    b[n] = '\0';
    if (pick(seed, 10) == 0) {
        static const char junk[] = "0123456789:-+.TZtz ";
        b[pick(seed, (int)n)] = junk[pick(seed, (int)sizeof(junk) - 1)];
    }
    snprintf(out, len, "%s", b);
}

static void test_timestamps_agree_with_postgresql(void **state)
{
    (void)state;
    unsigned seed = 20261129;
    static char strings[BATCH][64];
    int accepted = 0, both = 0, fractions = 0, leaps = 0;
    for (int done = 0; done < STRINGS; done += BATCH) {
        /* One round trip per batch: the strings one a line. */
        static char text[BATCH * 64];
        size_t used = 0;
        for (int i = 0; i < BATCH; i++) {
            random_timestamp(strings[i], sizeof(strings[i]), &seed);
            used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", i ? "\n" : "",
                                     strings[i]);
        }
        const char *params[1] = { text };
        PGresult *r = PQexecParams(pg,
                                   "SELECT pg_temp.reads(s) FROM"
                                   " regexp_split_to_table($1, E'\\n') WITH ORDINALITY AS t(s, n)"
                                   " ORDER BY n",
                                   1, NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(r), BATCH);
        for (int i = 0; i < BATCH; i++) {
            int64_t mine;
            if (timestamp_parse_us(strings[i], &mine) != 0)
                continue;
            accepted++;
            if (PQgetisnull(r, i, 0))
                fail_msg("the service accepts \"%s\", PostgreSQL refuses it", strings[i]);
            long long theirs = strtoll(PQgetvalue(r, i, 0), NULL, 10);
            if (theirs != mine)
                fail_msg("\"%s\": the service reads %lld us, PostgreSQL %lld us", strings[i],
                         (long long)mine, theirs);
            both++;
            fractions += strchr(strings[i], '.') != NULL;
            leaps += strings[i][17] == '6';
        }
        PQclear(r);
    }
    printf("%d strings: %d accepted by the service (%d with a fraction, %d leap seconds),"
           " all read alike by PostgreSQL\n",
           STRINGS, accepted, fractions, leaps);
    /* The check means something only if many strings get through. */
    assert_true(accepted > STRINGS / 10);
    assert_true(fractions > 500);
    assert_true(leaps > 100);
    assert_int_equal(both, accepted);
}

/* The cases that gave a 500 before, and the edges, one by one. */
static void test_known_cases(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "2026-11-21T10:00:00.9Z",
        "2026-11-21T10:00:00.1Z",
        "2026-11-21T10:00:60Z",
        "2026-12-31T23:59:60Z",
        "2026-11-21T10:00:60.5Z",
        "2026-11-21T10:00:00.1234565Z",
        "2026-11-21T10:00:00.1234575Z",
        "2026-11-21T10:00:00.9999995Z",
        "2026-11-21T10:00:00.999999999Z",
        "2026-11-21T10:00:59.9999999Z",
        "2026-11-21T10:00:00+15:59",
        "2026-11-21T10:00:00-15:59",
        "1900-01-01T00:00:00+15:00",
        "2026-11-21t10:00:00z",
        "2026-02-28T23:59:60.0000004+03:00",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t mine;
        if (timestamp_parse_us(cases[i], &mine) != 0)
            fail_msg("the service refuses \"%s\"", cases[i]);
        const char *params[1] = { cases[i] };
        PGresult *r = PQexecParams(pg, "SELECT pg_temp.reads($1)", 1, NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        if (PQgetisnull(r, 0, 0))
            fail_msg("PostgreSQL refuses \"%s\"", cases[i]);
        if (strtoll(PQgetvalue(r, 0, 0), NULL, 10) != mine)
            fail_msg("\"%s\": %lld against PostgreSQL's %s", cases[i], (long long)mine,
                     PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    /* PostgreSQL refuses these: so does the service. */
    static const char *const refused[] = { "2026-11-21T10:00:00+16:00", "2026-11-21T24:00:00Z",
                                           "2026-02-29T10:00:00Z" };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int64_t mine;
        assert_int_equal(timestamp_parse_us(refused[i], &mine), -EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_cases),
        cmocka_unit_test(test_timestamps_agree_with_postgresql),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
