/* refdata.h — reference data: cities, branches and holidays, their imports
 * and what the service reads of them. Imports come from CSV files: cities, branches
 * (the shape of shared/reference/branches.csv) and holidays. Each import is
 * one transaction: a file with any bad line changes nothing. */
#ifndef CARDD_REFDATA_H
#define CARDD_REFDATA_H

#include <jansson.h>
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

/* ---- branches and cities, as the courier and the citizen see them ---- */

/* The active branch that hands over cards nearest (great-circle) to the
 * address of request_id: its own coordinates, else its city's centre.
 * Ties go to the lower branch_id. With no coordinates at all, a branch of
 * the same city is taken, else the lowest branch_id. Returns 0 and fills
 * out, -ENOENT when no branch can take cards, or a DB_* code. */
int branch_nearest(struct db *db, const char *request_id, char out[33]);

/* {"branch_id", "name": {"ar", "en"}, "city", "lat", "lon"} of a branch, or
 * NULL (and a negative code in *rc) when it cannot be read. */
json_t *branch_describe(struct db *db, const char *branch_id, int *rc);

/* Whether the branch is active and hands over cards: 1, 0 (also when there
 * is no such branch) or a DB_* code. */
int branch_collects(struct db *db, const char *branch_id);

/* Whether a city is one we know (the centre of an address without
 * coordinates): 1, 0 or a DB_* code. */
int refdata_city_known(struct db *db, const char *city);

/* The holiday calendar: the imported holidays after day (day numbers, as
 * calendar.h counts them), sorted, at most max. Returns how many, or a
 * DB_* code. Every working-day computation (delivery estimate, collection
 * deadline) reads holidays through this one function. */
int refdata_holidays_after(struct db *db, long day, long *out, size_t max);

/* Splits one CSV line (RFC 4180 quoting) into at most max fields, in place.
 * Returns the number of fields or -1 for a malformed line. */
int csv_split(char *line, char **fields, int max);

#endif
