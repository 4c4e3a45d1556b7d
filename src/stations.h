/* stations.h — production stations as operators see them, and the queue. */
#ifndef CARDD_STATIONS_H
#define CARDD_STATIONS_H

#include "http.h"

struct db;
struct config;

/* Records this instance's configured stations (insert or update), so that
 * every instance sharing the database shows them. Returns 0 or a DB_* code. */
int stations_register(struct db *db, const struct config *cfg);

void stations_list(struct http_req *rq);
void station_pause(struct http_req *rq);
void station_resume(struct http_req *rq);
void production_queue(struct http_req *rq);

#endif
