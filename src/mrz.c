/*
 * mrz.c — TD1 MRZ and its check digits (see mrz.h).
 */
#include <errno.h>
#include <string.h>

#include "mrz.h"

int mrz_check_digit(const char *s, size_t len)
{
    static const int weight[3] = { 7, 3, 1 };
    int sum = 0;

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int v;

        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'A' && c <= 'Z')
            v = c - 'A' + 10;
        else if (c == '<')
            v = 0;
        else
            return -EINVAL;
        sum += v * weight[i % 3];
    }
    return sum % 10;
}

static bool mrz_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || c == '<';
}

/* Copies an MRZ field into dst[0..width), '<'-padded. Refuses a value that
 * is too long or not made of MRZ characters. */
static int put_field(char *dst, size_t width, const char *value, bool required)
{
    size_t n = value ? strlen(value) : 0;

    if ((required && n == 0) || n > width)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!mrz_char(value[i]))
            return -EINVAL;
    memset(dst, '<', width);
    if (n)
        memcpy(dst, value, n);
    return 0;
}

static bool is_date(const char *s)
{
    if (!s || strlen(s) != 6)
        return false;
    for (int i = 0; i < 6; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Appends one name in MRZ form to out[*n..cap). Returns -EINVAL on a
 * character that has no MRZ form; stops silently at cap (truncation is
 * decided by the caller, which gives a cap larger than the line). */
static int put_name(char *out, size_t *n, size_t cap, const char *name)
{
    for (const char *p = name; p && *p; p++) {
        char c = *p;

        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c == ' ' || c == '-')
            c = '<';
        else if (c == '\'' || c == '.')
            continue;
        else if (!(c >= 'A' && c <= 'Z'))
            return -EINVAL;
        /* Collapse runs of fillers: "AL  RASHID" is "AL<RASHID". */
        if (c == '<' && (*n == 0 || out[*n - 1] == '<'))
            continue;
        if (*n < cap)
            out[(*n)++] = c;
    }
    while (*n > 0 && out[*n - 1] == '<')
        (*n)--;
    return 0;
}

int mrz_td1_build(const struct mrz_fields *f, struct mrz_td1 *out)
{
    char *l1, *l2, *l3;
    char name[128];
    size_t n = 0;
    int d, r;
    char composite[MRZ_TD1_COLS + 30];
    size_t c = 0;

    if (!f || !out || !f->document_code || !f->issuing_state || !f->nationality)
        return -EINVAL;
    if (!is_date(f->birth_date) || !is_date(f->expiry_date))
        return -EINVAL;
    if (f->sex != 'M' && f->sex != 'F' && f->sex != '<')
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    l1 = out->line[0];
    l2 = out->line[1];
    l3 = out->line[2];

    if ((r = put_field(l1, 2, f->document_code, true)) ||
        (r = put_field(l1 + 2, 3, f->issuing_state, true)) ||
        (r = put_field(l1 + 5, 9, f->document_number, true)) ||
        (r = put_field(l1 + 15, 15, f->optional1, false)))
        return r;
    d = mrz_check_digit(l1 + 5, 9);
    if (d < 0)
        return d;
    l1[14] = (char)('0' + d);

    memcpy(l2, f->birth_date, 6);
    l2[6] = (char)('0' + mrz_check_digit(l2, 6));
    l2[7] = f->sex;
    memcpy(l2 + 8, f->expiry_date, 6);
    l2[14] = (char)('0' + mrz_check_digit(l2 + 8, 6));
    if ((r = put_field(l2 + 15, 3, f->nationality, true)) ||
        (r = put_field(l2 + 18, 11, f->optional2, false)))
        return r;
    memcpy(composite + c, l1 + 5, 25);
    c += 25;
    memcpy(composite + c, l2, 7);
    c += 7;
    memcpy(composite + c, l2 + 8, 7);
    c += 7;
    memcpy(composite + c, l2 + 18, 11);
    c += 11;
    d = mrz_check_digit(composite, c);
    if (d < 0)
        return d;
    l2[29] = (char)('0' + d);

    /* Line 3: PRIMARY<<SECONDARY, built long, then truncated to 30. */
    r = put_name(name, &n, sizeof(name) - 2, f->surname);
    if (r || n == 0)
        return -EINVAL;
    if (f->given_names && *f->given_names) {
        size_t before;

        name[n++] = '<';
        name[n++] = '<';
        before = n;
        r = put_name(name, &n, sizeof(name), f->given_names);
        if (r)
            return r;
        if (n == before)
            n -= 2;
    }
    if (n > MRZ_TD1_COLS) {
        /* Truncated: the secondary identifier loses its tail first (it comes
		 * last), and a truncated name ends on a letter, never a filler. */
        n = MRZ_TD1_COLS;
        while (n > 0 && name[n - 1] == '<')
            n--;
    }
    memset(l3, '<', MRZ_TD1_COLS);
    memcpy(l3, name, n);
    return 0;
}

bool mrz_td1_valid(const char *mrz, size_t len)
{
    const char *l1 = mrz, *l2 = mrz + MRZ_TD1_COLS;
    char composite[50];

    if (!mrz || len != MRZ_TD1_COLS * MRZ_TD1_ROWS)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!mrz_char(mrz[i]))
            return false;
    if (mrz_check_digit(l1 + 5, 9) != l1[14] - '0' || mrz_check_digit(l2, 6) != l2[6] - '0' ||
        mrz_check_digit(l2 + 8, 6) != l2[14] - '0')
        return false;
    memcpy(composite, l1 + 5, 25);
    memcpy(composite + 25, l2, 7);
    memcpy(composite + 32, l2 + 8, 7);
    memcpy(composite + 39, l2 + 18, 11);
    return mrz_check_digit(composite, 50) == l2[29] - '0';
}
