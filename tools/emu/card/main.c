/*
 * main.c — emu-card: one emulated card slot behind vsmartcard's vpcd.
 *
 *   emu-card --vpcd-port P --control PATH --outdir DIR [--t0]
 *
 * Connects to vpcd (TCP, 2-byte big-endian length + payload) while a card
 * is "in the reader", and takes line commands on a UNIX socket (see
 * README.md for the contract). Single-threaded: one poll() loop serves vpcd
 * and every control client.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "card.h"

#define MAX_CLIENTS 8
#define MAX_CARDS   1024
#define LINE_MAX_   512
#define DEFER_MS    3000 /* how long insert/remove wait for vpcd */

enum fault_kind {
    FAULT_NONE,
    FAULT_STATUS,
    FAULT_REMOVE,
    FAULT_MEMORY_FULL
};

struct client {
    int fd;
    char buf[LINE_MAX_];
    size_t len;
};

struct emu {
    int port;
    const char *control;
    const char *outdir;
    bool t0;
    int listen_fd;
    struct client clients[MAX_CLIENTS];
    int vpcd_fd;
    struct card *cards[MAX_CARDS];
    int ncards;
    struct card *inserted;
    /* A command whose "ok" waits for vpcd: insert (first ATR poll) or
	 * remove (next message, answered empty so that vpcd ejects). */
    int waiter_fd;
    enum {
        WAIT_NONE,
        WAIT_INSERT,
        WAIT_REMOVE
    } waiting;
    long wait_deadline;
    /* When the link last dropped without vpcd seeing an empty ATR first:
	 * pcscd must poll once with no card (every 400 ms) before the next
	 * card connects, or it never notices the change and stays at "no card". */
    long not_before;
    enum fault_kind fault;
    unsigned long fault_n;
    uint16_t fault_sw;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static long now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int fd, const char *fmt, ...)
{
    char line[LINE_MAX_ + 64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (write(fd, line, (size_t)n) != n)
        fprintf(stderr, "emu-card: control reply lost\n");
}

/* vpcd writes the length and the payload separately; without QUICKACK each
 * exchange waits for the delayed ACK (about 40 ms). */
static void quickack(int fd)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r;

        quickack(fd);
        r = read(fd, (uint8_t *)buf + got, len - got);
        if (r == 0)
            return -ECONNRESET;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    return 0;
}

static int send_frame(int fd, const uint8_t *p, size_t len)
{
    uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
    struct iovec iov[2] = { { hdr, 2 }, { (void *)p, len } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
    ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);

    return r == (ssize_t)(2 + len) ? 0 : -EIO;
}

#define AWAY_MS 600

static void vpcd_close(struct emu *e, const char *event, bool seen_absent)
{
    if (!seen_absent)
        e->not_before = now_ms() + AWAY_MS;
    if (e->vpcd_fd >= 0)
        close(e->vpcd_fd);
    e->vpcd_fd = -1;
    if (e->inserted) {
        e->inserted->app_selected = false;
        e->inserted->authenticated = false;
        card_save_status(e->inserted, event);
        fprintf(stderr, "emu-card %s: left the reader (%s)\n", e->inserted->serial, event);
    }
    e->inserted = NULL;
    e->fault = FAULT_NONE;
}

static void finish_wait(struct emu *e, bool ok, const char *why)
{
    if (e->waiting == WAIT_NONE)
        return;
    if (e->waiter_fd >= 0) {
        if (ok)
            reply(e->waiter_fd, "ok");
        else
            reply(e->waiter_fd, "err %s", why);
    }
    e->waiting = WAIT_NONE;
    e->waiter_fd = -1;
}

