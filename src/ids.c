/* ids.c — national ID (Luhn), request numbers, phones and UPU S10 numbers. */
#include "ids.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool all_digits(const char *s, unsigned n)
{
    if (strlen(s) != n)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool all_of(const char *s, const char *set)
{
    return s[strspn(s, set)] == '\0';
}

int national_id_check(const char *s)
{
    if (!all_digits(s, 10) || (s[0] != '1' && s[0] != '2'))
        return -1;
    int sum = 0;
    for (int i = 0; i < 10; i++) {
        int d = s[i] - '0';
        if (i % 2 == 0) { /* 1st, 3rd, ... from the left are doubled */
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0 ? 0 : -2;
}

bool national_id_valid(const char *s)
{
    return national_id_check(s) == 0;
}

bool request_no_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 32 && all_of(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
}

bool phone_valid(const char *s)
{
    return strncmp(s, "+9665", 5) == 0 && all_digits(s + 5, 8);
}

int s10_check_digit(const char *d)
{
    static const int w[8] = { 8, 6, 4, 2, 3, 5, 9, 7 };
    if (!all_digits(d, 8))
        return -1;
    int sum = 0;
    for (int i = 0; i < 8; i++)
        sum += (d[i] - '0') * w[i];
    int c = 11 - sum % 11;
    if (c == 10)
        return 0;
    if (c == 11)
        return 5;
    return c;
}

int s10_format(const char *prefix, long serial, char out[14])
{
    if (strlen(prefix) != 2 || !all_of(prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || serial < 1 ||
        serial > 99999999)
        return -EINVAL;
    char digits[9];
    snprintf(digits, sizeof(digits), "%08ld", serial);
    snprintf(out, 14, "%s%s%dSA", prefix, digits, s10_check_digit(digits));
    return 0;
}

bool s10_valid(const char *s)
{
    if (strlen(s) != 13 || strcmp(s + 11, "SA") != 0)
        return false;
    if (!(s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'))
        return false;
    char digits[9];
    memcpy(digits, s + 2, 8);
    digits[8] = '\0';
    int c = s10_check_digit(digits);
    return c >= 0 && s[10] == '0' + c;
}
