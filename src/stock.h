/* stock.h — the HTTP handlers of blank card stock: POST /v1/stock/batches,
 * GET /v1/stock, and a card spoiled or destroyed by hand. The rules and
 * the SQL are the card aggregate's (store_card.h). */
#ifndef CARDD_STOCK_H
#define CARDD_STOCK_H

#include "http.h"
#include "store_card.h"

void stock_batch_create(struct http_req *rq);
void stock_list(struct http_req *rq);

/* HTTP: countersigned with X-Witness-Authorization (API.md). */
void card_spoil(struct http_req *rq);
void card_destroy(struct http_req *rq);

#endif
