/*
 * usb.c - the printer as a USB device under umockdev: a sysfs entry and a
 * /dev/bus/usb node, and a handler for the usbdevfs ioctls libusb issues.
 *
 * The handler runs on umockdev's worker thread and never waits: bulk OUT
 * URBs complete at once (their bytes go to the command interpreter), bulk
 * IN URBs complete when an answer is ready, and REAPURBNDELAY answers
 * EAGAIN at once when nothing is complete.
 *
 * One exception keeps a printing cycle from costing CPU: the device node
 * is a plain file, so libusb spins on REAPURBNDELAY while it waits for an
 * answer.  When the host waits for an answer the printer has not finished
 * (a print cycle, the reader taking the card), the reap is not answered
 * at once but completed REAP_HOLD_MS later from a timer on the worker's
 * main context; the handler itself returns at once, other clients go on,
 * and the host loses at most that much latency.
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <umockdev.h>

#include "emu.h"

#define REAP_HOLD_MS 5

struct emu_urb {
    UMockdevIoctlClient *client; /* reference */
    UMockdevIoctlData *urb;      /* the client's struct usbdevfs_urb */
    UMockdevIoctlData *buffer;   /* its data buffer */
    gulong client_addr;
};

/* Device, one configuration, one printer-class interface with a bulk OUT
 * (0x01) and a bulk IN (0x82) endpoint. */
/* clang-format off */
static const char descriptors_hex[] =
    "12010002000000404" "90F000A0001010203" "01"
    "0902200001010080" "32"
    "090400000207010200"
    "0705010200020" "0"
    "0705820200020" "0";
/* clang-format on */

static void urb_free(struct emu_urb *u)
{
    if (!u)
        return;
    if (u->buffer)
        umockdev_ioctl_data_unref(u->buffer);
    if (u->urb)
        umockdev_ioctl_data_unref(u->urb);
    if (u->client)
        g_object_unref(u->client);
    g_free(u);
}

static struct usbdevfs_urb *urb_struct(struct emu_urb *u)
{
    return (struct usbdevfs_urb *)u->urb->data;
}

/* Gives waiting IN URBs the answers that are ready, oldest first. */
static void serve_in(struct emu *emu)
{
    gint64 now = g_get_monotonic_time();

    while (!g_queue_is_empty(&emu->submitted_in) && !g_queue_is_empty(&emu->replies)) {
        struct emu_reply *r = g_queue_peek_head(&emu->replies);
        struct emu_urb *u;
        struct usbdevfs_urb *urb;
        size_t n;

        if (!r->ready || now < r->ready_at)
            return;
        if (r->stale) {
            g_free(g_queue_pop_head(&emu->replies));
            continue;
        }
        u = g_queue_pop_head(&emu->submitted_in);
        urb = urb_struct(u);
        n = MIN(r->len - r->sent, (size_t)urb->buffer_length);
        memcpy(u->buffer->data, r->text + r->sent, n);
        r->sent += n;
        urb->actual_length = (int)n;
        urb->status = 0;
        g_queue_push_tail(&emu->completed, u);
        if (r->sent == r->len)
            g_free(g_queue_pop_head(&emu->replies));
    }
}

/* URBs of a client that went away are dropped, so they cannot take the
 * answers meant for the next one. */
static void drop_vanished(GQueue *q)
{
    for (GList *l = q->head; l;) {
        GList *next = l->next;
        struct emu_urb *u = l->data;

        if (!umockdev_ioctl_client_get_connected(u->client)) {
            g_queue_delete_link(q, l);
            urb_free(u);
        }
        l = next;
    }
}

static int submit_urb(struct emu *emu, UMockdevIoctlClient *client)
{
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    struct emu_urb *u = g_new0(struct emu_urb, 1);
    struct usbdevfs_urb *urb;
    GError *err = NULL;

    u->client = g_object_ref(client);
    u->urb = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), &err);
    if (!u->urb)
        goto out_fault;
    u->client_addr = u->urb->client_addr;
    urb = urb_struct(u);
    if (urb->type != USBDEVFS_URB_TYPE_BULK || urb->buffer_length < 0 ||
        ((urb->endpoint & 0x7f) != 1 && (urb->endpoint & 0x7f) != 2)) {
        urb_free(u);
        return -EINVAL;
    }
    if (urb->buffer_length > 0) {
        u->buffer = umockdev_ioctl_data_resolve(u->urb, offsetof(struct usbdevfs_urb, buffer),
                                                (gsize)urb->buffer_length, &err);
        if (!u->buffer)
            goto out_fault;
    }
    urb = urb_struct(u);
    if (urb->endpoint & 0x80) {
        g_queue_push_tail(&emu->submitted_in, u);
        serve_in(emu);
        return 0;
    }
    if (urb->buffer_length > 0)
        emu_printer_feed(emu, u->buffer->data, (size_t)urb->buffer_length);
    urb->actual_length = urb->buffer_length;
    urb->status = 0;
    g_queue_push_tail(&emu->completed, u);
    serve_in(emu);
    return 0;

