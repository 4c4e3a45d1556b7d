/* emu-platform — a stand-in for the approval platform's callback endpoint,
 * for tests and the demo.
 *
 *   emu-platform --out FILE --secret-file FILE --control DIR
 *                [--port N] [--port-file FILE]
 *
 * A small HTTP/1.1 server on 127.0.0.1, one thread per connection. Each POST
 * is checked against the secret in the secret file (hex, read afresh for
 * every call): X-Signature "t=<unix>,v1=<hex HMAC-SHA256(secret,
 * "<t>.<raw body>")>", within 300 s. Every call is appended to FILE as one
 * JSON line: {"start_ms", "answer_ms", "end_ms", "answer" (0: none was
 * given), "signature": "valid" |
 * "invalid" | "missing", "overlap", "user_agent", "x_signature", "raw"}; raw is
 * the body exactly as received; overlap is true when a call with the same
 * callback_id was still open when this one came.
 *
 * What it answers is steered by files in the control folder, read afresh for
 * every call:
 *   down              the connection is closed without an answer
 *   hang              the answer waits while the file exists (or until the
 *                     caller gives up and closes the connection)
 *   delay_ms          "N": every answer waits N ms
 *   status            "CODE [RETRY_AFTER]": every call gets CODE
 *   status.REQUEST_NO the same for one request's callbacks only (first)
 * Otherwise a well-signed call gets 200 and a badly signed one 401. It links
 * nothing of the product. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
#define MAX_OPEN    256
#define MAX_SKEW_S  300

/* Set by the signal handler, read by every connection's thread: a lock-free
 * atomic is safe in both places (a volatile sig_atomic_t only in the first). */
static atomic_bool stopping;
static const char *out_path, *secret_path, *control_dir;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char open_ids[MAX_OPEN][MAX_ID]; /* callback_ids of calls being answered */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static bool control_exists(const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", control_dir, name);
    return stat(path, &st) == 0;
}

/* The first line of a control file, or false when there is none. */
static bool control_read(const char *name, char *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", control_dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\r\n")] = '\0';
    return ok;
}

/* The string value of a member of a flat JSON object (ours need no escapes). */
static bool json_field(const char *body, const char *name, char out[MAX_ID])
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\"", name);
    const char *p = strstr(body, key);
    if (!p)
        return false;
    p += strlen(key);
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

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "valid", "invalid" or "missing". */
static const char *check_signature(const char *header, const char *body, size_t len)
{
    char secret[256];
    if (!header || !header[0])
        return "missing";
    FILE *f = fopen(secret_path, "r");
    if (!f)
        return "invalid";
    bool have = fgets(secret, sizeof(secret), f) != NULL;
    fclose(f);
    if (!have)
        return "invalid";
    secret[strcspn(secret, "\r\n")] = '\0';
    if (strncmp(header, "t=", 2) != 0)
        return "invalid";
    const char *t = header + 2;
    size_t tlen = strspn(t, "0123456789");
    if (tlen == 0 || tlen > 12 || strncmp(t + tlen, ",v1=", 4) != 0)
        return "invalid";
    const char *hex = t + tlen + 4;
    if (strlen(hex) != 64)
        return "invalid";
    unsigned char given[32], want[32];
    for (int i = 0; i < 32; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return "invalid";
        given[i] = (unsigned char)(hi << 4 | lo);
    }
    size_t msglen = tlen + 1 + len;
    unsigned char *msg = malloc(msglen);
    if (!msg)
        return "invalid";
    memcpy(msg, t, tlen);
    msg[tlen] = '.';
    memcpy(msg + tlen + 1, body, len);
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, msglen, want, &maclen);
    free(msg);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (CRYPTO_memcmp(given, want, 32) != 0)
        return "invalid";
    long ts = strtol(t, NULL, 10);
    long now = (long)time(NULL);
    if (ts < now - MAX_SKEW_S || ts > now + MAX_SKEW_S)
        return "invalid";
    return "valid";
}

/* A JSON string literal of s (len bytes) on f. */
static void put_json_string(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

struct call {
    int fd;
    char buf[MAX_REQUEST];
    char *body;
    size_t body_len;
    char method[8];
    char signature[200];
    char user_agent[128];
};

static void header_value(const char *headers, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *h = strstr(headers, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, name, n) == 0 && h[2 + n] == ':') {
            const char *v = h + 3 + n;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= len)
                vl = len - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return;
        }
    }
}

/* Reads one request. Returns 0 or -1. */
static int read_request(struct call *c)
{
    size_t len = 0, cap = sizeof(c->buf);
    long want = -1;
    char *body = NULL;
    for (;;) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        if (poll(&p, 1, 5000) <= 0)
            return -1;
        ssize_t r = read(c->fd, c->buf + len, cap - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        c->buf[len] = '\0';
        if (!body) {
            char *end = strstr(c->buf, "\r\n\r\n");
            if (!end) {
                if (len >= cap - 1)
                    return -1;
                continue;
            }
            end[2] = '\0'; /* keep the last header's CRLF for header_value */
            body = end + 4;
            char cl[24];
            header_value(c->buf, "Content-Length", cl, sizeof(cl));
            want = cl[0] ? strtol(cl, NULL, 10) : 0;
            if (want < 0 || (size_t)want > cap - 1 - (size_t)(body - c->buf))
                return -1;
            header_value(c->buf, "X-Signature", c->signature, sizeof(c->signature));
            header_value(c->buf, "User-Agent", c->user_agent, sizeof(c->user_agent));
            size_t ml = strcspn(c->buf, " ");
            if (ml >= sizeof(c->method))
                ml = sizeof(c->method) - 1;
            memcpy(c->method, c->buf, ml);
            c->method[ml] = '\0';
        }
        if ((size_t)(c->buf + len - body) >= (size_t)want) {
            body[want] = '\0';
            c->body = body;
            c->body_len = (size_t)want;
            return 0;
        }
        if (len >= cap - 1)
            return -1;
    }
}

