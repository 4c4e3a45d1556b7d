/* stock.h — blank card stock: batches received, and every card's fate.
 * For each batch, received = used + spoiled + destroyed + in_production +
 * available, always: a card is one row whose state says where it is. */
#ifndef CARDD_STOCK_H
#define CARDD_STOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

#define CARD_SERIAL_MAX 9   /* the TD1 document number field */

/* The serial count places after first ("A00000001" + 2 = "A00000003"),
 * keeping the width of the numeric tail. Returns 0, or -EINVAL when first
 * has no numeric tail or the tail would overflow its width. */
int card_serial_add(const char *first, long count, char out[CARD_SERIAL_MAX + 1]);

/* 1 to 9 of A-Z 0-9. */
bool card_serial_valid(const char *s);

void stock_batch_create(struct http_req *rq);
void stock_list(struct http_req *rq);
void card_spoil(struct http_req *rq);
void card_destroy(struct http_req *rq);

#endif