out_fault:
    if (err) {
        emu_log(emu, "cannot read URB: %s", err->message);
        g_error_free(err);
    }
    urb_free(u);
    return -EFAULT;
}

static int reap_urb(struct emu *emu, UMockdevIoctlClient *client)
{
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    UMockdevIoctlData *slot = NULL;
    struct emu_urb *u = NULL;
    GError *err = NULL;

    serve_in(emu);
    for (GList *l = emu->completed.head; l; l = l->next) {
        struct emu_urb *c = l->data;

        if (c->client == client) {
            u = c;
            g_queue_delete_link(&emu->completed, l);
            break;
        }
    }
    if (!u)
        return -EAGAIN;
    slot = umockdev_ioctl_data_resolve(arg, 0, sizeof(void *), &err);
    if (!slot) {
        if (err)
            g_error_free(err);
        urb_free(u);
        return -EFAULT;
    }
    umockdev_ioctl_data_set_ptr(slot, 0, u->urb);
    umockdev_ioctl_data_unref(slot);
    urb_free(u);
    return 0;
}

/* True when this client waits for an answer on bulk IN. */
static bool waits_for_answer(struct emu *emu, UMockdevIoctlClient *client)
{
    for (GList *l = emu->submitted_in.head; l; l = l->next)
        if (((struct emu_urb *)l->data)->client == client)
            return true;
    return false;
}

struct held_reap {
    struct emu *emu;
    UMockdevIoctlClient *client; /* reference */
    unsigned int generation;     /* of the plug-in it was made on */
};

static void complete(UMockdevIoctlClient *client, int rc)
{
    if (rc)
        umockdev_ioctl_client_complete(client, -1, -rc);
    else
        umockdev_ioctl_client_complete(client, 0, 0);
}

static gboolean release_reap(gpointer data)
{
    struct held_reap *h = data;
    int rc;

    pthread_mutex_lock(&h->emu->lock);
    rc = h->emu->unplugged || h->generation != h->emu->generation ? -ENODEV
                                                                  : reap_urb(h->emu, h->client);
    pthread_mutex_unlock(&h->emu->lock);
    if (umockdev_ioctl_client_get_connected(h->client))
        complete(h->client, rc);
    g_object_unref(h->client);
    g_free(h);
    return G_SOURCE_REMOVE;
}

static void hold_reap(struct emu *emu, UMockdevIoctlClient *client)
{
    struct held_reap *h = g_new0(struct held_reap, 1);
    GMainContext *ctx = g_main_context_ref_thread_default();
    GSource *timer = g_timeout_source_new(REAP_HOLD_MS);

    h->emu = emu;
    h->client = g_object_ref(client);
    h->generation = emu->generation;
    g_source_set_callback(timer, release_reap, h, NULL);
    g_source_attach(timer, ctx);
    g_source_unref(timer);
    g_main_context_unref(ctx);
}

static int discard_urb(struct emu *emu, UMockdevIoctlClient *client)
{
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    gulong addr = *(gulong *)arg->data;

    for (GList *l = emu->submitted_in.head; l; l = l->next) {
        struct emu_urb *u = l->data;

        if (u->client == client && u->client_addr == addr) {
            g_queue_delete_link(&emu->submitted_in, l);
            urb_struct(u)->status = -ENOENT;
            urb_struct(u)->actual_length = 0;
            g_queue_push_tail(&emu->completed, u);
            return 0;
        }
    }
    return -EINVAL;
}

static int simple_arg(UMockdevIoctlClient *client, gsize size, UMockdevIoctlData **out)
{
    GError *err = NULL;

    *out = umockdev_ioctl_data_resolve(umockdev_ioctl_client_get_arg(client), 0, size, &err);
    if (!*out) {
        if (err)
            g_error_free(err);
        return -EFAULT;
    }
    return 0;
}

#define CLAIM_IDLE_US (3 * G_USEC_PER_SEC)

/* Interface 0 belongs to one open file at a time, as with the kernel: a
 * second process (or a second handle) gets EBUSY until it is released or
 * its holder goes away. */
