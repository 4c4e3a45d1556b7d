/* server.h — the running service: the route table, the HTTP front, the
 * background workers, and an orderly stop on SIGTERM or SIGINT. */
#ifndef CARDD_SERVER_H
#define CARDD_SERVER_H

#include <stddef.h>

#include "config.h"

struct http_route;

/* The route table: every endpoint the service answers. */
const struct http_route *server_routes(size_t *count);

/* Runs until SIGTERM/SIGINT. port_file, when not NULL, receives the bound
 * port once the service listens. Returns 0 or a negative code. */
int server_run(struct config *cfg, const char *port_file);

#endif
