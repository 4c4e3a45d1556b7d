/*
 * evolis.c - driver for Evolis card printers (Primacy, Zenius, Quantum) on
 * USB, after Evolis's public programming guide (A5013).
 *
 * Commands are "ESC cmd;param;... CR" on the bulk OUT endpoint; with error
 * management given to the host (Pem;2) the printer answers each command on
 * the bulk IN endpoint with "ACK" or "NACK;<code>" and each read command
 * with its text, all ended by CR.  Before Pem;2 takes effect a printer may
 * still answer "OK", which counts as ACK.
 *
 * A job: Pr;ymcko Ss Sis (chip encoding by the caller) Sr Db;y Db;m Db;c
 * Db;k Db;o Se, or Ser instead of Se when the card is spoiled.
 */
#include <libusb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "printer.h"

#define EVOLIS_ESC       0x1b
#define EVOLIS_CR        0x0d
#define EVOLIS_REPLY_MAX 256
/* IN transfers are whole high-speed bulk packets, so that a device never
 * sends more than the buffer holds (an overflow would lose the answer). */
#define EVOLIS_PACKET 512
/* After a time-out the late answer may still arrive: it is read and
 * dropped before the next command, waiting this long at most. */
#define EVOLIS_DRAIN_MS 20
/* Telling printers apart means asking each for its serial; a printer that
 * does not answer that within this time is not the one looked for now. */
#define EVOLIS_PROBE_MS 2000

struct evolis {
    libusb_context *usb;
    libusb_device_handle *handle;
    int interface;
    uint8_t ep_out;
    uint8_t ep_in;
    bool claimed;
    bool stale_reply; /* a reply may be pending after a time-out */
    /* Bytes read past the CR of the last answer: the start of the next. */
    uint8_t rx[2 * EVOLIS_PACKET];
    size_t rx_len;
};

static const struct printer_id evolis_ids[] = {
    { .vendor = 0x0f49, .product = 0x0a00, .model = "Evolis Primacy" },
    { .vendor = 0x0f49, .product = 0x0b00, .model = "Evolis Zenius" },
    { .vendor = 0x0f49, .product = 0x0c00, .model = "Evolis Quantum" },
    {}
};

static int usb_errno(int usb_rc)
{
    switch (usb_rc) {
    case LIBUSB_SUCCESS:
        return 0;
    case LIBUSB_ERROR_NO_DEVICE:
        return -ENODEV;
    case LIBUSB_ERROR_NOT_FOUND:
        return -ENODEV;
    case LIBUSB_ERROR_TIMEOUT:
        return -ETIMEDOUT;
    case LIBUSB_ERROR_NO_MEM:
        return -ENOMEM;
    case LIBUSB_ERROR_BUSY:
        return -EBUSY;
    case LIBUSB_ERROR_ACCESS:
        return -EACCES;
    case LIBUSB_ERROR_INVALID_PARAM:
        return -EINVAL;
    case LIBUSB_ERROR_INTERRUPTED:
        return -EINTR;
    default:
        return -EIO;
    }
}

static enum printer_fault nack_fault(char code, bool *known)
{
    *known = true;
    switch (code) {
    case '1':
        return PRINTER_FAULT_COMMAND_ERROR; /* command error */
    case '2':
        return PRINTER_FAULT_COMMAND_ERROR; /* parameter error */
    case 'T':
        return PRINTER_FAULT_CARD_JAM; /* time-out, mechanical */
    case 'C':
        return PRINTER_FAULT_COVER_OPEN;
    case 'F':
        return PRINTER_FAULT_FEEDER_EMPTY;
    case 'R':
        return PRINTER_FAULT_RIBBON_OUT;
    default:
        *known = false;
        return PRINTER_FAULT_COMMAND_ERROR;
    }
}

/* Sends all of buf; a short write is an error for the stream. */
static int send_bytes(struct printer_dev *dev, const uint8_t *buf, size_t len)
{
    struct evolis *ev = dev->priv;

    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int done = 0;
        int rc = libusb_bulk_transfer(ev->handle, ev->ep_out, (unsigned char *)buf, chunk, &done,
                                      dev->timeout_ms);
        if (rc)
            return usb_errno(rc);
        if (done <= 0)
            return -EIO;
        buf += done;
        len -= (size_t)done;
    }
    return 0;
}

