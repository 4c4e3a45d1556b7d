/* test_refdata.c — CSV splitting, and the imports of cities, branches and
 * holidays against a database replaced at link time (test_refdata.wrap):
 * each import is one transaction, and a bad line changes nothing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"
#include "refdata.h"

/* ---- csv_split ---- */

static void csv_plain_fields(void **state)
{
    (void)state;
    char line[] = "Riyadh,Riyadh,24.7136,46.6753\n";
    char *f[8];
    assert_int_equal(csv_split(line, f, 8), 4);
    assert_string_equal(f[0], "Riyadh");
    assert_string_equal(f[1], "Riyadh");
    assert_string_equal(f[2], "24.7136");
    assert_string_equal(f[3], "46.6753");
}

static void csv_empty_fields_and_crlf(void **state)
{
    (void)state;
    char line[] = ",a,,\r\n";
    char *f[8];
    assert_int_equal(csv_split(line, f, 8), 4);
    assert_string_equal(f[0], "");
    assert_string_equal(f[1], "a");
    assert_string_equal(f[2], "");
    assert_string_equal(f[3], "");

    char empty[] = "";
    assert_int_equal(csv_split(empty, f, 8), 1);
    assert_string_equal(f[0], "");
}

static void csv_quoted_fields(void **state)
{
    (void)state;
    char line[] = "\"Al Olaya, North\",\"say \"\"hi\"\"\",\"\",plain,\"الأحوال المدنية - الرياض\"";
    char *f[8];
    assert_int_equal(csv_split(line, f, 8), 5);
    assert_string_equal(f[0], "Al Olaya, North");
    assert_string_equal(f[1], "say \"hi\"");
    assert_string_equal(f[2], "");
    assert_string_equal(f[3], "plain");
    assert_string_equal(f[4], "الأحوال المدنية - الرياض");
}

static void csv_quoted_last_field_with_newline(void **state)
{
    (void)state;
    char line[] = "a,\"b,c\"\n";
    char *f[4];
    assert_int_equal(csv_split(line, f, 4), 2);
    assert_string_equal(f[0], "a");
    assert_string_equal(f[1], "b,c");
}

static void csv_malformed(void **state)
{
    (void)state;
    char *f[8];
    char unterminated[] = "a,\"bc";
    assert_int_equal(csv_split(unterminated, f, 8), -1);
    char after_quote[] = "\"ab\"c,d";
    assert_int_equal(csv_split(after_quote, f, 8), -1);
    char lone_quote[] = "\"";
    assert_int_equal(csv_split(lone_quote, f, 8), -1);
}

static void csv_too_many_fields(void **state)
{
    (void)state;
    char *f[3];
    char four[] = "a,b,c,d";
    assert_int_equal(csv_split(four, f, 3), -1);
    char three[] = "a,b,c";
    assert_int_equal(csv_split(three, f, 3), 3);
    char trailing[] = "a,b,c,";
    assert_int_equal(csv_split(trailing, f, 3), -1);
}

/* ---- a recording stand-in for the database ---- */

#define MAX_CALLS 16
static struct {
    int begins, commits, rollbacks, execs;
    int fail_exec_at; /* 1-based exec call that fails; 0: none */
    char sql[MAX_CALLS][256];
    char params[MAX_CALLS][8][128];
    int nparams[MAX_CALLS];
} rec;

int __wrap_db_begin(struct db *db);
int __wrap_db_commit(struct db *db);
void __wrap_db_rollback(struct db *db);
int __wrap_db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
                   const char *const *params);
const char *__wrap_db_error_message(const struct db *db);

int __wrap_db_begin(struct db *db)
{
    (void)db;
    rec.begins++;
    return 0;
}

int __wrap_db_commit(struct db *db)
{
    (void)db;
    rec.commits++;
    return 0;
}

void __wrap_db_rollback(struct db *db)
{
    (void)db;
    rec.rollbacks++;
}

int __wrap_db_exec(struct db *db, struct db_res **res, const char *sql, int nparams,
                   const char *const *params)
{
    (void)db;
    if (res)
        *res = NULL;
    int i = rec.execs++;
    assert_true(i < MAX_CALLS);
    snprintf(rec.sql[i], sizeof(rec.sql[i]), "%s", sql);
    rec.nparams[i] = nparams;
    for (int p = 0; p < nparams && p < 8; p++)
        snprintf(rec.params[i][p], sizeof(rec.params[i][p]), "%s",
                 params[p] ? params[p] : "(null)");
    if (rec.fail_exec_at == i + 1)
        return DB_EINVALID;
    return 0;
}

