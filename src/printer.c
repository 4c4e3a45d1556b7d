/*
 * printer.c - the station core over the card printer drivers: picks the
 * driver by USB id, owns each device's private state, serialises calls
 * and makes "device gone" sticky.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "printer.h"

#define PRINTER_DEFAULT_TIMEOUT_MS 5000

struct printer {
    const struct printer_ops *ops;
    struct printer_dev dev;
    pthread_mutex_t lock;
    bool gone;
};

static const struct printer_ops *const builtin_drivers[] = {
    &evolis_printer_ops,
    NULL,
};

static const char *const fault_names[] = {
    [PRINTER_FAULT_NONE] = "none",
    [PRINTER_FAULT_CARD_JAM] = "card_jam",
    [PRINTER_FAULT_COVER_OPEN] = "cover_open",
    [PRINTER_FAULT_FEEDER_EMPTY] = "feeder_empty",
    [PRINTER_FAULT_RIBBON_OUT] = "ribbon_out",
    [PRINTER_FAULT_COMMAND_ERROR] = "command_error",
};

const char *printer_fault_name(enum printer_fault fault)
{
    if ((size_t)fault >= sizeof(fault_names) / sizeof(fault_names[0]))
        return "unknown";
    return fault_names[fault];
}

int printer_fault_parse(const char *name, enum printer_fault *out)
{
    if (!name || !out)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++) {
        if (strcmp(name, fault_names[i]) == 0) {
            *out = (enum printer_fault)i;
            return 0;
        }
    }
    return -EINVAL;
}

enum printer_card_fate printer_card_fate(int rc, enum printer_fault fault, bool card_taken)
{
    switch (rc) {
    case PRINTER_E_FAULT:
        /* A jam means a card is stuck somewhere on the path, even
		 * when it jammed on its way out of the feeder. */
        if (fault == PRINTER_FAULT_CARD_JAM)
            return PRINTER_CARD_OPERATOR;
        return card_taken ? PRINTER_CARD_REJECT : PRINTER_CARD_NOT_TAKEN;
    case -EINVAL:
    case -EOPNOTSUPP:
        /* Refused before anything reached the printer. */
        return card_taken ? PRINTER_CARD_REJECT : PRINTER_CARD_NOT_TAKEN;
    default:
        /* Time-out, printer gone, garbled answer: the printer may
		 * or may not have moved the card. */
        return PRINTER_CARD_OPERATOR;
    }
}

const char *printer_card_fate_name(enum printer_card_fate fate)
{
    switch (fate) {
    case PRINTER_CARD_NOT_TAKEN:
        return "not_taken";
    case PRINTER_CARD_REJECT:
        return "reject";
    case PRINTER_CARD_OPERATOR:
        return "operator";
    }
    return "unknown";
}

static const struct printer_id *match_id(const struct printer_ops *ops, uint16_t vendor,
                                         uint16_t product)
{
    for (const struct printer_id *id = ops->id_table; id && id->vendor; id++)
        if (id->vendor == vendor && id->product == product)
            return id;
    return NULL;
}

int printer_open_with(const struct printer_ops *ops, uint16_t vendor, uint16_t product,
                      const char *serial, unsigned int timeout_ms, struct printer **out)
{
    const struct printer_id *id = NULL;
    struct printer *p = NULL;
    int rc;

    if (!ops || !serial || !out)
        return -EINVAL;
    *out = NULL;
    id = match_id(ops, vendor, product);
    if (!id)
        return -ENODEV;

    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->ops = ops;
    p->dev.id = id;
    p->dev.timeout_ms = timeout_ms ? timeout_ms : PRINTER_DEFAULT_TIMEOUT_MS;
    if (ops->priv_size) {
        p->dev.priv = calloc(1, ops->priv_size);
        if (!p->dev.priv) {
            rc = -ENOMEM;
            goto out_free_printer;
        }
    }
    rc = pthread_mutex_init(&p->lock, NULL);
    if (rc) {
        rc = -rc;
        goto out_free_priv;
    }
    rc = ops->open(&p->dev, serial);
    if (rc)
        goto out_destroy_lock;
    *out = p;
    return 0;

out_destroy_lock:
    pthread_mutex_destroy(&p->lock);
out_free_priv:
    free(p->dev.priv);
out_free_printer:
    free(p);
    return rc;
}

