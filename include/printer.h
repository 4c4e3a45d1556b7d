/*
 * printer.h - card printer drivers and the station core that drives them.
 *
 * One production station is one card printer with a contact chip station.
 * Everything above this header speaks in station terms (feed a card to the
 * chip station, print the front, eject, reject); a driver in drivers/ turns
 * that into one printer family's command language.  Nothing outside
 * drivers/ knows a printer command or includes libusb.h.
 *
 * Errors.  Every action returns 0 or a negative errno:
 *   -ENODEV     the printer is gone (unplugged, powered off).  Sticky: once a
 *               call has returned it, every later call on that printer
 *               returns -ENODEV without touching the device.
 *   -ETIMEDOUT  the printer did not answer in time.  The card's fate is
 *               unknown: flag it for an operator.
 *   PRINTER_E_FAULT (-EREMOTEIO)
 *               the printer answered and refused: a device fault.  Its
 *               reason is stored in *fault when the caller passes one.
 *   -EPROTO     the printer answered something this driver cannot parse.
 *   -EINVAL     bad arguments (checked before anything is sent).
 *   -ENOMEM     out of memory.
 *
 * Threading.  The core serialises every call to one printer with a mutex,
 * so a driver never sees two calls on the same device at once.  Different
 * printers may be driven from different threads.
 */
#ifndef CARDD_PRINTER_H
#define CARDD_PRINTER_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRINTER_E_FAULT (-EREMOTEIO)

/* Why the printer refused a command: the station state the operator sees. */
enum printer_fault {
    PRINTER_FAULT_NONE = 0,
    PRINTER_FAULT_CARD_JAM, /* time-out or mechanical error */
    PRINTER_FAULT_COVER_OPEN,
    PRINTER_FAULT_FEEDER_EMPTY,
    PRINTER_FAULT_RIBBON_OUT,
    PRINTER_FAULT_COMMAND_ERROR, /* command or parameter refused */
};

/* The stable lower-case name of a fault ("card_jam", ...); "unknown" for a
 * value outside the enum.  Never NULL. */
const char *printer_fault_name(enum printer_fault fault);

/* Parses a name given by printer_fault_name().  Returns 0 or -EINVAL. */
int printer_fault_parse(const char *name, enum printer_fault *out);

/* Where the card is after a printer step failed, so that every card taken
 * from the feeder is accounted for. */
enum printer_card_fate {
    PRINTER_CARD_NOT_TAKEN = 0, /* no card left the feeder */
    PRINTER_CARD_REJECT,        /* in the printer: reject it (spoiled)
					 * once the fault is cleared */
    PRINTER_CARD_OPERATOR,      /* unknown (jam, time-out, printer
					 * gone): flag it for an operator */
};

/* The fate of the card after a step that returned rc (negative) with
 * fault; card_taken says whether a card had reached the chip station
 * before that step (printer_feed_to_chip() had succeeded). */
enum printer_card_fate printer_card_fate(int rc, enum printer_fault fault, bool card_taken);

/* "not_taken", "reject", "operator"; "unknown" outside the enum. */
const char *printer_card_fate_name(enum printer_card_fate fate);

/* What a printer reports about itself. */
struct printer_status {
    char serial[32]; /* NUL-terminated */
    char firmware[32];
    bool card_inside;         /* a card is somewhere on the card path */
    enum printer_fault fault; /* PRINTER_FAULT_NONE when ready */
};

/* Size of the front of a CR80 card at 300 dpi, the only size printed. */
#define PRINTER_FACE_WIDTH  1016
#define PRINTER_FACE_HEIGHT 648

/*
 * One side of a card as ribbon panels.  y, m, c hold 5 bits a pixel (32
 * levels, 0 = no dye), k and o 1 bit a pixel (1 = resin / overlay), pixels
 * in rows of PRINTER_FACE_WIDTH from the top-left, packed MSB first.  The
 * lengths are the ones the printer expects (PRINTER_PANEL_*_BYTES); the
 * tail after the last pixel is zero.
 */
#define PRINTER_PANEL_COLOR_BYTES 423120
#define PRINTER_PANEL_MONO_BYTES  84624

struct printer_panels {
    uint8_t *y, *m, *c; /* PRINTER_PANEL_COLOR_BYTES each */
    uint8_t *k, *o;     /* PRINTER_PANEL_MONO_BYTES each */
};

