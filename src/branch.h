/* branch.h — the handover of a card to its holder at a branch
 * (POST /v1/branches/{branch_id}/handover). Branches themselves are
 * reference data (refdata.h). */
#ifndef CARDD_BRANCH_H
#define CARDD_BRANCH_H

#include "http.h"

void branches_handover(struct http_req *rq);

#endif
