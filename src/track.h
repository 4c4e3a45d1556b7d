/* track.h — POST /v1/track: where is my card? */
#ifndef CARDD_TRACK_H
#define CARDD_TRACK_H

#include "http.h"

void track_lookup(struct http_req *rq);

/* Masks a national address for the citizen: "City, District, ****". */
void track_mask_address(const char *city, const char *district, char *out, size_t len);

#endif