/* One USB model a driver handles.  Tables end with an all-zero entry. */
struct printer_id {
    uint16_t vendor;
    uint16_t product;
    const char *model;
};

/* A printer as the driver sees it: the core owns it and its priv block. */
struct printer_dev {
    const struct printer_id *id; /* the table entry that matched */
    unsigned int timeout_ms;     /* per command; never 0 */
    void *priv;                  /* ops->priv_size bytes, zeroed */
};

/*
 * A driver: one const table per printer family.  Every entry gets the
 * device with the core's lock held.  Faults are reported by returning
 * PRINTER_E_FAULT and storing the reason in *fault (never NULL for
 * drivers: the core always passes a location).
 */
struct printer_ops {
    const char *name;
    const struct printer_id *id_table; /* { }-terminated */
    size_t priv_size;                  /* bytes the core allocates */

    /* Required.  Called once, first.  Finds the printer with this id and
	 * this serial (the serial the printer itself reports), opens it,
	 * takes it for this process and puts it in the state the other ops
	 * expect.  -ENODEV when no such printer is attached, -EBUSY when
	 * it may be attached but another process holds it.  On failure
	 * it has released everything it took; close is not called. */
    int (*open)(struct printer_dev *dev, const char *serial);

    /* Required.  Called last, once, after a successful open, also after
	 * the device is gone.  Releases what open took; cannot fail. */
    void (*close)(struct printer_dev *dev);

    /* Required.  Reads serial, firmware and state.  A fault the printer
	 * is in is reported in st->fault with a return of 0. */
    int (*status)(struct printer_dev *dev, struct printer_status *st);

    /* Required.  Starts a card sequence and brings a card from the feeder
	 * to the contact chip station; on return 0 the chip can be reached
	 * by the station's reader.  On failure see printer_card_fate(). */
    int (*feed_to_chip)(struct printer_dev *dev, enum printer_fault *fault);

    /* Required.  Sends the front panels of the card in the sequence. */
    int (*print_front)(struct printer_dev *dev, const struct printer_panels *panels,
                       enum printer_fault *fault);

    /* Required.  Ends the sequence: prints what was sent and puts the
	 * card in the output hopper. */
    int (*eject)(struct printer_dev *dev, enum printer_fault *fault);

    /* Required.  Ends the sequence by putting the card in the reject
	 * box (spoiled) without printing it. */
    int (*reject)(struct printer_dev *dev, enum printer_fault *fault);

    /* Optional (NULL: the core answers -EOPNOTSUPP).  Resets the
	 * printer and clears its error state after an operator fixed it;
	 * a card left on the path goes to the reject box. */
    int (*reset)(struct printer_dev *dev, enum printer_fault *fault);
};

/* The drivers built in, in the order the core tries them. */
extern const struct printer_ops evolis_printer_ops;

/* ---- The core: what the rest of cardd uses. ---- */

struct printer;

/* Opens the printer with this USB vendor/product id and serial number with
 * the first built-in driver whose id table lists the pair; timeout_ms is
 * the answer time allowed to each command (0: 5000).  On success *out is
 * a printer to release with printer_close().  -ENODEV when no driver
 * handles the id or no such printer is attached. */
int printer_open(uint16_t vendor, uint16_t product, const char *serial, unsigned int timeout_ms,
                 struct printer **out);

/* Same, with an explicit driver (tests, or a station configured so). */
int printer_open_with(const struct printer_ops *ops, uint16_t vendor, uint16_t product,
                      const char *serial, unsigned int timeout_ms, struct printer **out);

/* Closes the printer and frees it.  NULL-safe. */
void printer_close(struct printer *p);

/* True once the printer was found gone; every call then returns -ENODEV. */
bool printer_is_gone(struct printer *p);

/* The actions below serialise on the printer and return what the driver
 * returned (see the top of this file); fault may be NULL. */
int printer_status(struct printer *p, struct printer_status *st);
int printer_feed_to_chip(struct printer *p, enum printer_fault *fault);
int printer_print_front(struct printer *p, const struct printer_panels *panels,
                        enum printer_fault *fault);
int printer_eject(struct printer *p, enum printer_fault *fault);
int printer_reject(struct printer *p, enum printer_fault *fault);
int printer_reset(struct printer *p, enum printer_fault *fault);

#endif