/* Answers one message from vpcd. Returns 0, or -1 when the link is over. */
static int vpcd_message(struct emu *e)
{
    static uint8_t in[65544 + 16], out[65538 + 16];
    uint8_t hdr[2];
    size_t len, n;
    struct card *c = e->inserted;

    if (read_full(e->vpcd_fd, hdr, 2))
        goto gone;
    len = (size_t)(hdr[0] << 8 | hdr[1]);
    if (len && read_full(e->vpcd_fd, in, len))
        goto gone;
    if (!c)
        goto gone;
    if (len == 1) {
        if (in[0] != 4)
            return 0; /* power off / on / reset: no answer */
        if (e->waiting == WAIT_REMOVE) {
            /* An empty ATR is how vpcd learns the card is gone. */
            send_frame(e->vpcd_fd, NULL, 0);
            vpcd_close(e, "removed", true);
            finish_wait(e, true, NULL);
            return -1;
        }
        n = card_atr(c, out);
        if (send_frame(e->vpcd_fd, out, n))
            goto gone;
        if (e->waiting == WAIT_INSERT)
            finish_wait(e, true, NULL);
        return 0;
    }
    if (len < 1)
        goto gone;
    c->apdus++;
    if (e->waiting == WAIT_REMOVE || (e->fault == FAULT_REMOVE && c->apdus == e->fault_n)) {
        /* Pulled while the command was on its way: no answer at all. */
        send_frame(e->vpcd_fd, NULL, 0);
        fprintf(stderr, "emu-card %s: pulled at APDU %lu\n", c->serial, c->apdus);
        vpcd_close(e, e->waiting == WAIT_REMOVE ? "removed" : "pulled", false);
        finish_wait(e, true, NULL);
        return -1;
    }
    if (e->fault == FAULT_STATUS && c->apdus == e->fault_n) {
        n = 2;
        out[0] = (uint8_t)(e->fault_sw >> 8);
        out[1] = (uint8_t)e->fault_sw;
        c->last_sw = e->fault_sw;
        fprintf(stderr, "emu-card %s: injected %04X at APDU %lu\n", c->serial, e->fault_sw,
                c->apdus);
    } else {
        n = card_apdu(c, in, len, out, sizeof(out) - 16);
    }
    if (send_frame(e->vpcd_fd, out, n))
        goto gone;
    return 0;
gone:
    vpcd_close(e, "link lost", false);
    finish_wait(e, false, "vpcd closed the link");
    return -1;
}

static int vpcd_connect(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int one = 1;
    int fd;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        int r = -errno;

        close(fd);
        return r;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    quickack(fd);
    return fd;
}

static struct card *find_card(struct emu *e, const char *serial)
{
    for (int i = 0; i < e->ncards; i++)
        if (!strcmp(e->cards[i]->serial, serial))
            return e->cards[i];
    return NULL;
}

static int parse_key(const char *hex, uint8_t key[CARD_KEY_LEN])
{
    if (strlen(hex) != 2 * CARD_KEY_LEN)
        return -EINVAL;
    for (int i = 0; i < CARD_KEY_LEN; i++) {
        unsigned v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        key[i] = (uint8_t)v;
    }
    return 0;
}

static void cmd_insert(struct emu *e, int fd, char *args)
{
    char *serial = strtok(args, " "), *keyhex = strtok(NULL, " "), *proto = strtok(NULL, " ");
    uint8_t key[CARD_KEY_LEN];
    struct card *c;
    int r;

    if (!serial || !keyhex || parse_key(keyhex, key) ||
        (proto && strcmp(proto, "t0") && strcmp(proto, "t1"))) {
        reply(fd, "err usage: insert <serial> <transport_key_hex16> [t0|t1]");
        return;
    }
    if (e->inserted) {
        reply(fd, "err a card is already in the reader");
        return;
    }
    c = find_card(e, serial);
    if (!c) {
        /* A serial seen before is the same physical card coming back. */
        if (e->ncards >= MAX_CARDS || !(c = malloc(sizeof(*c)))) {
            reply(fd, "err too many cards");
            return;
        }
        r = card_init(c, serial, key, e->outdir, proto ? !strcmp(proto, "t0") : e->t0);
        if (r) {
            free(c);
            reply(fd, "err bad serial or outdir (%s)", strerror(-r));
            return;
        }
        e->cards[e->ncards++] = c;
    }
    if (e->fault == FAULT_MEMORY_FULL)
        c->capacity = c->used;
    c->apdus = 0;
    c->pending_len = 0;
    if (now_ms() < e->not_before) {
        long ms = e->not_before - now_ms();
        struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };

        /* No other card can be in this slot meanwhile: blocking is fine. */
        nanosleep(&t, NULL);
    }
    r = vpcd_connect(e->port);
    if (r < 0) {
        reply(fd, "err vpcd not reachable on port %d (%s)", e->port, strerror(-r));
        return;
    }
    e->vpcd_fd = r;
    e->inserted = c;
    card_save_status(c, "inserted");
    fprintf(stderr, "emu-card %s: inserted\n", c->serial);
    e->waiting = WAIT_INSERT;
    e->waiter_fd = fd;
    e->wait_deadline = now_ms() + DEFER_MS;
}

