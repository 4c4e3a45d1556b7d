/* fuzz_printer.c — an Evolis printer's replies as the driver reads them
 * (drivers/evolis.c, compiled in here): the input is what arrives on the
 * bulk IN endpoint, in packets of up to 512 bytes (each a length byte, a
 * multiple of 4, then its bytes). libusb_bulk_transfer is replaced by one
 * that answers from the input: OUT transfers all succeed, IN transfers take
 * the next packet, or time out once the input is spent. Status, feed,
 * print, eject and reset run against these answers. */
#include "../../drivers/evolis.c"

#include "fuzz.h"

static const uint8_t *in_data;
static size_t in_size, in_off;

int libusb_bulk_transfer(libusb_device_handle *h, unsigned char endpoint, unsigned char *buf,
                         int len, int *transferred, unsigned int timeout)
{
    (void)h;
    (void)timeout;
    if (!(endpoint & 0x80)) {
        *transferred = len;
        return 0;
    }
    if (in_off >= in_size) {
        *transferred = 0;
        return LIBUSB_ERROR_TIMEOUT;
    }
    size_t n = (size_t)in_data[in_off++] * 4 % 516;
    if (n > in_size - in_off)
        n = in_size - in_off;
    if (n > (size_t)len)
        return LIBUSB_ERROR_OVERFLOW;
    memcpy(buf, in_data + in_off, n);
    in_off += n;
    *transferred = (int)n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in_data = data;
    in_size = size;
    in_off = 0;
    struct evolis ev = { 0 };
    ev.ep_in = 0x82;
    ev.ep_out = 0x01;
    struct printer_dev dev = { .id = &evolis_ids[0], .timeout_ms = 1, .priv = &ev };
    struct printer_status st;
    enum printer_fault fault = PRINTER_FAULT_NONE;
    memset(&st, 0, sizeof(st));
    if (evolis_status(&dev, &st) == 0) {
        FUZZ_ASSERT(strnlen(st.serial, sizeof(st.serial)) < sizeof(st.serial));
        FUZZ_ASSERT(strnlen(st.firmware, sizeof(st.firmware)) < sizeof(st.firmware));
    }
    (void)evolis_feed_to_chip(&dev, &fault);
    static uint8_t *color, *mono;
    if (!color) {
        color = calloc(1, PRINTER_PANEL_COLOR_BYTES);
        mono = calloc(1, PRINTER_PANEL_MONO_BYTES);
    }
    struct printer_panels panels = { color, color, color, mono, mono };
    (void)evolis_print_front(&dev, &panels, &fault);
    (void)evolis_eject(&dev, &fault);
    (void)evolis_reject(&dev, &fault);
    (void)evolis_reset(&dev, &fault);
    FUZZ_ASSERT(ev.rx_len <= sizeof(ev.rx));
    return 0;
}
