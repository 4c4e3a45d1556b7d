/* branch.h — branches as the courier and the citizen see them: the nearest
 * one that hands over cards, its description, and the handover of a card to
 * its holder (POST /v1/branches/{branch_id}/handover). */
#ifndef CARDD_BRANCH_H
#define CARDD_BRANCH_H

#include <jansson.h>

#include "http.h"

struct db;

/* The active branch that hands over cards nearest (great-circle) to the
 * address of request_id: its own coordinates, else its city's centre.
 * Ties go to the lower branch_id. With no coordinates at all, a branch of
 * the same city is taken, else the lowest branch_id. Returns 0 and fills
 * out, -ENOENT when no branch can take cards, or a DB_* code. */
int branch_nearest(struct db *db, const char *request_id, char out[33]);

/* {"branch_id", "name": {"ar", "en"}, "city", "lat", "lon"} of a branch, or
 * NULL (and a negative code in *rc) when it cannot be read. */
json_t *branch_describe(struct db *db, const char *branch_id, int *rc);

void branches_handover(struct http_req *rq);

#endif
