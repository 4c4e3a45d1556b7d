/* face_check.c — see face_check.h. */
#include "face_check.h"

#include <cairo.h>
#include <stdint.h>

size_t face_png_mismatches(const char *png, const struct face_image *img)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(png);
    size_t bad = 0;
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS ||
        cairo_image_surface_get_width(s) != PRINTER_FACE_WIDTH ||
        cairo_image_surface_get_height(s) != PRINTER_FACE_HEIGHT) {
        cairo_surface_destroy(s);
        return (size_t)-1;
    }
    const uint8_t *px = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < PRINTER_FACE_HEIGHT; y++) {
        const uint32_t *row = (const uint32_t *)(px + (size_t)y * (size_t)stride);
        for (int x = 0; x < PRINTER_FACE_WIDTH; x++) {
            uint32_t a = face_image_pixel(img, x, y), b = row[x];
            for (int sh = 0; sh < 24; sh += 8) {
                int d = (int)((a >> sh) & 0xff) - (int)((b >> sh) & 0xff);
                if (d > 12 || d < -12) {
                    bad++;
                    break;
                }
            }
        }
    }
    cairo_surface_destroy(s);
    return bad;
}
