/* clientaddr.h — who a client is, for limits: an IPv4 address or an IPv6
 * /64 (one subscriber's prefix), and behind trusted proxies the address they
 * forward — never a forwarded address from anyone else. */
#ifndef CARDD_CLIENTADDR_H
#define CARDD_CLIENTADDR_H

#include <stdbool.h>
#include <stddef.h>

#define CLIENT_KEY_LEN 64

/* Whether list ("10.0.0.1, 10.1.0.0/16, ::1", may be empty) is well formed. */
bool clientaddr_list_valid(const char *list);

/* The key of a client: peer is the connection's address (text), xff the
 * X-Forwarded-For header or NULL, trusted the trusted_proxies list. When the
 * peer is a trusted proxy, the rightmost forwarded address that is not one
 * is the client. IPv4-mapped IPv6 counts as IPv4; IPv6 is cut to its /64.
 * An address that does not parse is used as given (bounded). */
void clientaddr_key(const char *peer, const char *xff, const char *trusted,
                    char out[CLIENT_KEY_LEN]);

struct http_req;
/* The key of the client that made rq, with the service's trusted_proxies. */
void clientaddr_of(struct http_req *rq, char out[CLIENT_KEY_LEN]);

#endif
