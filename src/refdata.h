/* refdata.h — imports of reference data from CSV files: cities, branches
 * (the shape of shared/reference/branches.csv) and holidays. Each import is
 * one transaction: a file with any bad line changes nothing. */
#ifndef CARDD_REFDATA_H
#define CARDD_REFDATA_H

#include <stddef.h>
#include <stdio.h>

struct db;

/* Each returns the number of rows imported, or a negative code with msg
 * saying which line was wrong and why. Existing rows with the same key are
 * updated. */
int refdata_import_cities(struct db *db, FILE *in, char *msg, size_t msglen);
int refdata_import_branches(struct db *db, FILE *in, char *msg, size_t msglen);
/* Holidays: "date,name" with a header line. */
int refdata_import_holidays(struct db *db, FILE *in, char *msg, size_t msglen);

/* Splits one CSV line (RFC 4180 quoting) into at most max fields, in place.
 * Returns the number of fields or -1 for a malformed line. */
int csv_split(char *line, char **fields, int max);

#endif