static void answer(int fd, int status, long retry_after, const char *body)
{
    char head[300];
    char ra[48] = "";
    if (retry_after > 0)
        snprintf(ra, sizeof(ra), "Retry-After: %ld\r\n", retry_after);
    int n =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d Status\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "%sConnection: close\r\n\r\n",
                 status, strlen(body), ra);
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
        return;
}

/* Waits while the hang file exists; false when the caller went away. */
static bool hang(int fd)
{
    while (control_exists("hang") && !stopping) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, 50);
        if (r > 0) {
            char b[64];
            if (read(fd, b, sizeof(b)) <= 0)
                return false; /* the caller gave up */
        }
    }
    return true;
}

static bool open_add(const char *id)
{
    bool overlap = false;
    int free_slot = -1;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_OPEN; i++) {
        if (open_ids[i][0] && strcmp(open_ids[i], id) == 0)
            overlap = true;
        else if (!open_ids[i][0] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot >= 0)
        snprintf(open_ids[free_slot], MAX_ID, "%s", id);
    pthread_mutex_unlock(&lock);
    return overlap;
}

static void open_remove(const char *id)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_OPEN; i++)
        if (strcmp(open_ids[i], id) == 0) {
            open_ids[i][0] = '\0';
            break;
        }
    pthread_mutex_unlock(&lock);
}

static void *serve(void *arg)
{
    struct call *c = arg;
    long start = now_ms(), answered = 0;
    char id[MAX_ID] = "", request_no[MAX_ID] = "", line[64];
    int status = 0;
    long retry_after = 0;
    bool overlap = false, tracked = false;
    const char *sig = "missing";
    if (control_exists("down"))
        goto done; /* closed without an answer */
    if (read_request(c) != 0) {
        answer(c->fd, 400, 0, "{\"error\":\"bad request\"}");
        goto done;
    }
    json_field(c->body, "callback_id", id);
    json_field(c->body, "request_no", request_no);
    if (id[0]) {
        overlap = open_add(id);
        tracked = true;
    }
    sig = check_signature(c->signature, c->body, c->body_len);
    if (!hang(c->fd))
        goto record; /* status 0: no answer reached the caller */
    if (control_read("delay_ms", line, sizeof(line)))
        usleep((useconds_t)atol(line) * 1000);
    char per[MAX_ID + 16];
    snprintf(per, sizeof(per), "status.%s", request_no);
    if ((request_no[0] && control_read(per, line, sizeof(line))) ||
        control_read("status", line, sizeof(line))) {
        status = atoi(line);
        const char *sp = strchr(line, ' ');
        retry_after = sp ? atol(sp + 1) : 0;
        if (status < 100 || status > 599)
            status = 500;
    } else if (strcmp(c->method, "POST") != 0 || !id[0]) {
        status = 400;
    } else {
        status = strcmp(sig, "valid") == 0 ? 200 : 401;
    }
    answered = now_ms();
    answer(c->fd, status, retry_after,
           status / 100 == 2 ? "{\"accepted\":true}" : "{\"error\":\"refused\"}");
record:
    pthread_mutex_lock(&lock);
    FILE *f = fopen(out_path, "a");
    if (f) {
        fprintf(f,
                "{\"start_ms\":%ld,\"answer_ms\":%ld,\"end_ms\":%ld,\"answer\":%d,"
                "\"signature\":\"%s\",\"overlap\":%s,\"user_agent\":",
                start, answered, now_ms(), status, sig, overlap ? "true" : "false");
        put_json_string(f, c->user_agent, strlen(c->user_agent));
        fputs(",\"x_signature\":", f);
        put_json_string(f, c->signature, strlen(c->signature));
        fputs(",\"raw\":", f);
        put_json_string(f, c->body, c->body_len);
        fputs("}\n", f);
        fclose(f);
    }
    pthread_mutex_unlock(&lock);
    if (tracked)
        open_remove(id);
done:
    close(c->fd);
    free(c);
    return NULL;
}

static void on_stop(int sig)
{
    (void)sig;
    stopping = true;
}

int main(int argc, char **argv)
{
    const char *port_file = NULL;
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--out") == 0)
            out_path = argv[i + 1];
        else if (strcmp(argv[i], "--secret-file") == 0)
            secret_path = argv[i + 1];
        else if (strcmp(argv[i], "--control") == 0)
            control_dir = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
    }
    if (!out_path || !secret_path || !control_dir) {
        fprintf(stderr, "usage: emu-platform --out FILE --secret-file FILE --control DIR"
                        " [--port N] [--port-file FILE]\n");
        return 2;
    }
    struct sigaction sa = { .sa_handler = on_stop };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 128) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("emu-platform: listen");
        return 1;
    }
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            perror("emu-platform: port file");
            return 1;
        }
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (!stopping) {
        struct pollfd p = { .fd = ls, .events = POLLIN };
        if (poll(&p, 1, 200) <= 0)
            continue;
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        struct call *c = calloc(1, sizeof(*c));
        pthread_t th;
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        if (pthread_create(&th, &attr, serve, c) != 0) {
            close(fd);
            free(c);
        }
    }
    pthread_attr_destroy(&attr);
    close(ls);
    return 0;
}
