/*
 * station.c - the slow half of the station, on its own thread: tells the
 * chip reader's card emulator that a card arrived or left, and writes the
 * output hopper (the face rebuilt from the panels received, one PNG a
 * card; rejected cards under reject/).
 */
#include <cairo.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "emu.h"

void emu_job_free(struct emu_job *job)
{
    if (!job)
        return;
    for (int i = 0; i < EMU_PANELS; i++)
        g_free(job->panel[i]);
    g_free(job);
}

void emu_job_push(struct emu *emu, struct emu_job *job)
{
    pthread_mutex_lock(&emu->jobs_lock);
    g_queue_push_tail(&emu->jobs, job);
    pthread_cond_signal(&emu->jobs_ready);
    pthread_mutex_unlock(&emu->jobs_lock);
}

static struct emu_job *job_pop(struct emu *emu)
{
    struct emu_job *job;

    pthread_mutex_lock(&emu->jobs_lock);
    while (!(job = g_queue_pop_head(&emu->jobs)))
        pthread_cond_wait(&emu->jobs_ready, &emu->jobs_lock);
    pthread_mutex_unlock(&emu->jobs_lock);
    return job;
}

/* Pixel n of a panel packed MSB first with `bits` bits a pixel. */
static unsigned int unpack(const uint8_t *panel, unsigned int bits, size_t n)
{
    size_t bit = n * bits;
    unsigned int v = 0;

    for (unsigned int i = 0; i < bits; i++, bit++)
        v = (v << 1) | ((panel[bit >> 3] >> (7 - (bit & 7))) & 1u);
    return v;
}

int emu_write_face_png(uint8_t *const panel[EMU_PANELS], const char *path)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, EMU_WIDTH, EMU_HEIGHT);
    int stride = cairo_image_surface_get_stride(s);
    uint8_t *px;
    int rc = 0;

    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return -ENOMEM;
    }
    cairo_surface_flush(s);
    px = cairo_image_surface_get_data(s);
    for (int y = 0; y < EMU_HEIGHT; y++) {
        uint32_t *row = (uint32_t *)(px + (size_t)y * (size_t)stride);

        for (int x = 0; x < EMU_WIDTH; x++) {
            size_t n = (size_t)y * EMU_WIDTH + (size_t)x;
            /* Dye is the complement of the light: C takes red,
			 * M green, Y blue; resin is black on top. */
            unsigned int c = panel[2] ? unpack(panel[2], 5, n) : 0;
            unsigned int m = panel[1] ? unpack(panel[1], 5, n) : 0;
            unsigned int yl = panel[0] ? unpack(panel[0], 5, n) : 0;
            unsigned int r = 255 - c * 255 / 31;
            unsigned int g = 255 - m * 255 / 31;
            unsigned int b = 255 - yl * 255 / 31;

            if (panel[3] && unpack(panel[3], 1, n))
                r = g = b = 0;
            row[x] = (r << 16) | (g << 8) | b;
        }
    }
    cairo_surface_mark_dirty(s);
    if (cairo_surface_write_to_png(s, path) != CAIRO_STATUS_SUCCESS)
        rc = -EIO;
    cairo_surface_destroy(s);
    return rc;
}

/* One line command to the card emulator's control socket, one line back. */
static int card_control(struct emu *emu, const char *line)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char reply[256];
    ssize_t n;
    size_t len = strlen(line);
    int fd;
    int rc = 0;

    if (!emu->card_control)
        return 0;
    if (strlen(emu->card_control) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, emu->card_control);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
        rc = -errno;
        goto out_close;
    }
    n = read(fd, reply, sizeof(reply) - 1);
    if (n <= 0) {
        rc = -EPIPE;
        goto out_close;
    }
    reply[n] = '\0';
    if (strncmp(reply, "ok", 2) != 0) {
        emu_log(emu, "card emulator refused \"%s\": %s", line, reply);
        rc = -EIO;
    }
out_close:
    close(fd);
    return rc;
}

/* Copies the chip's files (the card emulator's record of what was written)
 * next to the face. */