const char *__wrap_db_error_message(const struct db *db)
{
    (void)db;
    return "violates check constraint";
}

static int reset(void **state)
{
    (void)state;
    memset(&rec, 0, sizeof(rec));
    return 0;
}

static FILE *text(const char *s)
{
    FILE *f = fmemopen((void *)s, strlen(s), "r");
    assert_non_null(f);
    return f;
}

static struct db *const fake_db = (struct db *)&rec;

static void holidays_import_in_one_transaction(void **state)
{
    (void)state;
    char msg[128] = "";
    FILE *in =
        text("date,name\r\n2026-09-23,Saudi National Day\r\n\r\n2027-02-22,Founding Day\r\n");
    assert_int_equal(refdata_import_holidays(fake_db, in, msg, sizeof(msg)), 2);
    fclose(in);
    assert_string_equal(msg, "2 rows imported");
    assert_int_equal(rec.begins, 1);
    assert_int_equal(rec.commits, 1);
    assert_int_equal(rec.rollbacks, 0);
    assert_int_equal(rec.execs, 2);
    assert_non_null(strstr(rec.sql[0], "INSERT INTO holidays"));
    assert_int_equal(rec.nparams[0], 2);
    assert_string_equal(rec.params[0][0], "2026-09-23");
    assert_string_equal(rec.params[0][1], "Saudi National Day");
    assert_string_equal(rec.params[1][0], "2027-02-22");
    assert_string_equal(rec.params[1][1], "Founding Day");
}

static void holidays_bad_date_changes_nothing(void **state)
{
    (void)state;
    char msg[128] = "";
    FILE *in = text("date,name\n2026-09-23,Saudi National Day\n2026-02-30,Nonsense\n");
    assert_int_equal(refdata_import_holidays(fake_db, in, msg, sizeof(msg)), -EINVAL);
    fclose(in);
    assert_string_equal(msg, "line 3: the date must be YYYY-MM-DD");
    assert_int_equal(rec.commits, 0);
    assert_int_equal(rec.rollbacks, 1);
}

static void holidays_wrong_header(void **state)
{
    (void)state;
    char msg[128] = "";
    FILE *in = text("day,name\n2026-09-23,Saudi National Day\n");
    assert_int_equal(refdata_import_holidays(fake_db, in, msg, sizeof(msg)), -EINVAL);
    fclose(in);
    assert_string_equal(msg, "line 1: expected the header \"date,name\"");
    assert_int_equal(rec.execs, 0);
    assert_int_equal(rec.commits, 0);
    assert_int_equal(rec.rollbacks, 1);
}

static void empty_file_is_refused(void **state)
{
    (void)state;
    char msg[128] = "";
    FILE *in = text("");
    assert_int_equal(refdata_import_cities(fake_db, in, msg, sizeof(msg)), -EINVAL);
    fclose(in);
    assert_string_equal(msg, "empty file");
    assert_int_equal(rec.commits, 0);
    assert_int_equal(rec.rollbacks, 1);
}

static void wrong_field_count(void **state)
{
    (void)state;
    char msg[128] = "";
    FILE *in = text("city,region,lat,lon\nRiyadh,Riyadh,24.7136\n");
    assert_int_equal(refdata_import_cities(fake_db, in, msg, sizeof(msg)), -EINVAL);
    fclose(in);
    assert_string_equal(msg, "line 2: expected 4 fields");
    assert_int_equal(rec.execs, 0);
    assert_int_equal(rec.rollbacks, 1);
}

static void cities_import(void **state)
{
    (void)state;
    char msg[128] = "";
    FILE *in = text("city,region,lat,lon\nRiyadh,Riyadh,24.7136,46.6753\n"
                    "\"Al Kharj\",Riyadh,24.1556,47.3120\n");
    assert_int_equal(refdata_import_cities(fake_db, in, msg, sizeof(msg)), 2);
    fclose(in);
    assert_int_equal(rec.commits, 1);
    assert_int_equal(rec.nparams[1], 4);
    assert_string_equal(rec.params[1][0], "Al Kharj");
    assert_string_equal(rec.params[1][2], "24.1556");
    assert_string_equal(rec.params[1][3], "47.3120");
}

