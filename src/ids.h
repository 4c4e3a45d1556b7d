/* ids.h — the identifiers of API.md and their check digits. */
#ifndef CARDD_IDS_H
#define CARDD_IDS_H

#include <stdbool.h>

/* 10 digits, first 1 (citizen) or 2 (resident), Luhn over all 10. */
bool national_id_valid(const char *s);
/* As above but says why: 0, -1 bad format, -2 bad check digit. */
int national_id_check(const char *s);

/* 1 to 32 of A-Z 0-9 '-'. */
bool request_no_valid(const char *s);

/* A Saudi mobile in E.164: "+9665" and 8 digits. */
bool phone_valid(const char *s);

/* UPU S10 check digit of 8 digits; -1 if s is not 8 digits. */
int s10_check_digit(const char *eight_digits);
/* Builds "<prefix><8 digits><check>SA" from a serial 1..99999999. prefix is
 * two capital letters. out must hold 14 bytes. Returns 0 or -EINVAL. */
int s10_format(const char *prefix, long serial, char out[14]);
/* Two letters, 8 digits, a correct check digit, "SA". */
bool s10_valid(const char *s);

/* n characters of s, each in the set. */
bool all_of(const char *s, const char *set);
bool all_digits(const char *s, unsigned n);

#endif
