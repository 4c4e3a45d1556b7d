/*
 * usb_env.h - integration tests against an emulated USB card printer.
 *
 * The emulator (build/emu-printer) is a process of its own that holds a
 * umockdev testbed; the test process reaches it through the real libusb
 * with libumockdev-preload loaded and UMOCKDEV_DIR pointing at the
 * testbed.  usb_env_preload() re-executes the test with the preload when
 * it is missing, so `build/tests/it_printer` runs as is.
 */
#ifndef CARDD_IT_USB_ENV_H
#define CARDD_IT_USB_ENV_H

#include <stddef.h>
#include <sys/types.h>

struct usb_env {
    pid_t pid;     /* the emulator */
    char dir[256]; /* private temp dir: hopper/, control socket */
    char hopper[300];
    char control[300];
    char umockdev_dir[256];
};

/* Makes sure libumockdev-preload is loaded: if LD_PRELOAD does not name
 * it, re-executes argv[0] with it added (does not return then).  Returns
 * 0 when already loaded, -errno when the re-exec failed. */
int usb_env_preload(char **argv);

/* For processes started afterwards: sets LD_PRELOAD to the preload and,
 * under ThreadSanitizer, leaves log_path out of TSAN_OPTIONS (such a process
 * writes its reports to its stderr: usb_env.c says why).
 * usb_env_preload_unexport() removes the preload and restores TSAN_OPTIONS. */
void usb_env_preload_export(void);
void usb_env_preload_unexport(void);

/* Starts an emulated printer with this serial (extra_args: more emulator
 * options, NULL-terminated, may be NULL) and points this process's
 * UMOCKDEV_DIR at it.  Call before the first libusb use.  0 or -errno. */
int usb_env_start(struct usb_env *env, const char *serial, const char *const *extra_args);

/* Sends one control line ("fault jam", "clear", "status") and stores the
 * reply line (without newline) in reply.  0 when it starts with "ok". */
int usb_env_control(const struct usb_env *env, const char *line, char *reply, size_t size);

/* Stops the emulator and removes its temp dir.  NULL-safe, idempotent. */
void usb_env_stop(struct usb_env *env);

#endif
