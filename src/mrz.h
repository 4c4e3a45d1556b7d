/*
 * mrz.h — machine-readable zone of a TD1 (ID-1 sized) document, ICAO 9303
 * part 5: three lines of 30 characters from the set A-Z, 0-9 and '<'.
 */
#ifndef CARDD_MRZ_H
#define CARDD_MRZ_H

#include <stdbool.h>
#include <stddef.h>

#define MRZ_TD1_COLS 30
#define MRZ_TD1_ROWS 3

/* What goes into a TD1 MRZ. Every field is a NUL-terminated string;
 * optional ones may be NULL or "". */
struct mrz_fields {
    const char *document_code;   /* "ID" (2 characters at most) */
    const char *issuing_state;   /* "SAU" */
    const char *document_number; /* 1-9 characters A-Z 0-9: the card serial */
    const char *optional1;       /* up to 15 characters, may be NULL */
    const char *birth_date;      /* YYMMDD */
    char sex;                    /* 'M', 'F' or '<' */
    const char *expiry_date;     /* YYMMDD */
    const char *nationality;     /* "SAU" */
    const char *optional2;       /* up to 11 characters, may be NULL */
    const char *surname;         /* Latin: letters, spaces, hyphens, apostrophes */
    const char *given_names;     /* Latin, may be NULL or "" */
};

/* The three lines, each NUL-terminated. */
struct mrz_td1 {
    char line[MRZ_TD1_ROWS][MRZ_TD1_COLS + 1];
};

/*
 * ICAO 9303 check digit over s[0..len): weights 7, 3, 1; digits count as
 * their value, A-Z as 10-35, '<' as 0. Returns 0-9, or -EINVAL if s holds
 * any other character.
 */
int mrz_check_digit(const char *s, size_t len);

/*
 * Builds the TD1 MRZ from f. Names are upper-cased, spaces and hyphens
 * become '<', apostrophes and full stops are dropped; a name too long for
 * line 3 is truncated as ICAO 9303 part 3 says (secondary identifier first,
 * the line then ends on a letter). Returns 0, or -EINVAL if a field is
 * missing, too long, or holds a character the MRZ cannot carry (non-Latin
 * names must be transliterated before).
 */
int mrz_td1_build(const struct mrz_fields *f, struct mrz_td1 *out);

/*
 * True if the 90 characters at mrz (three lines back to back, no newlines)
 * form a TD1 MRZ whose four check digits (document number, birth date,
 * expiry, composite) are right.
 */
bool mrz_td1_valid(const char *mrz, size_t len);

#endif
