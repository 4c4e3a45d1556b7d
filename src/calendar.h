/* calendar.h — dates, RFC 3339 times and working days in Asia/Riyadh
 * (UTC+3 all year; Friday and Saturday are the weekend). */
#ifndef CARDD_CALENDAR_H
#define CARDD_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RIYADH_OFFSET_S (3 * 3600)

/* Days since 1970-01-01 of a proleptic Gregorian date. */
long days_from_civil(int y, int m, int d);
void civil_from_days(long z, int *y, int *m, int *d);

/* "YYYY-MM-DD", a real date. Returns 0 and the day number, or -EINVAL. */
int date_parse(const char *s, long *day);
/* Writes "YYYY-MM-DD" (11 bytes). */
void date_format(long day, char out[11]);

/* RFC 3339 with a "Z" or "+hh:mm" offset (up to 15:59), an optional
 * fraction of up to 9 digits, and a leap second (:60, read as the next
 * minute's first second). Read exactly as PostgreSQL reads it into a
 * timestamptz: whatever this accepts, PostgreSQL accepts with the same
 * instant (the differential test in test_calendar checks it). Returns 0
 * and Unix microseconds, or -EINVAL. */
int timestamp_parse_us(const char *s, int64_t *out);

/* The same, in whole Unix seconds (the fraction dropped, rounding down). */
int timestamp_parse(const char *s, time_t *out);
/* Writes "YYYY-MM-DDTHH:MM:SSZ" (21 bytes). */
void timestamp_format(time_t t, char out[21]);

/* The Riyadh calendar day of an instant. */
long riyadh_day(time_t t);

/* 0 Monday .. 6 Sunday. */
int weekday(long day);
bool is_weekend(long day);

/* The n-th working day after day: weekends and the given holidays (a sorted
 * array of day numbers) are skipped. */
long add_working_days(long day, int n, const long *holidays, size_t nholidays);

#endif