static void cmd_fault(struct emu *e, int fd, char *spec)
{
    unsigned long n;
    unsigned swv;
    char tail;

    if (!spec) {
        reply(fd, "err usage: fault status:<n>:<SW>|remove:<n>|memory_full|none");
        return;
    }
    if (!strcmp(spec, "none")) {
        e->fault = FAULT_NONE;
    } else if (!strcmp(spec, "memory_full")) {
        e->fault = FAULT_MEMORY_FULL;
        if (e->inserted)
            e->inserted->capacity = e->inserted->used;
    } else if (sscanf(spec, "status:%lu:%4x%c", &n, &swv, &tail) == 2 && n > 0 &&
               strlen(strrchr(spec, ':') + 1) == 4) {
        e->fault = FAULT_STATUS;
        e->fault_n = n;
        e->fault_sw = (uint16_t)swv;
    } else if (sscanf(spec, "remove:%lu%c", &n, &tail) == 1 && n > 0) {
        e->fault = FAULT_REMOVE;
        e->fault_n = n;
    } else {
        reply(fd, "err unknown fault '%s'", spec);
        return;
    }
    reply(fd, "ok");
}

static void cmd_status(struct emu *e, int fd)
{
    struct card *c = e->inserted;
    static const char *fname[] = { "none", "status", "remove", "memory_full" };

    if (!c) {
        reply(fd, "ok empty fault=%s", fname[e->fault]);
        return;
    }
    reply(fd, "ok present serial=%s state=%s tries=%d apdus=%lu files=%d last_sw=%04X fault=%s",
          c->serial,
          c->locked   ? "locked"
          : c->nfiles ? "written"
                      : "blank",
          c->tries, c->apdus, c->nfiles, c->last_sw, fname[e->fault]);
}

static void control_line(struct emu *e, int fd, char *line)
{
    char *verb = strtok(line, " \t\r");
    char *rest = strtok(NULL, "\r");

    if (!verb) {
        reply(fd, "err empty command");
        return;
    }
    if (e->waiting != WAIT_NONE) {
        reply(fd, "err busy");
        return;
    }
    if (!strcmp(verb, "insert")) {
        cmd_insert(e, fd, rest ? rest : (char[]){ 0 });
    } else if (!strcmp(verb, "remove")) {
        if (!e->inserted) {
            reply(fd, "ok");
            return;
        }
        e->waiting = WAIT_REMOVE;
        e->waiter_fd = fd;
        e->wait_deadline = now_ms() + DEFER_MS;
    } else if (!strcmp(verb, "fault")) {
        cmd_fault(e, fd, rest ? strtok(rest, " ") : NULL);
    } else if (!strcmp(verb, "status")) {
        cmd_status(e, fd);
    } else {
        reply(fd, "err unknown command '%s'", verb);
    }
}

static void client_drop(struct emu *e, struct client *cl)
{
    if (e->waiter_fd == cl->fd)
        e->waiter_fd = -1;
    close(cl->fd);
    cl->fd = -1;
    cl->len = 0;
}

static void client_read(struct emu *e, struct client *cl)
{
    ssize_t r = read(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len);
    char *nl;

    if (r <= 0) {
        client_drop(e, cl);
        return;
    }
    cl->len += (size_t)r;
    cl->buf[cl->len] = 0;
    while ((nl = memchr(cl->buf, '\n', cl->len))) {
        size_t used = (size_t)(nl - cl->buf) + 1;

        *nl = 0;
        control_line(e, cl->fd, cl->buf);
        memmove(cl->buf, cl->buf + used, cl->len - used);
        cl->len -= used;
    }
    if (cl->len == sizeof(cl->buf) - 1) {
        reply(cl->fd, "err line too long");
        client_drop(e, cl);
    }
}