/* Takes one answer out of ev->rx if a CR is there; true when it did. */
static bool take_line(struct evolis *ev, char *reply, size_t size, int *rc)
{
    uint8_t *cr = memchr(ev->rx, EVOLIS_CR, ev->rx_len);
    size_t len;

    if (!cr)
        return false;
    len = (size_t)(cr - ev->rx);
    *rc = 0;
    if (len >= size)
        *rc = -EPROTO;
    else {
        memcpy(reply, ev->rx, len);
        reply[len] = '\0';
    }
    ev->rx_len -= len + 1;
    memmove(ev->rx, cr + 1, ev->rx_len);
    return true;
}

/* Reads one CR-terminated answer into reply (NUL-terminated, CR removed);
 * what follows the CR is kept for the next call. */
static int read_reply(struct printer_dev *dev, unsigned int timeout_ms, char *reply, size_t size)
{
    struct evolis *ev = dev->priv;
    int rc = 0;

    while (!take_line(ev, reply, size, &rc)) {
        uint8_t packet[EVOLIS_PACKET];
        int got = 0;

        rc = libusb_bulk_transfer(ev->handle, ev->ep_in, packet, sizeof(packet), &got, timeout_ms);
        if (rc)
            return usb_errno(rc);
        if ((size_t)got > sizeof(ev->rx) - ev->rx_len) {
            ev->rx_len = 0; /* no answer is this long */
            return -EPROTO;
        }
        memcpy(ev->rx + ev->rx_len, packet, (size_t)got);
        ev->rx_len += (size_t)got;
    }
    return rc;
}

/* Drops an answer that arrived after its command had timed out. */
static void drain_stale(struct printer_dev *dev)
{
    struct evolis *ev = dev->priv;
    char junk[EVOLIS_REPLY_MAX];

    if (!ev->stale_reply)
        return;
    while (read_reply(dev, EVOLIS_DRAIN_MS, junk, sizeof(junk)) == 0)
        ;
    ev->rx_len = 0;
    ev->stale_reply = false;
}

/*
 * One exchange: ESC cmd [payload] CR, then one reply.  An "ACK"/"OK" gives
 * 0 with an empty reply; "NACK;<code>" gives PRINTER_E_FAULT with the
 * reason in *fault; anything else is text for the caller (read commands).
 */
static int exchange(struct printer_dev *dev, const char *cmd, const uint8_t *payload,
                    size_t payload_len, char *reply, size_t reply_size, enum printer_fault *fault)
{
    struct evolis *ev = dev->priv;
    char head[64];
    char local[EVOLIS_REPLY_MAX];
    static const uint8_t cr = EVOLIS_CR;
    int n;
    int rc;

    if (!reply) {
        reply = local;
        reply_size = sizeof(local);
    }
    n = snprintf(head, sizeof(head), "%c%s", EVOLIS_ESC, cmd);
    if (n < 0 || (size_t)n >= sizeof(head))
        return -EINVAL;

    drain_stale(dev);
    rc = send_bytes(dev, (const uint8_t *)head, (size_t)n);
    if (!rc && payload_len)
        rc = send_bytes(dev, payload, payload_len);
    if (!rc)
        rc = send_bytes(dev, &cr, 1);
    if (!rc)
        rc = read_reply(dev, dev->timeout_ms, reply, reply_size);
    /* The rest of that answer may still come: drop it before the next. */
    if (rc == -ETIMEDOUT || rc == -EPROTO)
        ev->stale_reply = true;
    if (rc)
        return rc;

    if (strcmp(reply, "ACK") == 0 || strcmp(reply, "OK") == 0) {
        reply[0] = '\0';
        return 0;
    }
    if (strncmp(reply, "NACK", 4) == 0) {
        bool known;
        const char *code = reply + 4;

        if (*code == ';')
            code++;
        if (strlen(code) != 1)
            return -EPROTO;
        *fault = nack_fault(code[0], &known);
        return known ? PRINTER_E_FAULT : -EPROTO;
    }
    return 0;
}

/* A command that must be acknowledged, not answered with text. */
static int command(struct printer_dev *dev, const char *cmd, enum printer_fault *fault)
{
    char reply[EVOLIS_REPLY_MAX];
    int rc = exchange(dev, cmd, NULL, 0, reply, sizeof(reply), fault);

    if (rc)
        return rc;
    return reply[0] ? -EPROTO : 0;
}