static int claim(struct emu *emu, UMockdevIoctlClient *client, bool take)
{
    /* The kernel releases a claim when its holder's file closes. umockdev
	 * does not always tell us when a host process dies (kill -9), so a
	 * holder silent for CLAIM_IDLE_US while another host asks is taken for
	 * gone. A live host polls its printer far more often than that. */
    gint64 now = g_get_monotonic_time();
    if (emu->claimed_by &&
        (!umockdev_ioctl_client_get_connected(emu->claimed_by) ||
         (emu->claimed_by != client && now - emu->claim_used_at > CLAIM_IDLE_US))) {
        g_object_unref(emu->claimed_by);
        emu->claimed_by = NULL;
    }
    if (!take) {
        if (emu->claimed_by != client)
            return -EINVAL;
        g_object_unref(emu->claimed_by);
        emu->claimed_by = NULL;
        return 0;
    }
    if (emu->claimed_by && emu->claimed_by != client)
        return -EBUSY;
    if (!emu->claimed_by) {
        emu->claimed_by = g_object_ref(client);
        emu_printer_host_changed(emu);
    }
    emu->claim_used_at = now;
    return 0;
}

/* A host process that dies leaves its claim behind unless it is released
 * here, as the kernel releases it when the process's file is closed. */
static void client_vanished(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer data)
{
    struct emu *emu = data;

    (void)base;
    pthread_mutex_lock(&emu->lock);
    if (emu->claimed_by == (void *)client) {
        g_object_unref(emu->claimed_by);
        emu->claimed_by = NULL;
    }
    pthread_mutex_unlock(&emu->lock);
}

static gboolean handle_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer data)
{
    struct emu *emu = data;
    gulong request = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData *arg = NULL;
    int rc = 0;

    pthread_mutex_lock(&emu->lock);
    if (emu->claimed_by == (void *)client)
        emu->claim_used_at = g_get_monotonic_time();
    drop_vanished(&emu->submitted_in);
    drop_vanished(&emu->completed);
    if (emu->unplugged ||
        GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(base), "generation")) != emu->generation) {
        rc = -ENODEV;
        goto out;
    }
    switch (request) {
    case USBDEVFS_GET_CAPABILITIES:
        rc = simple_arg(client, sizeof(guint32), &arg);
        if (!rc)
            *(guint32 *)arg->data =
                USBDEVFS_CAP_BULK_CONTINUATION | USBDEVFS_CAP_NO_PACKET_SIZE_LIM;
        break;
    case USBDEVFS_CLAIMINTERFACE:
    case USBDEVFS_RELEASEINTERFACE:
        rc = simple_arg(client, sizeof(unsigned int), &arg);
        if (!rc && *(unsigned int *)arg->data != 0)
            rc = -EINVAL;
        if (!rc)
            rc = claim(emu, client, request == USBDEVFS_CLAIMINTERFACE);
        break;
    case USBDEVFS_SUBMITURB:
        /* The kernel claims the interface for a file that did not. */
        rc = claim(emu, client, true);
        if (!rc)
            rc = submit_urb(emu, client);
        break;
    case USBDEVFS_REAPURBNDELAY:
        rc = reap_urb(emu, client);
        if (rc == -EAGAIN && waits_for_answer(emu, client)) {
            hold_reap(emu, client);
            pthread_mutex_unlock(&emu->lock);
            return TRUE;
        }
        break;
    case USBDEVFS_DISCARDURB:
        rc = discard_urb(emu, client);
        break;
    default:
        emu_log(emu, "ioctl 0x%lx not handled", request);
        rc = -ENOTTY;
        break;
    }
out:
    pthread_mutex_unlock(&emu->lock);
    if (arg)
        umockdev_ioctl_data_unref(arg);
    complete(client, rc);
    return TRUE;
}

/* Adds the device to the testbed and attaches a new handler to its node.
 * Each plug-in is a new generation: a handle opened before an unplug stays
 * dead after the printer comes back, as a usbfs file would. */