static void copy_chip_files(struct emu *emu, const struct emu_job *job, const char *dest)
{
    char *src = NULL;
    GDir *dir = NULL;
    const char *name;

    if (!emu->chip_dir)
        return;
    src = g_build_filename(emu->chip_dir, job->card_serial, NULL);
    dir = g_dir_open(src, 0, NULL);
    if (!dir)
        goto out_free_src;
    if (g_mkdir_with_parents(dest, 0755) != 0)
        goto out_close_dir;
    while ((name = g_dir_read_name(dir))) {
        char *from = g_build_filename(src, name, NULL);
        char *to = g_build_filename(dest, name, NULL);
        gchar *content = NULL;
        gsize len = 0;

        if (g_file_get_contents(from, &content, &len, NULL))
            g_file_set_contents(to, content, (gssize)len, NULL);
        g_free(content);
        g_free(from);
        g_free(to);
    }
out_close_dir:
    g_dir_close(dir);
out_free_src:
    g_free(src);
}

static bool has_panels(const struct emu_job *job)
{
    for (int i = 0; i < EMU_PANELS; i++)
        if (job->panel[i])
            return true;
    return false;
}

static void finish_card(struct emu *emu, struct emu_job *job)
{
    bool reject = job->kind == EMU_JOB_REJECT;
    char *dir = reject ? g_build_filename(emu->hopper, "reject", NULL) : g_strdup(emu->hopper);
    char name[64];
    char *path = NULL;

    g_mkdir_with_parents(dir, 0755);
    if (has_panels(job)) {
        snprintf(name, sizeof(name), "%u-front.png", job->card_no);
        path = g_build_filename(dir, name, NULL);
        if (emu_write_face_png(job->panel, path))
            emu_log(emu, "cannot write %s", path);
        g_free(path);
    }
    if (reject) {
        char *text = g_strdup_printf("card %u serial %s reason %s\n", job->card_no,
                                     job->card_serial, job->reason);

        snprintf(name, sizeof(name), "%u.txt", job->card_no);
        path = g_build_filename(dir, name, NULL);
        g_file_set_contents(path, text, -1, NULL);
        g_free(path);
        g_free(text);
    }
    /* The card leaves the reader first, so that the card emulator's
	 * record is final when it is copied. */
    if (card_control(emu, "remove"))
        emu_log(emu, "card %u: reader not told of removal", job->card_no);
    snprintf(name, sizeof(name), "%u-chip", job->card_no);
    path = g_build_filename(dir, name, NULL);
    copy_chip_files(emu, job, path);
    g_free(path);
    g_free(dir);
    emu_log(emu, "card %u %s", job->card_no, reject ? "rejected" : "printed");
}

static unsigned int last_in(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    unsigned int last = 0;

    if (!d)
        return 0;
    while ((name = g_dir_read_name(d))) {
        char *end = NULL;
        unsigned long n = strtoul(name, &end, 10);

        if (end != name && (*end == '-' || *end == '.') && n > last && n < G_MAXUINT)
            last = (unsigned int)n;
    }
    g_dir_close(d);
    return last;
}

unsigned int emu_hopper_last_card(const char *hopper)
{
    char *reject = g_build_filename(hopper, "reject", NULL);
    unsigned int a = last_in(hopper), b = last_in(reject);

    g_free(reject);
    return MAX(a, b);
}

gpointer emu_station_thread(gpointer data)
{
    struct emu *emu = data;

    for (;;) {
        struct emu_job *job = job_pop(emu);

        if (job->kind == EMU_JOB_QUIT) {
            emu_job_free(job);
            return NULL;
        }
        if (job->kind == EMU_JOB_INSERT) {
            char line[128];

            snprintf(line, sizeof(line), "insert %s %s", job->card_serial,
                     emu->transport_key ? emu->transport_key : "0000000000000000");
            if (card_control(emu, line))
                emu_log(emu, "card %u: reader not told of insertion", job->card_no);
        } else {
            finish_card(emu, job);
        }
        pthread_mutex_lock(&emu->lock);
        if (job->reply)
            job->reply->ready = true;
        pthread_mutex_unlock(&emu->lock);
        emu_job_free(job);
    }
}