/* A read command: its text answer in out (possibly truncated). */
static int read_text(struct printer_dev *dev, const char *cmd, char *out, size_t size)
{
    enum printer_fault fault = PRINTER_FAULT_NONE;
    char reply[EVOLIS_REPLY_MAX];
    int rc = exchange(dev, cmd, NULL, 0, reply, sizeof(reply), &fault);
    size_t len;

    if (rc)
        return rc;
    len = strlen(reply);
    if (len >= size)
        return -EPROTO; /* longer than any answer this read can have */
    memcpy(out, reply, len + 1);
    return 0;
}

/* Finds the bulk IN and OUT endpoints of the first interface that has both. */
static int find_endpoints(libusb_device *udev, struct evolis *ev)
{
    struct libusb_config_descriptor *config = NULL;
    int rc = libusb_get_active_config_descriptor(udev, &config);

    if (rc)
        return usb_errno(rc);
    rc = -ENODEV;
    for (int i = 0; i < config->bNumInterfaces && rc; i++) {
        const struct libusb_interface *itf = &config->interface[i];
        uint8_t in = 0, out = 0;

        if (itf->num_altsetting < 1)
            continue;
        const struct libusb_interface_descriptor *alt = &itf->altsetting[0];
        for (int e = 0; e < alt->bNumEndpoints; e++) {
            const struct libusb_endpoint_descriptor *ep = &alt->endpoint[e];

            if ((ep->bmAttributes & 3) != LIBUSB_TRANSFER_TYPE_BULK)
                continue;
            if (ep->bEndpointAddress & LIBUSB_ENDPOINT_IN)
                in = in ? in : ep->bEndpointAddress;
            else
                out = out ? out : ep->bEndpointAddress;
        }
        if (in && out) {
            ev->interface = alt->bInterfaceNumber;
            ev->ep_in = in;
            ev->ep_out = out;
            rc = 0;
        }
    }
    libusb_free_config_descriptor(config);
    return rc;
}

static void release_device(struct evolis *ev)
{
    if (ev->claimed)
        libusb_release_interface(ev->handle, ev->interface);
    ev->claimed = false;
    if (ev->handle)
        libusb_close(ev->handle);
    ev->handle = NULL;
}

/* Which device answered with which serial, by bus and address, shared by
 * every printer this process opens: a station tries the device known to be
 * its own first and probes one known to be another's only when its own is
 * nowhere else, so a hung or busy printer stalls only its own station. The
 * lock covers this table, never device I/O. */
#define EVOLIS_KNOWN_MAX 64

static struct {
    uint8_t bus, addr;
    char serial[64];
} known[EVOLIS_KNOWN_MAX];
static size_t n_known;
static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;

static void known_set(libusb_device *udev, const char *serial)
{
    uint8_t bus = libusb_get_bus_number(udev), addr = libusb_get_device_address(udev);
    pthread_mutex_lock(&known_lock);
    size_t i = 0;
    while (i < n_known && (known[i].bus != bus || known[i].addr != addr))
        i++;
    if (i == n_known && n_known < EVOLIS_KNOWN_MAX)
        n_known++;
    if (i < n_known) {
        known[i].bus = bus;
        known[i].addr = addr;
        snprintf(known[i].serial, sizeof(known[i].serial), "%s", serial);
    }
    pthread_mutex_unlock(&known_lock);
}

/* 1: the device last answered with this serial, -1: with another, 0: not known. */
static int known_match(libusb_device *udev, const char *serial)
{
    uint8_t bus = libusb_get_bus_number(udev), addr = libusb_get_device_address(udev);
    int m = 0;
    pthread_mutex_lock(&known_lock);
    for (size_t i = 0; i < n_known; i++)
        if (known[i].bus == bus && known[i].addr == addr)
            m = strcmp(known[i].serial, serial) == 0 ? 1 : -1;
    pthread_mutex_unlock(&known_lock);
    return m;
}

