/*
 * emu.h - the emulated Evolis card printer with its contact chip station.
 *
 * This program implements the printer side of the command language on its
 * own; it shares no code with cardd's driver, so a framing or protocol
 * mistake in one does not hide in the other.
 *
 * Threads: umockdev's worker thread runs the USB ioctl handler (usb.c) and
 * the command interpreter (printer.c) under emu->lock; the control thread
 * (control.c) takes operator/test commands; the station thread (station.c)
 * does the slow work (PNG, chip reader notification) so the ioctl handler
 * never blocks.
 */
#ifndef EMU_PRINTER_H
#define EMU_PRINTER_H

#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EMU_WIDTH  1016
#define EMU_HEIGHT 648
#define EMU_PANELS 5 /* y m c k o */

enum emu_fault_bit {
    EMU_RIBBON_OUT = 1 << 0,
    EMU_FEEDER_EMPTY = 1 << 1,
    EMU_COVER_OPEN = 1 << 2,
    EMU_JAM = 1 << 3,
    EMU_HANG = 1 << 4, /* swallow commands: the host times out */
};

/* One answer waiting for a bulk IN transfer. */
struct emu_reply {
    char text[80]; /* ends with CR */
    size_t len, sent;
    bool ready;      /* set when the station finished its work */
    bool stale;      /* meant for a host that went away: never sent */
    gint64 ready_at; /* monotonic us; cycle time */
};

/* Work handed to the station thread. */
enum emu_job_kind {
    EMU_JOB_INSERT,
    EMU_JOB_EJECT,
    EMU_JOB_REJECT,
    EMU_JOB_QUIT
};

struct emu_job {
    enum emu_job_kind kind;
    unsigned int card_no;
    char card_serial[32];
    uint8_t *panel[EMU_PANELS]; /* owned; NULL when not received */
    char reason[32];
    struct emu_reply *reply; /* made ready when done (may be NULL) */
};

/* The locks are POSIX ones, not GLib's: GLib's are built on futexes that
 * ThreadSanitizer cannot see, and the test suite runs this emulator under it. */
struct emu {
    pthread_mutex_t lock;
    /* configuration */
    char serial[32];
    char firmware[32];
    char *hopper;
    char *control_path;
    char *card_control;
    char *chip_dir;
    char *transport_key;
    unsigned int cycle_ms;
    unsigned long next_serial;
    bool verbose;

    /* umockdev */
    void *testbed;           /* UMockdevTestbed *, shared by all stations */
    void *handler;           /* UMockdevIoctlBase * of the current plug-in */
    GPtrArray *old_handlers; /* of earlier plug-ins, kept until exit */
    unsigned int generation; /* plug-ins so far */
    unsigned int devnum;
    char devnode[32];
    void *claimed_by;     /* UMockdevIoctlClient * holding interface 0 (ref) */
    gint64 claim_used_at; /* monotonic us of the holder's last ioctl */
    char *syspath;
    bool unplugged;

    /* threads */
    int control_fd;
    GThread *control_thread;
    GThread *station_thread;

    /* USB transfer state (usb.c) */
    GQueue submitted_in; /* of struct emu_urb *, waiting for data */
    GQueue completed;    /* of struct emu_urb *, to reap */
    GQueue replies;      /* of struct emu_reply * */

    /* printer state (printer.c) */
    unsigned int faults;
    char nack_once;      /* answer the next action with this code */
    char reply_once[64]; /* answer the next command with this text */
    bool host_errors;    /* Pem;2 */
    bool in_sequence;
    gint64 cycle_started; /* monotonic us of the last feed (Sis) */
    bool card_inside;
    bool card_jammed;
    unsigned int card_no; /* cards taken from the feeder so far */
    char card_serial[32];
    uint8_t *panel[EMU_PANELS];
    char last_result[16]; /* for Rlr */

    /* command parser */
    uint8_t line[128];
    size_t line_len;
    enum {
        PARSE_IDLE,
        PARSE_COMMAND,
        PARSE_DATA,
        PARSE_DATA_END
    } parse;
    int data_panel;
    uint8_t *data_buf;
    size_t data_len, data_got;

    /* Work for the station thread, first in first out (of struct emu_job *).
     * Taken after lock when both are held. */
    pthread_mutex_t jobs_lock;
    pthread_cond_t jobs_ready;
    GQueue jobs;
};

/* printer.c: a new host took the printer (the last one may have died
 * mid-command): forgets half-received commands and answers meant for the
 * old host. Called with lock held. */
void emu_printer_host_changed(struct emu *emu);
/* printer.c: bytes the host sent on bulk OUT; called with lock held. */
void emu_printer_feed(struct emu *emu, const uint8_t *data, size_t len);
/* printer.c: frees card state and parser buffers. */
void emu_printer_free(struct emu *emu);
size_t emu_panel_bytes(int panel);

/* usb.c */
int emu_usb_start(struct emu *emu, void *testbed, unsigned int index);
void emu_usb_unplug(struct emu *emu);
int emu_usb_plug(struct emu *emu);
void emu_usb_stop(struct emu *emu);

/* station.c */
gpointer emu_station_thread(gpointer data);
void emu_job_free(struct emu_job *job);
/* station.c: hands a job to the station thread. */
void emu_job_push(struct emu *emu, struct emu_job *job);
/* The highest card number already in a hopper (0: empty), so that a
 * restarted emulator does not overwrite earlier cards. */
unsigned int emu_hopper_last_card(const char *hopper);
int emu_write_face_png(uint8_t *const panel[EMU_PANELS], const char *path);

/* control.c */
int emu_control_start(struct emu *emu);
void emu_control_stop(struct emu *emu);

void emu_log(struct emu *emu, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#endif