int printer_open(uint16_t vendor, uint16_t product, const char *serial, unsigned int timeout_ms,
                 struct printer **out)
{
    int rc = -ENODEV;

    for (size_t i = 0; builtin_drivers[i]; i++) {
        if (!match_id(builtin_drivers[i], vendor, product))
            continue;
        rc = printer_open_with(builtin_drivers[i], vendor, product, serial, timeout_ms, out);
        if (rc != -ENODEV)
            return rc;
    }
    return rc;
}

void printer_close(struct printer *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->ops->close(&p->dev);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&p->lock);
    free(p->dev.priv);
    free(p);
}

bool printer_is_gone(struct printer *p)
{
    bool gone;

    if (!p)
        return true;
    pthread_mutex_lock(&p->lock);
    gone = p->gone;
    pthread_mutex_unlock(&p->lock);
    return gone;
}

/* Takes the lock, refuses a gone device, records a newly gone one. */
static int begin(struct printer *p, enum printer_fault *fault)
{
    if (fault)
        *fault = PRINTER_FAULT_NONE;
    pthread_mutex_lock(&p->lock);
    if (p->gone) {
        pthread_mutex_unlock(&p->lock);
        return -ENODEV;
    }
    return 0;
}

static int end(struct printer *p, int rc)
{
    if (rc == -ENODEV)
        p->gone = true;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int printer_status(struct printer *p, struct printer_status *st)
{
    int rc;

    if (!p || !st)
        return -EINVAL;
    memset(st, 0, sizeof(*st));
    rc = begin(p, NULL);
    if (rc)
        return rc;
    return end(p, p->ops->status(&p->dev, st));
}

/* The actions that may fail with a device fault share one shape. */
typedef int (*fault_op)(struct printer_dev *dev, enum printer_fault *fault);

static int run_fault_op(struct printer *p, fault_op op, enum printer_fault *fault)
{
    enum printer_fault local = PRINTER_FAULT_NONE;
    int rc;

    if (!p)
        return -EINVAL;
    rc = begin(p, fault);
    if (rc)
        return rc;
    if (!op)
        return end(p, -EOPNOTSUPP);
    rc = op(&p->dev, &local);
    if (fault)
        *fault = rc == PRINTER_E_FAULT ? local : PRINTER_FAULT_NONE;
    return end(p, rc);
}

int printer_feed_to_chip(struct printer *p, enum printer_fault *fault)
{
    return run_fault_op(p, p ? p->ops->feed_to_chip : NULL, fault);
}

int printer_eject(struct printer *p, enum printer_fault *fault)
{
    return run_fault_op(p, p ? p->ops->eject : NULL, fault);
}

int printer_reject(struct printer *p, enum printer_fault *fault)
{
    return run_fault_op(p, p ? p->ops->reject : NULL, fault);
}

int printer_reset(struct printer *p, enum printer_fault *fault)
{
    return run_fault_op(p, p ? p->ops->reset : NULL, fault);
}

int printer_print_front(struct printer *p, const struct printer_panels *panels,
                        enum printer_fault *fault)
{
    enum printer_fault local = PRINTER_FAULT_NONE;
    int rc;

    if (!p || !panels || !panels->y || !panels->m || !panels->c || !panels->k || !panels->o)
        return -EINVAL;
    rc = begin(p, fault);
    if (rc)
        return rc;
    rc = p->ops->print_front(&p->dev, panels, &local);
    if (fault)
        *fault = rc == PRINTER_E_FAULT ? local : PRINTER_FAULT_NONE;
    return end(p, rc);
}
