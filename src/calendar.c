/* calendar.c — civil date arithmetic (Howard Hinnant's algorithms) and the
 * working-day rule of the bureau. */
#include "calendar.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void civil_from_days(long z, int *y, int *m, int *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long yy = yoe + era * 400;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int parse_ymd(const char *s, int *y, int *m, int *d)
{
    if (s[4] != '-' || s[7] != '-')
        return -EINVAL;
    *y = digits(s, 4);
    *m = digits(s + 5, 2);
    *d = digits(s + 8, 2);
    if (*y < 1900 || *m < 1 || *m > 12 || *d < 1 || *d > days_in_month(*y, *m))
        return -EINVAL;
    return 0;
}

int date_parse(const char *s, long *day)
{
    int y, m, d;
    if (strlen(s) != 10 || parse_ymd(s, &y, &m, &d))
        return -EINVAL;
    *day = days_from_civil(y, m, d);
    return 0;
}

void date_format(long day, char out[11])
{
    int y, m, d;
    char tmp[32];
    civil_from_days(day, &y, &m, &d);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", y, m, d);
    memcpy(out, tmp, 10);
    out[10] = '\0';
}

/* 10000-01-01T00:00:00Z */
#define TIMESTAMP_END_S 253402300800LL

int timestamp_parse_us(const char *s, int64_t *out)
{
    int y, mo, d;
    size_t n = strnlen(s, 41);
    if (n < 20 || n > 40 || parse_ymd(s, &y, &mo, &d))
        return -EINVAL;
    if (s[10] != 'T' && s[10] != 't')
        return -EINVAL;
    if (s[13] != ':' || s[16] != ':')
        return -EINVAL;
    int hh = digits(s + 11, 2), mi = digits(s + 14, 2), ss = digits(s + 17, 2);
    if (hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 60)
        return -EINVAL;
    const char *p = s + 19;
    int64_t fraction_us = 0;
    if (*p == '.') {
        const char *start = p + 1, *q = start;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q == start || q - start > 9)
            return -EINVAL;
        /* PostgreSQL reads the fraction with strtod and rounds it to the
         * microsecond with rint; the same two steps give the same instant,
         * ties of rounding included. */
        char frac[12];
        memcpy(frac, p, (size_t)(q - p));
        frac[q - p] = '\0';
        fraction_us = (int64_t)rint(strtod(frac, NULL) * 1000000.0);
        p = q;
    }
    long offset = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        offset = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        /* PostgreSQL takes offsets up to 15:59. */
        if (oh < 0 || oh > 15 || om < 0 || om > 59)
            return -EINVAL;
        offset = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
    } else {
        return -EINVAL;
    }
    /* A leap second (:60) is read as PostgreSQL reads it: the first second
     * of the next minute. */
    long days = days_from_civil(y, mo, d);
    int64_t secs = (int64_t)days * 86400 + hh * 3600L + mi * 60L + ss - offset;
    /* A leap second or an offset can carry 9999-12-31 into year 10000,
     * which no four-digit timestamp can write back: refused. */
    if (secs * 1000000 + fraction_us >= TIMESTAMP_END_S * 1000000)
        return -EINVAL;
    *out = secs * 1000000 + fraction_us;
    return 0;
}

int timestamp_parse(const char *s, time_t *out)
{
    int64_t us;
    int rc = timestamp_parse_us(s, &us);
    if (rc)
        return rc;
    /* Whole seconds, rounded down as PostgreSQL's date_trunc would. */
    *out = (time_t)(us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000));
    return 0;
}

void timestamp_format(time_t t, char out[21])
{
    long days = (long)(t >= 0 ? t / 86400 : (t - 86399) / 86400);
    long secs = (long)(t - (time_t)days * 86400);
    char date[11], tmp[48];
    date_format(days, date);
    snprintf(tmp, sizeof(tmp), "%sT%02ld:%02ld:%02ldZ", date, (secs / 3600) % 24, (secs / 60) % 60,
             secs % 60);
    memcpy(out, tmp, 20);
    out[20] = '\0';
}

long riyadh_day(time_t t)
{
    time_t local = t + RIYADH_OFFSET_S;
    return (long)(local >= 0 ? local / 86400 : (local - 86399) / 86400);
}

int weekday(long day)
{
    /* 1970-01-01 was a Thursday (3). */
    long w = (day + 3) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

bool is_weekend(long day)
{
    int w = weekday(day);
    return w == 4 || w == 5; /* Friday, Saturday */
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

long add_working_days(long day, int n, const long *holidays, size_t nholidays)
{
    while (n > 0) {
        day++;
        if (is_weekend(day))
            continue;
        if (nholidays && bsearch(&day, holidays, nholidays, sizeof(long), cmp_long))
            continue;
        n--;
    }
    return day;
}