static int plug_in(struct emu *emu)
{
    UMockdevTestbed *tb = emu->testbed;
    UMockdevIoctlBase *handler = NULL;
    GError *err = NULL;
    char *desc = g_ascii_strup(descriptors_hex, -1);
    char *spec = NULL;
    int rc = 0;

    spec = g_strdup_printf("P: %s\n"
                           "N: bus/usb/001/%03u=%s\n"
                           "E: DEVNAME=%s\n"
                           "E: DEVTYPE=usb_device\n"
                           "E: SUBSYSTEM=usb\n"
                           "E: DRIVER=usb\n"
                           "E: BUSNUM=001\n"
                           "E: DEVNUM=%03u\n"
                           "E: PRODUCT=f49/a00/100\n"
                           "A: busnum=1\n"
                           "A: devnum=%u\n"
                           "A: speed=480\n"
                           "A: idVendor=0f49\n"
                           "A: idProduct=0a00\n"
                           "A: bcdDevice=0100\n"
                           "A: bConfigurationValue=1\n"
                           "A: bNumConfigurations=1\n"
                           "A: bNumInterfaces= 1\n"
                           "A: manufacturer=Evolis\n"
                           "A: product=Primacy\n"
                           "A: serial=%s\n"
                           "H: descriptors=%s\n",
                           emu->syspath + strlen("/sys"), emu->devnum, desc, emu->devnode,
                           emu->devnum, emu->devnum, emu->serial, desc);
    if (!umockdev_testbed_add_from_string(tb, spec, &err)) {
        rc = -EIO;
        goto out_free;
    }
    if (emu->handler)
        umockdev_testbed_detach_ioctl(tb, emu->devnode, NULL);
    handler = umockdev_ioctl_base_new();
    pthread_mutex_lock(&emu->lock);
    emu->generation++;
    pthread_mutex_unlock(&emu->lock);
    g_object_set_data(G_OBJECT(handler), "generation", GUINT_TO_POINTER(emu->generation));
    g_signal_connect(handler, "handle-ioctl", G_CALLBACK(handle_ioctl), emu);
    g_signal_connect(handler, "client-vanished", G_CALLBACK(client_vanished), emu);
    if (!umockdev_testbed_attach_ioctl(tb, emu->devnode, handler, &err)) {
        g_object_unref(handler);
        rc = -EIO;
        goto out_free;
    }
    /* Old handlers may still serve old connections: keep them alive. */
    if (emu->handler)
        g_ptr_array_add(emu->old_handlers, emu->handler);
    emu->handler = handler;

out_free:
    if (err) {
        fprintf(stderr, "emu-printer: umockdev: %s\n", err->message);
        g_error_free(err);
    }
    g_free(desc);
    g_free(spec);
    return rc;
}

/* Station n (from 0) is device 2+n on bus 1, port 1-(n+1). */
int emu_usb_start(struct emu *emu, void *testbed, unsigned int index)
{
    emu->devnum = 2 + index;
    if (emu->devnum > 127)
        return -EINVAL;
    snprintf(emu->devnode, sizeof(emu->devnode), "/dev/bus/usb/001/%03u", emu->devnum);
    emu->syspath = g_strdup_printf("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-%u", index + 1);
    emu->old_handlers = g_ptr_array_new_with_free_func(g_object_unref);
    emu->testbed = testbed;
    return plug_in(emu);
}

/* The cable is pulled: the device leaves sysfs (with a uevent) and every
 * later ioctl on an open handle fails with ENODEV. */
void emu_usb_unplug(struct emu *emu)
{
    pthread_mutex_lock(&emu->lock);
    if (emu->unplugged) {
        pthread_mutex_unlock(&emu->lock);
        return;
    }
    emu->unplugged = true;
    pthread_mutex_unlock(&emu->lock);
    umockdev_testbed_remove_device(emu->testbed, emu->syspath);
}

/* The cable goes back in: the printer is found again (same serial, card
 * path as it was); handles from before stay dead. */
int emu_usb_plug(struct emu *emu)
{
    struct emu_urb *u;
    int rc;

    pthread_mutex_lock(&emu->lock);
    if (!emu->unplugged) {
        pthread_mutex_unlock(&emu->lock);
        return 0;
    }
    while ((u = g_queue_pop_head(&emu->submitted_in)))
        urb_free(u);
    while ((u = g_queue_pop_head(&emu->completed)))
        urb_free(u);
    if (emu->claimed_by)
        g_object_unref(emu->claimed_by);
    emu->claimed_by = NULL;
    pthread_mutex_unlock(&emu->lock);
    rc = plug_in(emu);
    if (!rc) {
        pthread_mutex_lock(&emu->lock);
        emu->unplugged = false;
        pthread_mutex_unlock(&emu->lock);
    }
    return rc;
}

/* Detaches the handler; the testbed itself belongs to the caller.
 * umockdev's worker thread, which is not ours to join, may still run this
 * station's handler (or a held reap) until the process exits: the station is
 * marked unplugged under its lock before anything is freed, so that such a
 * late call answers ENODEV and touches nothing else. */
void emu_usb_stop(struct emu *emu)
{
    struct emu_urb *u;
    bool was_plugged;

    pthread_mutex_lock(&emu->lock);
    was_plugged = !emu->unplugged;
    emu->unplugged = true;
    while ((u = g_queue_pop_head(&emu->submitted_in)))
        urb_free(u);
    while ((u = g_queue_pop_head(&emu->completed)))
        urb_free(u);
    if (emu->claimed_by)
        g_object_unref(emu->claimed_by);
    emu->claimed_by = NULL;
    pthread_mutex_unlock(&emu->lock);
    if (emu->testbed && emu->handler && was_plugged)
        umockdev_testbed_detach_ioctl(emu->testbed, emu->devnode, NULL);
    emu->testbed = NULL;
    if (emu->handler)
        g_object_unref(emu->handler);
    emu->handler = NULL;
    if (emu->old_handlers)
        g_ptr_array_unref(emu->old_handlers);
    emu->old_handlers = NULL;
    g_free(emu->syspath);
    emu->syspath = NULL;
}
