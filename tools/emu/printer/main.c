/*
 * emu-printer - an emulated Evolis card printer with its contact chip
 * station, as a USB device under umockdev, in a process of its own.
 *
 *   emu-printer --serial S --hopper DIR --control PATH [--cycle-ms N]
 *               [--card-control PATH] [--first-serial N]
 *               [--transport-key HEX] [--chip-dir DIR] [--verbose]
 *
 * Several stations: repeat --serial; the options after each --serial are
 * that station's.  Station n (from 0) is USB bus 001 device 2+n.
 *
 * On start it prints one line, "UMOCKDEV_DIR=<dir>", once every device and
 * control socket is ready.  Run the program under test with
 *   LD_PRELOAD=libumockdev-preload.so.0 UMOCKDEV_DIR=<dir>
 * and it finds the printers on USB.  SIGTERM or SIGINT ends the emulator
 * and removes <dir>.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <umockdev.h>

#include "emu.h"

void emu_log(struct emu *emu, const char *fmt, ...)
{
    va_list ap;

    if (!emu->verbose)
        return;
    va_start(ap, fmt);
    fprintf(stderr, "emu-printer %s: ", emu->serial);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: emu-printer --serial S --hopper DIR --control PATH [--cycle-ms N]\n"
            "                   [--card-control PATH] [--first-serial N]\n"
            "                   [--transport-key HEX] [--chip-dir DIR]\n"
            "                   [--serial S2 --hopper DIR2 --control PATH2 ...] [--verbose]\n"
            "Each --serial starts a station; the options after it are that station's.\n");
}

#define MAX_STATIONS 16

static struct emu *new_station(struct emu *stations, unsigned int *n, const char *serial)
{
    struct emu *emu;

    if (*n == MAX_STATIONS)
        return NULL;
    emu = &stations[(*n)++];
    snprintf(emu->serial, sizeof(emu->serial), "%s", serial);
    snprintf(emu->firmware, sizeof(emu->firmware), "EMU-1.0.0");
    snprintf(emu->last_result, sizeof(emu->last_result), "OK");
    emu->next_serial = 1;
    emu->control_fd = -1;
    pthread_mutex_init(&emu->lock, NULL);
    pthread_mutex_init(&emu->jobs_lock, NULL);
    pthread_cond_init(&emu->jobs_ready, NULL);
    g_queue_init(&emu->jobs);
    g_queue_init(&emu->submitted_in);
    g_queue_init(&emu->completed);
    g_queue_init(&emu->replies);
    return emu;
}

static void free_station(struct emu *emu)
{
    emu_printer_free(emu);
    g_queue_clear_full(&emu->jobs, (GDestroyNotify)emu_job_free);
    pthread_cond_destroy(&emu->jobs_ready);
    pthread_mutex_destroy(&emu->jobs_lock);
    /* emu->lock stays: umockdev's worker thread may still take it to answer
     * a late ioctl with ENODEV until the process exits (usb.c). */
    g_free(emu->hopper);
    g_free(emu->control_path);
    g_free(emu->card_control);
    g_free(emu->chip_dir);
    g_free(emu->transport_key);
}

static void stop_station(struct emu *emu)
{
    emu_control_stop(emu);
    if (emu->station_thread) {
        struct emu_job *quit = g_new0(struct emu_job, 1);

        quit->kind = EMU_JOB_QUIT;
        emu_job_push(emu, quit);
        g_thread_join(emu->station_thread);
        emu->station_thread = NULL;
    }
    emu_usb_stop(emu);
}

static int start_station(struct emu *emu, UMockdevTestbed *tb, unsigned int index)
{
    if (g_mkdir_with_parents(emu->hopper, 0755) != 0) {
        fprintf(stderr, "emu-printer: cannot create %s: %s\n", emu->hopper, strerror(errno));
        return -1;
    }
    emu->card_no = emu_hopper_last_card(emu->hopper);
    if (emu_usb_start(emu, tb, index))
        return -1;
    if (emu_control_start(emu)) {
        fprintf(stderr, "emu-printer: cannot listen on %s\n", emu->control_path);
        return -1;
    }
    emu->station_thread = g_thread_new("station", emu_station_thread, emu);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = { { "serial", required_argument, NULL, 's' },
                                             { "hopper", required_argument, NULL, 'h' },
                                             { "control", required_argument, NULL, 'c' },
                                             { "cycle-ms", required_argument, NULL, 'y' },
                                             { "card-control", required_argument, NULL, 'k' },
                                             { "first-serial", required_argument, NULL, 'f' },
                                             { "transport-key", required_argument, NULL, 't' },
                                             { "chip-dir", required_argument, NULL, 'd' },
                                             { "verbose", no_argument, NULL, 'v' },
                                             { 0 } };
    static struct emu stations[MAX_STATIONS];
    unsigned int n = 0, started = 0;
    struct emu *cur = NULL;
    UMockdevTestbed *tb = NULL;
    bool verbose = false;
    sigset_t sigs;
    char *root = NULL;
    int sig;
    int opt;
    int status = 1;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == 'v') {
            verbose = true;
            continue;
        }
        if (opt == 's') {
            cur = new_station(stations, &n, optarg);
            if (!cur) {
                fprintf(stderr, "emu-printer: at most %d stations\n", MAX_STATIONS);
                return 2;
            }
            continue;
        }
        if (!cur || opt == '?') {
            usage();
            return 2;
        }
        switch (opt) {
        case 'h':
            g_free(cur->hopper);
            cur->hopper = g_strdup(optarg);
            break;
        case 'c':
            g_free(cur->control_path);
            cur->control_path = g_strdup(optarg);
            break;
        case 'y':
            cur->cycle_ms = (unsigned int)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            g_free(cur->card_control);
            cur->card_control = g_strdup(optarg);
            break;
        case 'f':
            cur->next_serial = strtoul(optarg, NULL, 10);
            break;
        case 't':
            g_free(cur->transport_key);
            cur->transport_key = g_strdup(optarg);
            break;
        case 'd':
            g_free(cur->chip_dir);
            cur->chip_dir = g_strdup(optarg);
            break;
        default:
            usage();
            return 2;
        }
    }
    if (n == 0 || optind != argc) {
        usage();
        return 2;
    }
    for (unsigned int i = 0; i < n; i++) {
        stations[i].verbose = verbose;
        if (!stations[i].serial[0] || !stations[i].hopper || !stations[i].control_path) {
            usage();
            return 2;
        }
    }

    /* Signals are taken synchronously below; block them in every thread. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    /* One testbed for every station: a program under test has one
	 * UMOCKDEV_DIR and sees all the printers on it. */
    tb = umockdev_testbed_new();
    for (started = 0; started < n; started++)
        if (start_station(&stations[started], tb, started))
            goto out_stop;
    root = umockdev_testbed_get_root_dir(tb);
    printf("UMOCKDEV_DIR=%s\n", root);
    fflush(stdout);

    while (sigwait(&sigs, &sig) != 0)
        ;
    status = 0;

out_stop:
    /* The one that failed to start may be half started. */
    for (unsigned int i = 0; i < n && i <= started; i++)
        stop_station(&stations[i]);
    g_object_unref(tb);
    for (unsigned int i = 0; i < n; i++)
        free_station(&stations[i]);
    g_free(root);
    return status;
}
