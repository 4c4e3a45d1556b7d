/*
 * emu-printer - an emulated Evolis card printer with its contact chip
 * station, as a USB device under umockdev, in a process of its own.
 *
 *   emu-printer --serial S --hopper DIR --control PATH [--cycle-ms N]
 *               [--card-control PATH] [--first-serial N]
 *               [--transport-key HEX] [--chip-dir DIR] [--verbose]
 *
 * On start it prints one line, "UMOCKDEV_DIR=<dir>", once the device and
 * the control socket are ready.  Run the program under test with
 *   LD_PRELOAD=libumockdev-preload.so.0 UMOCKDEV_DIR=<dir>
 * and it finds the printer on USB bus 001 device 002.  SIGTERM or SIGINT
 * ends the emulator and removes <dir>.
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
		"                   [--transport-key HEX] [--chip-dir DIR] [--verbose]\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "serial", required_argument, NULL, 's' },
		{ "hopper", required_argument, NULL, 'h' },
		{ "control", required_argument, NULL, 'c' },
		{ "cycle-ms", required_argument, NULL, 'y' },
		{ "card-control", required_argument, NULL, 'k' },
		{ "first-serial", required_argument, NULL, 'f' },
		{ "transport-key", required_argument, NULL, 't' },
		{ "chip-dir", required_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 }
	};
	struct emu emu = { .next_serial = 1, .last_result = "OK" };
	GThread *station = NULL;
	sigset_t sigs;
	char *root = NULL;
	int sig;
	int opt;
	int status = 1;

	snprintf(emu.firmware, sizeof(emu.firmware), "EMU-1.0.0");
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 's': snprintf(emu.serial, sizeof(emu.serial), "%s", optarg); break;
		case 'h': emu.hopper = g_strdup(optarg); break;
		case 'c': emu.control_path = g_strdup(optarg); break;
		case 'y': emu.cycle_ms = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'k': emu.card_control = g_strdup(optarg); break;
		case 'f': emu.next_serial = strtoul(optarg, NULL, 10); break;
		case 't': emu.transport_key = g_strdup(optarg); break;
		case 'd': emu.chip_dir = g_strdup(optarg); break;
		case 'v': emu.verbose = true; break;
		default: usage(); return 2;
		}
	}
	if (!emu.serial[0] || !emu.hopper || !emu.control_path) {
		usage();
		return 2;
	}
	if (g_mkdir_with_parents(emu.hopper, 0755) != 0) {
		fprintf(stderr, "emu-printer: cannot create %s: %s\n", emu.hopper, strerror(errno));
		return 1;
	}

	/* Signals are taken synchronously below; block them in every thread. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	g_mutex_init(&emu.lock);
	g_queue_init(&emu.submitted_in);
	g_queue_init(&emu.completed);
	g_queue_init(&emu.replies);
	emu.jobs = g_async_queue_new();

	if (emu_usb_start(&emu))
		goto out_free;
	if (emu_control_start(&emu)) {
		fprintf(stderr, "emu-printer: cannot listen on %s\n", emu.control_path);
		goto out_usb;
	}
	station = g_thread_new("station", emu_station_thread, &emu);
	root = umockdev_testbed_get_root_dir(emu.testbed);
	printf("UMOCKDEV_DIR=%s\n", root);
	fflush(stdout);

	while (sigwait(&sigs, &sig) != 0)
		;
	status = 0;

	emu_control_stop();
	struct emu_job *quit = g_new0(struct emu_job, 1);
	quit->kind = EMU_JOB_QUIT;
	g_async_queue_push(emu.jobs, quit);
	g_thread_join(station);
	unlink(emu.control_path);
out_usb:
	emu_usb_stop(&emu);
out_free:
	emu_printer_free(&emu);
	g_async_queue_unref(emu.jobs);
	g_free(root);
	g_free(emu.hopper);
	g_free(emu.control_path);
	g_free(emu.card_control);
	g_free(emu.chip_dir);
	g_free(emu.transport_key);
	return status;
}
