/* clientaddr.c — see clientaddr.h. */
#include "clientaddr.h"
#include "app.h"
#include "http.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct addr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t b[16];
};

/* Parses an address, trimming blanks; IPv4-mapped IPv6 becomes IPv4. */
static bool parse_addr(const char *s, size_t n, struct addr *a)
{
    char buf[INET6_ADDRSTRLEN + 1];
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, buf, a->b) == 1) {
        a->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, a->b) != 1)
        return false;
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (memcmp(a->b, mapped, 12) == 0) {
        memmove(a->b, a->b + 12, 4);
        memset(a->b + 4, 0, 12);
        a->family = AF_INET;
    } else {
        a->family = AF_INET6;
    }
    return true;
}

/* Whether a lies in the network "ADDR[/BITS]" of n bytes; -1 if malformed. */
static int in_network(const struct addr *a, const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    struct addr net;
    if (!parse_addr(s, slash ? (size_t)(slash - s) : n, &net))
        return -1;
    int max = net.family == AF_INET ? 32 : 128, bits = max;
    if (slash) {
        char num[8];
        size_t k = n - (size_t)(slash - s) - 1;
        if (k == 0 || k >= sizeof(num))
            return -1;
        memcpy(num, slash + 1, k);
        num[k] = '\0';
        char *end = NULL;
        long v = strtol(num, &end, 10);
        if (*end || v < 0 || v > max)
            return -1;
        bits = (int)v;
    }
    if (!a || a->family != net.family)
        return 0;
    for (int i = 0; i < bits; i++) {
        uint8_t m = (uint8_t)(0x80 >> (i % 8));
        if ((a->b[i / 8] & m) != (net.b[i / 8] & m))
            return 0;
    }
    return 1;
}

/* Whether a lies in one of the comma- or blank-separated networks of
 * list: 1, 0, or -1 at the first malformed item (a may be NULL to check). */
static int trusted_match(const struct addr *a, const char *list)
{
    const char *p = list ? list : "";
    while (*p) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        if (n == 0)
            break;
        int r = in_network(a, p, n);
        if (r != 0)
            return r;
        p += n;
    }
    return 0;
}

bool clientaddr_list_valid(const char *list)
{
    return trusted_match(NULL, list) == 0;
}

static void key_of(const struct addr *a, char out[CLIENT_KEY_LEN])
{
    char text[INET6_ADDRSTRLEN];
    if (a->family == AF_INET) {
        inet_ntop(AF_INET, a->b, out, CLIENT_KEY_LEN);
        return;
    }
    uint8_t prefix[16] = { 0 };
    memcpy(prefix, a->b, 8);
    inet_ntop(AF_INET6, prefix, text, sizeof(text));
    snprintf(out, CLIENT_KEY_LEN, "%s/64", text);
}

void clientaddr_key(const char *peer, const char *xff, const char *trusted,
                    char out[CLIENT_KEY_LEN])
{
    struct addr a;
    if (!peer || !parse_addr(peer, strlen(peer), &a)) {
        snprintf(out, CLIENT_KEY_LEN, "%s", peer ? peer : "");
        return;
    }
    if (xff && trusted && trusted[0] && trusted_match(&a, trusted) == 1) {
        /* Right to left: each trusted proxy appended the address it saw. */
        size_t end = strlen(xff);
        while (end > 0) {
            size_t start = end;
            while (start > 0 && xff[start - 1] != ',')
                start--;
            struct addr hop;
            if (!parse_addr(xff + start, end - start, &hop))
                break; /* garbage: keep the last proxy's word */
            a = hop;
            if (trusted_match(&hop, trusted) != 1)
                break;
            end = start > 0 ? start - 1 : 0;
        }
    }
    key_of(&a, out);
}

void clientaddr_of(struct http_req *rq, char out[CLIENT_KEY_LEN])
{
    clientaddr_key(rq->client_ip, http_header(rq, "X-Forwarded-For"), rq->app->cfg->trusted_proxies,
                   out);
}