/* Opens one candidate and keeps it if it reports the wanted serial. */
static int try_device(struct printer_dev *dev, libusb_device *udev, const char *serial)
{
    struct evolis *ev = dev->priv;
    enum printer_fault fault = PRINTER_FAULT_NONE;
    char got[64];
    int rc;

    rc = find_endpoints(udev, ev);
    if (rc)
        return rc;
    rc = usb_errno(libusb_open(udev, &ev->handle));
    if (rc)
        return rc;
    rc = usb_errno(libusb_claim_interface(ev->handle, ev->interface));
    if (rc)
        goto out_release;
    ev->claimed = true;
    /* Errors go to the host, so every command is ACKed or NACKed. The
     * probe has a short time-out of its own: a hung candidate costs this
     * station a moment, not a print cycle's time-out. */
    unsigned int timeout = dev->timeout_ms;
    if (dev->timeout_ms > EVOLIS_PROBE_MS)
        dev->timeout_ms = EVOLIS_PROBE_MS;
    rc = command(dev, "Pem;2", &fault);
    if (!rc)
        rc = read_text(dev, "Rsn", got, sizeof(got));
    dev->timeout_ms = timeout;
    if (rc)
        goto out_release;
    known_set(udev, got);
    if (strcmp(got, serial) != 0) {
        rc = -ENODEV;
        goto out_release;
    }
    return 0;

out_release:
    release_device(ev);
    return rc;
}

/* One pass over the bus: 0 with the printer open, -ENODEV when it is not
 * there, -EBUSY when it is not found but a candidate was held by another
 * handle (possibly ours, possibly another station probing it). Candidates
 * are tried in three rounds: the device known to be this printer, devices
 * not known yet, then devices known to be others (an address reused). */
static int scan_bus(struct printer_dev *dev, const char *serial)
{
    struct evolis *ev = dev->priv;
    libusb_device **list = NULL;
    bool busy = false;
    ssize_t n;
    int rc = -ENODEV;

    n = libusb_get_device_list(ev->usb, &list);
    if (n < 0)
        return usb_errno((int)n);
    /* Each candidate's round is decided before any is probed. */
    signed char *round = calloc((size_t)n + 1, 1);
    if (!round) {
        libusb_free_device_list(list, 1);
        return -ENOMEM;
    }
    for (ssize_t i = 0; i < n; i++) {
        struct libusb_device_descriptor desc;

        round[i] = 2; /* not a candidate */
        if (libusb_get_device_descriptor(list[i], &desc) == 0 && desc.idVendor == dev->id->vendor &&
            desc.idProduct == dev->id->product)
            round[i] = (signed char)known_match(list[i], serial);
    }
    static const int rounds[] = { 1, 0, -1 };
    for (size_t r = 0; r < sizeof(rounds) / sizeof(rounds[0]) && rc; r++) {
        for (ssize_t i = 0; i < n && rc; i++) {
            if (round[i] != rounds[r])
                continue;
            int one = try_device(dev, list[i], serial);
            if (one == 0)
                rc = 0;
            else if (one == -EBUSY)
                busy = true;
        }
    }
    free(round);
    libusb_free_device_list(list, 1);
    return rc && busy ? -EBUSY : rc;
}

/* Printers are told apart by the serial they report, which takes claiming
 * each candidate: two stations opening at once can each find the other's
 * printer held for a moment, so a busy scan is repeated a few times. */
#define EVOLIS_SCAN_TRIES    5
#define EVOLIS_SCAN_PAUSE_MS 30

static int evolis_open(struct printer_dev *dev, const char *serial)
{
    struct evolis *ev = dev->priv;
    int rc;

    rc = usb_errno(libusb_init(&ev->usb));
    if (rc)
        return rc;
    rc = scan_bus(dev, serial);
    for (int i = 1; rc == -EBUSY && i < EVOLIS_SCAN_TRIES; i++) {
        struct timespec pause = { 0, (long)i * EVOLIS_SCAN_PAUSE_MS * 1000000L };

        nanosleep(&pause, NULL);
        rc = scan_bus(dev, serial);
    }
    if (rc) {
        libusb_exit(ev->usb);
        ev->usb = NULL;
    }
    return rc;
}

static void evolis_close(struct printer_dev *dev)
{
    struct evolis *ev = dev->priv;

    release_device(ev);
    if (ev->usb)
        libusb_exit(ev->usb);
    ev->usb = NULL;
}