static int control_listen(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 8)) {
        int r = -errno;

        close(fd);
        return r;
    }
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: emu-card --vpcd-port P --control PATH --outdir DIR [--t0]\n");
}

int main(int argc, char **argv)
{
    static struct emu e;
    struct sigaction sa = { .sa_handler = on_signal };

    e.vpcd_fd = -1;
    e.waiter_fd = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vpcd-port") && i + 1 < argc)
            e.port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--control") && i + 1 < argc)
            e.control = argv[++i];
        else if (!strcmp(argv[i], "--outdir") && i + 1 < argc)
            e.outdir = argv[++i];
        else if (!strcmp(argv[i], "--t0"))
            e.t0 = true;
        else {
            usage();
            return 2;
        }
    }
    if (e.port <= 0 || e.port > 65535 || !e.control || !e.outdir) {
        usage();
        return 2;
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        e.clients[i].fd = -1;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    e.listen_fd = control_listen(e.control);
    if (e.listen_fd < 0) {
        fprintf(stderr, "emu-card: cannot listen on %s: %s\n", e.control, strerror(-e.listen_fd));
        return 1;
    }
    fprintf(stderr, "emu-card: vpcd port %d, control %s, outdir %s%s\n", e.port, e.control,
            e.outdir, e.t0 ? ", T=0" : "");

    while (!stop) {
        struct pollfd p[2 + MAX_CLIENTS];
        int np = 0, vi = -1, timeout = 1000;

        p[np++] = (struct pollfd){ .fd = e.listen_fd, .events = POLLIN };
        if (e.vpcd_fd >= 0) {
            vi = np;
            p[np++] = (struct pollfd){ .fd = e.vpcd_fd, .events = POLLIN };
        }
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (e.clients[i].fd >= 0)
                p[np++] = (struct pollfd){ .fd = e.clients[i].fd, .events = POLLIN };
        if (e.waiting != WAIT_NONE) {
            long left = e.wait_deadline - now_ms();

            timeout = left < 0 ? 0 : (int)left;
        }
        if (poll(p, (nfds_t)np, timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (e.waiting != WAIT_NONE && now_ms() >= e.wait_deadline) {
            if (e.waiting == WAIT_REMOVE) {
                /* vpcd never asked: take the card away regardless. */
                vpcd_close(&e, "removed", false);
                finish_wait(&e, true, NULL);
            } else {
                vpcd_close(&e, "insert timed out", false);
                finish_wait(&e, false, "vpcd did not poll the card");
            }
        }
        if (vi >= 0 && (p[vi].revents & (POLLIN | POLLHUP | POLLERR)) && e.vpcd_fd >= 0)
            vpcd_message(&e);
        if (p[0].revents & POLLIN) {
            int fd = accept4(e.listen_fd, NULL, NULL, SOCK_CLOEXEC);

            for (int i = 0; fd >= 0 && i < MAX_CLIENTS; i++) {
                if (e.clients[i].fd < 0) {
                    e.clients[i].fd = fd;
                    fd = -1;
                }
            }
            if (fd >= 0) {
                reply(fd, "err too many control clients");
                close(fd);
            }
        }
        for (int k = (vi >= 0 ? 2 : 1); k < np; k++) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            for (int i = 0; i < MAX_CLIENTS; i++)
                if (e.clients[i].fd == p[k].fd)
                    client_read(&e, &e.clients[i]);
        }
    }
    if (e.inserted)
        vpcd_close(&e, "emulator stopped", false);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (e.clients[i].fd >= 0)
            close(e.clients[i].fd);
    close(e.listen_fd);
    unlink(e.control);
    for (int i = 0; i < e.ncards; i++) {
        card_free(e.cards[i]);
        free(e.cards[i]);
    }
    return 0;
}
