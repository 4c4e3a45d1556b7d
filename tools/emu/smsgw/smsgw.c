/* emu-smsgw — a stand-in SMS gateway for tests and the demo.
 *
 *   emu-smsgw --out FILE [--port N] [--port-file FILE] [--fail-file FILE]
 *             [--delay-ms N [--slow-file FILE]] [--hang-file FILE] [--log FILE]
 *
 * A tiny HTTP/1.1 server on 127.0.0.1. Each POSTed JSON body whose "id" it
 * has not seen is appended to FILE as one line (ids already in FILE count as
 * seen), and answered 200; a repeat is answered 200 and not written again,
 * as a gateway that de-duplicates would. While the fail file exists every
 * request is answered 503 and nothing is written: an outage. --delay-ms
 * makes each answer slow: always, or while the slow file exists when one is
 * named. While the hang file exists, requests are read and never answered
 * (the connection stays open until the file goes): a gateway that accepts
 * and hangs. --log appends "<ms> <id>" for every request received, repeats
 * included (ms: CLOCK_MONOTONIC). It links nothing of the product. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST (80 * 1024)
#define MAX_ID      80

static volatile sig_atomic_t stopping;

struct seen {
    char (*ids)[MAX_ID];
    size_t n, cap;
};

static bool seen_has(const struct seen *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return true;
    return false;
}

static int seen_add(struct seen *s, const char *id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        void *p = realloc(s->ids, cap * sizeof(*s->ids));
        if (!p)
            return -ENOMEM;
        s->ids = p;
        s->cap = cap;
    }
    snprintf(s->ids[s->n++], MAX_ID, "%s", id);
    return 0;
}

/* The string value of "id" in a flat JSON object (our ids need no escapes). */
static bool extract_id(const char *body, char out[MAX_ID])
{
    const char *p = strstr(body, "\"id\"");
    if (!p)
        return false;
    p += 4;
    while (*p == ' ' || *p == ':')
        p++;
    if (*p != '"')
        return false;
    p++;
    size_t n = strcspn(p, "\"\\");
    if (n == 0 || n >= MAX_ID || p[n] != '"')
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static void load_seen(struct seen *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[MAX_REQUEST];
    char id[MAX_ID];
    while (fgets(line, sizeof(line), f))
        if (extract_id(line, id) && !seen_has(s, id))
            seen_add(s, id);
    fclose(f);
}

static void answer(int fd, int status, const char *reason, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, strlen(body));
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
        return;
}

/* Reads one request; returns the body (inside buf) or NULL. */
static char *read_request(int fd, char *buf, size_t cap, char **method)
{
    size_t len = 0;
    char *body = NULL;
    long want = -1;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 5000) <= 0)
            return NULL;
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            return NULL;
        len += (size_t)r;
        buf[len] = '\0';
        if (!body) {
            char *end = strstr(buf, "\r\n\r\n");
            if (!end) {
                if (len >= cap - 1)
                    return NULL;
                continue;
            }
            *end = '\0';
            body = end + 4;
            want = 0;
            for (char *h = strstr(buf, "\r\n"); h; h = strstr(h + 2, "\r\n"))
                if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
                    want = strtol(h + 17, NULL, 10);
            if (want < 0 || (size_t)want > cap - 1 - (size_t)(body - buf))
                return NULL;
        }
        if ((size_t)(buf + len - body) >= (size_t)want) {
            body[want] = '\0';
            *method = buf;
            buf[strcspn(buf, " ")] = '\0';
            return body;
        }
        if (len >= cap - 1)
            return NULL;
    }
}

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *port_file = NULL, *fail_file = NULL, *slow_file = NULL;
    const char *hang_file = NULL, *log_file = NULL;
    int hung[256];
    int n_hung = 0;
    int port = 0, delay_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
        else if (strcmp(argv[i], "--fail-file") == 0)
            fail_file = argv[i + 1];
        else if (strcmp(argv[i], "--slow-file") == 0)
            slow_file = argv[i + 1];
        else if (strcmp(argv[i], "--delay-ms") == 0)
            delay_ms = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--hang-file") == 0)
            hang_file = argv[i + 1];
        else if (strcmp(argv[i], "--log") == 0)
            log_file = argv[i + 1];
    }
    if (!out) {
        fprintf(stderr, "usage: emu-smsgw --out FILE [--port N] [--port-file FILE]"
                        " [--fail-file FILE] [--delay-ms N [--slow-file FILE]]\n");
        return 2;
    }
    struct sigaction sa = { .sa_handler = on_stop };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct seen seen = { 0 };
    load_seen(&seen, out);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 64) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("emu-smsgw: listen");
        return 1;
    }
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            perror("emu-smsgw: port file");
            return 1;
        }
    }
    static char buf[MAX_REQUEST];
    while (!stopping) {
        struct stat st;
        if (n_hung > 0 && !(hang_file && stat(hang_file, &st) == 0)) {
            for (int i = 0; i < n_hung; i++)
                close(hung[i]);
            n_hung = 0;
        }
        struct pollfd p = { .fd = ls, .events = POLLIN };
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        char *method = NULL;
        char *body = read_request(fd, buf, sizeof(buf), &method);
        char id[MAX_ID];
        if (log_file && body && extract_id(body, id)) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            FILE *lf = fopen(log_file, "a");
            if (lf) {
                fprintf(lf, "%lld %s\n", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, id);
                fclose(lf);
            }
        }
        if (hang_file && stat(hang_file, &st) == 0 && n_hung < 256) {
            hung[n_hung++] = fd; /* read, never answered */
            continue;
        }
        if (delay_ms > 0 && (!slow_file || stat(slow_file, &st) == 0))
            usleep((useconds_t)delay_ms * 1000);
        if (!body) {
            answer(fd, 400, "Bad Request", "{\"error\":\"bad request\"}");
        } else if (fail_file && stat(fail_file, &st) == 0) {
            answer(fd, 503, "Service Unavailable", "{\"error\":\"outage\"}");
        } else if (strcmp(method, "POST") != 0 || !extract_id(body, id) || strchr(body, '\n')) {
            answer(fd, 400, "Bad Request", "{\"error\":\"a JSON body with an id is required\"}");
        } else if (seen_has(&seen, id)) {
            answer(fd, 200, "OK", "{\"duplicate\":true}");
        } else {
            FILE *f = fopen(out, "a");
            bool ok = f && fprintf(f, "%s\n", body) >= 0;
            if (f && fclose(f) != 0)
                ok = false;
            if (ok && seen_add(&seen, id) == 0)
                answer(fd, 200, "OK", "{\"accepted\":true}");
            else
                answer(fd, 500, "Internal Server Error", "{\"error\":\"cannot record\"}");
        }
        close(fd);
    }
    close(ls);
    free(seen.ids);
    return 0;
}
