/*
 * control.c - the operator/test control channel: a UNIX socket taking one
 * command a line, answering "ok ..." or "err <text>" a line.
 *   fault ribbon_out|feeder_empty|cover_open|jam|hang|unplug
 *   fault nack <1|2|T|C|F|R>   the next action command answers that NACK
 *   fault reply <text>         the next command answers <text>, undone
 *   clear                      every fault off (not unplug)
 *   plug                       the printer is connected again after unplug
 *   cycle <ms>                 printing cycle from now on (as --cycle-ms)
 *   status                     ok serial=S cards=N card=inside|none faults=...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "emu.h"

static const struct {
    const char *name;
    unsigned int bit;
} fault_table[] = {
    { "ribbon_out", EMU_RIBBON_OUT }, { "feeder_empty", EMU_FEEDER_EMPTY },
    { "cover_open", EMU_COVER_OPEN }, { "jam", EMU_JAM },
    { "card_jam", EMU_JAM },          { "hang", EMU_HANG },
};

static void run(struct emu *emu, char *line, char *out, size_t size)
{
    char *argv[4] = { 0 };
    int argc = 0;

    for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t && argc < 4;
         t = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = t;
    if (argc == 0) {
        snprintf(out, size, "err empty command");
        return;
    }
    if (strcmp(argv[0], "status") == 0) {
        GString *f = g_string_new(NULL);

        pthread_mutex_lock(&emu->lock);
        for (size_t i = 0; i < G_N_ELEMENTS(fault_table); i++)
            if ((emu->faults & fault_table[i].bit) && strcmp(fault_table[i].name, "card_jam"))
                g_string_append_printf(f, "%s%s", f->len ? "," : "", fault_table[i].name);
        if (emu->unplugged)
            g_string_append_printf(f, "%sunplug", f->len ? "," : "");
        snprintf(out, size, "ok serial=%s cards=%u card=%s faults=%s", emu->serial, emu->card_no,
                 emu->card_inside ? "inside" : "none", f->len ? f->str : "none");
        pthread_mutex_unlock(&emu->lock);
        g_string_free(f, TRUE);
        return;
    }
    if (strcmp(argv[0], "clear") == 0 && argc == 1) {
        pthread_mutex_lock(&emu->lock);
        emu->faults = 0;
        emu->nack_once = 0;
        pthread_mutex_unlock(&emu->lock);
        snprintf(out, size, "ok");
        return;
    }
    if (strcmp(argv[0], "plug") == 0 && argc == 1) {
        if (emu_usb_plug(emu))
            snprintf(out, size, "err cannot add the device again");
        else
            snprintf(out, size, "ok");
        return;
    }
    if (strcmp(argv[0], "cycle") == 0 && argc == 2) {
        char *end = NULL;
        unsigned long ms = strtoul(argv[1], &end, 10);

        if (!end || *end || ms > 600000) {
            snprintf(out, size, "err cycle takes 0..600000 ms");
            return;
        }
        pthread_mutex_lock(&emu->lock);
        emu->cycle_ms = (unsigned int)ms;
        pthread_mutex_unlock(&emu->lock);
        snprintf(out, size, "ok");
        return;
    }
    if (strcmp(argv[0], "fault") != 0 || argc < 2) {
        snprintf(out, size, "err unknown command");
        return;
    }
    if (strcmp(argv[1], "unplug") == 0) {
        emu_usb_unplug(emu);
        snprintf(out, size, "ok");
        return;
    }
    if (strcmp(argv[1], "reply") == 0) {
        if (argc != 3 || strlen(argv[2]) >= sizeof(emu->reply_once)) {
            snprintf(out, size, "err reply takes one word");
            return;
        }
        pthread_mutex_lock(&emu->lock);
        snprintf(emu->reply_once, sizeof(emu->reply_once), "%s", argv[2]);
        pthread_mutex_unlock(&emu->lock);
        snprintf(out, size, "ok");
        return;
    }
    if (strcmp(argv[1], "nack") == 0) {
        if (argc != 3 || strlen(argv[2]) != 1 || !strchr("12TCFR", argv[2][0])) {
            snprintf(out, size, "err nack takes one of 1 2 T C F R");
            return;
        }
        pthread_mutex_lock(&emu->lock);
        emu->nack_once = argv[2][0];
        pthread_mutex_unlock(&emu->lock);
        snprintf(out, size, "ok");
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(fault_table); i++) {
        if (strcmp(argv[1], fault_table[i].name) == 0) {
            pthread_mutex_lock(&emu->lock);
            emu->faults |= fault_table[i].bit;
            pthread_mutex_unlock(&emu->lock);
            snprintf(out, size, "ok");
            return;
        }
    }
    snprintf(out, size, "err unknown fault %s", argv[1]);
}

/* Serves one connection until it closes; commands are short lines. */
static void serve(struct emu *emu, int fd)
{
    char buf[512];
    size_t used = 0;

    for (;;) {
        ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);
        char *nl;

        if (n <= 0)
            return;
        used += (size_t)n;
        buf[used] = '\0';
        while ((nl = memchr(buf, '\n', used))) {
            char out[256];
            size_t line_len = (size_t)(nl - buf);

            *nl = '\0';
            run(emu, buf, out, sizeof(out) - 1);
            strcat(out, "\n");
            if (write(fd, out, strlen(out)) < 0)
                return;
            memmove(buf, nl + 1, used - line_len - 1);
            used -= line_len + 1;
        }
        if (used == sizeof(buf) - 1) {
            const char *e = "err line too long\n";

            if (write(fd, e, strlen(e)) < 0)
                return;
            used = 0;
        }
    }
}

/* The control thread's own copy of the listening socket: emu_control_stop
 * clears emu->control_fd without waiting for the thread (a client may still
 * hold a connection open). */
struct control_args {
    struct emu *emu;
    int listen_fd;
};

static gpointer control_thread(gpointer data)
{
    struct control_args args = *(struct control_args *)data;
    struct emu *emu = args.emu;
    int listen_fd = args.listen_fd;

    g_free(data);
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL; /* listening socket shut down */
        }
        serve(emu, fd);
        close(fd);
    }
}

int emu_control_start(struct emu *emu)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(emu->control_path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, emu->control_path);
    unlink(emu->control_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
        int rc = -errno;

        close(fd);
        return rc;
    }
    struct control_args *args = g_new0(struct control_args, 1);

    args->emu = emu;
    args->listen_fd = fd;
    emu->control_fd = fd;
    emu->control_thread = g_thread_new("control", control_thread, args);
    return 0;
}

void emu_control_stop(struct emu *emu)
{
    if (emu->control_fd >= 0)
        shutdown(emu->control_fd, SHUT_RDWR);
    /* A client may still hold a connection open: do not wait for it. */
    if (emu->control_thread)
        g_thread_unref(emu->control_thread);
    emu->control_thread = NULL;
    if (emu->control_fd >= 0)
        close(emu->control_fd);
    emu->control_fd = -1;
    unlink(emu->control_path);
}