static void cities_bad_coordinates(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "city,region,lat,lon\nX,Y,90.5,46\n", "city,region,lat,lon\nX,Y,24,180.1\n",
        "city,region,lat,lon\nX,Y,24,east\n", "city,region,lat,lon\nX,Y,,46\n",
        "city,region,lat,lon\n,Y,24,46\n", /* no name */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char msg[128] = "";
        reset(NULL);
        FILE *in = text(bad[i]);
        assert_int_equal(refdata_import_cities(fake_db, in, msg, sizeof(msg)), -EINVAL);
        fclose(in);
        assert_string_equal(msg, "line 2: a city needs a name and valid coordinates");
        assert_int_equal(rec.execs, 0);
        assert_int_equal(rec.commits, 0);
    }
}

static void branches_import_with_arabic_names(void **state)
{
    (void)state;
    char msg[128] = "";
    FILE *in =
        text("branch_id,name_en,name_ar,city,lat,lon,collects_cards\n"
             "RUH-OLY,Civil Affairs Riyadh Al Olaya,الأحوال المدنية - الرياض - العليا,Riyadh,"
             "24.6920,46.6850,true\n"
             "JED-RWD,\"Civil Affairs Jeddah, Al Rawdah\",الأحوال المدنية - جدة,Jeddah,"
             "21.5600,39.1500,false\n");
    assert_int_equal(refdata_import_branches(fake_db, in, msg, sizeof(msg)), 2);
    fclose(in);
    assert_int_equal(rec.nparams[0], 7);
    assert_string_equal(rec.params[0][0], "RUH-OLY");
    assert_string_equal(rec.params[0][2], "الأحوال المدنية - الرياض - العليا");
    assert_string_equal(rec.params[0][6], "true");
    assert_string_equal(rec.params[1][1], "Civil Affairs Jeddah, Al Rawdah");
    assert_string_equal(rec.params[1][6], "false");
    assert_int_equal(rec.commits, 1);
}

static void branches_bad_flag(void **state)
{
    (void)state;
    char msg[128] = "";
    FILE *in = text("branch_id,name_en,name_ar,city,lat,lon,collects_cards\n"
                    "RUH-OLY,Olaya,العليا,Riyadh,24.6920,46.6850,yes\n");
    assert_int_equal(refdata_import_branches(fake_db, in, msg, sizeof(msg)), -EINVAL);
    fclose(in);
    assert_string_equal(msg, "line 2: collects_cards must be true or false");
    assert_int_equal(rec.commits, 0);
    assert_int_equal(rec.rollbacks, 1);
}

/* A database error on the 2nd row rolls the 1st back too, and says where. */
static void database_error_rolls_back(void **state)
{
    (void)state;
    char msg[128] = "";
    rec.fail_exec_at = 2;
    FILE *in = text("date,name\n2026-09-23,Saudi National Day\n2027-02-22,Founding Day\n");
    assert_int_equal(refdata_import_holidays(fake_db, in, msg, sizeof(msg)), DB_EINVALID);
    fclose(in);
    assert_string_equal(msg, "line 3: violates check constraint");
    assert_int_equal(rec.execs, 2);
    assert_int_equal(rec.commits, 0);
    assert_int_equal(rec.rollbacks, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv_plain_fields),
        cmocka_unit_test(csv_empty_fields_and_crlf),
        cmocka_unit_test(csv_quoted_fields),
        cmocka_unit_test(csv_quoted_last_field_with_newline),
        cmocka_unit_test(csv_malformed),
        cmocka_unit_test(csv_too_many_fields),
        cmocka_unit_test_setup(holidays_import_in_one_transaction, reset),
        cmocka_unit_test_setup(holidays_bad_date_changes_nothing, reset),
        cmocka_unit_test_setup(holidays_wrong_header, reset),
        cmocka_unit_test_setup(empty_file_is_refused, reset),
        cmocka_unit_test_setup(wrong_field_count, reset),
        cmocka_unit_test_setup(cities_import, reset),
        cmocka_unit_test_setup(cities_bad_coordinates, reset),
        cmocka_unit_test_setup(branches_import_with_arabic_names, reset),
        cmocka_unit_test_setup(branches_bad_flag, reset),
        cmocka_unit_test_setup(database_error_rolls_back, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