/* Sensor answers: see the emulator's and the guide's Rse;<sensor>. */
static int read_sensor(struct printer_dev *dev, const char *sensor, char *out, size_t size)
{
    char cmd[16];

    snprintf(cmd, sizeof(cmd), "Rse;%s", sensor);
    return read_text(dev, cmd, out, size);
}

static int evolis_status(struct printer_dev *dev, struct printer_status *st)
{
    char value[EVOLIS_REPLY_MAX];
    int rc;

    rc = read_text(dev, "Rsn", st->serial, sizeof(st->serial));
    if (!rc)
        rc = read_text(dev, "Rfv", st->firmware, sizeof(st->firmware));
    if (!rc)
        rc = read_text(dev, "Rlr", value, sizeof(value));
    if (rc)
        return rc;
    st->fault = PRINTER_FAULT_NONE;
    if (strcmp(value, "ERR CARD") == 0)
        st->fault = PRINTER_FAULT_CARD_JAM;

    rc = read_sensor(dev, "p", value, sizeof(value));
    if (rc)
        return rc;
    st->card_inside = strcmp(value, "CARD") == 0 || strcmp(value, "JAM") == 0;
    if (strcmp(value, "JAM") == 0)
        st->fault = PRINTER_FAULT_CARD_JAM;

    static const struct {
        const char *sensor;
        const char *bad;
        enum printer_fault fault;
    } checks[] = {
        { "c", "OPEN", PRINTER_FAULT_COVER_OPEN },
        { "r", "OUT", PRINTER_FAULT_RIBBON_OUT },
        { "f", "EMPTY", PRINTER_FAULT_FEEDER_EMPTY },
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        rc = read_sensor(dev, checks[i].sensor, value, sizeof(value));
        if (rc)
            return rc;
        if (strcmp(value, checks[i].bad) == 0 && st->fault == PRINTER_FAULT_NONE)
            st->fault = checks[i].fault;
    }
    return 0;
}

static int evolis_feed_to_chip(struct printer_dev *dev, enum printer_fault *fault)
{
    int rc = command(dev, "Pr;ymcko", fault);

    if (!rc)
        rc = command(dev, "Ss", fault);
    if (!rc)
        rc = command(dev, "Sis", fault);
    return rc;
}

static int evolis_print_front(struct printer_dev *dev, const struct printer_panels *panels,
                              enum printer_fault *fault)
{
    const struct {
        const char *cmd;
        const uint8_t *data;
        size_t len;
    } plan[] = {
        { "Db;y;32;", panels->y, PRINTER_PANEL_COLOR_BYTES },
        { "Db;m;32;", panels->m, PRINTER_PANEL_COLOR_BYTES },
        { "Db;c;32;", panels->c, PRINTER_PANEL_COLOR_BYTES },
        { "Db;k;2;", panels->k, PRINTER_PANEL_MONO_BYTES },
        { "Db;o;2;", panels->o, PRINTER_PANEL_MONO_BYTES },
    };
    char reply[EVOLIS_REPLY_MAX];
    int rc = command(dev, "Sr", fault);

    for (size_t i = 0; !rc && i < sizeof(plan) / sizeof(plan[0]); i++) {
        rc = exchange(dev, plan[i].cmd, plan[i].data, plan[i].len, reply, sizeof(reply), fault);
        if (!rc && reply[0])
            rc = -EPROTO;
    }
    return rc;
}

static int evolis_eject(struct printer_dev *dev, enum printer_fault *fault)
{
    return command(dev, "Se", fault);
}

static int evolis_reject(struct printer_dev *dev, enum printer_fault *fault)
{
    return command(dev, "Ser", fault);
}

static int evolis_reset(struct printer_dev *dev, enum printer_fault *fault)
{
    int rc = command(dev, "Srs", fault);

    if (!rc)
        rc = command(dev, "Scs", fault);
    return rc;
}

const struct printer_ops evolis_printer_ops = {
    .name = "evolis",
    .id_table = evolis_ids,
    .priv_size = sizeof(struct evolis),
    .open = evolis_open,
    .close = evolis_close,
    .status = evolis_status,
    .feed_to_chip = evolis_feed_to_chip,
    .print_front = evolis_print_front,
    .eject = evolis_eject,
    .reject = evolis_reject,
    .reset = evolis_reset,
};
