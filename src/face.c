/*
 * face.c - card face rendering with Pango (HarfBuzz shaping, bidi) on
 * Cairo, and conversion to printer ribbon panels.
 *
 * Two layers are drawn: colour (background, titles, labels, photo) and
 * resin (the holder's data and rules, printed black by the K panel, which
 * is sharper and more durable than dye).  Text is drawn as one Pango
 * layout per string so that Arabic is shaped and reordered as a whole.
 */
#include <cairo.h>
#include <errno.h>
#include <pango/pangocairo.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "face.h"

#define W PRINTER_FACE_WIDTH
#define H PRINTER_FACE_HEIGHT

#define FONT_ARABIC "Noto Naskh Arabic"
#define FONT_LATIN  "DejaVu Sans"
#define FONT_DIGITS "DejaVu Sans Mono"

/* ISO 7816-2 contact area on an ID-1 card, at 300 dpi, with a margin:
 * no overlay (and nothing printed) over the chip. */
#define CHIP_X 105
#define CHIP_Y 205
#define CHIP_W 170
#define CHIP_H 150

#define FIELD_MAX 256 /* bytes; longer input is refused, not clipped */

enum align {
    ALIGN_LEFT,
    ALIGN_RIGHT,
    ALIGN_CENTER
};

struct colour {
    double r, g, b;
};

static const struct colour green = { 0.0, 0.38, 0.22 };
static const struct colour pale = { 0.91, 0.96, 0.93 };
static const struct colour white = { 1, 1, 1 };
static const struct colour label = { 0.15, 0.42, 0.30 };

int face_image_new(struct face_image **out)
{
    struct face_image *img = NULL;
    size_t n = (size_t)W * H;

    if (!out)
        return -EINVAL;
    *out = NULL;
    img = calloc(1, sizeof(*img));
    if (!img)
        return -ENOMEM;
    img->width = W;
    img->height = H;
    img->rgb = malloc(n * sizeof(*img->rgb));
    img->resin = calloc(n, 1);
    img->no_overlay = calloc(n, 1);
    if (!img->rgb || !img->resin || !img->no_overlay) {
        face_image_free(img);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        img->rgb[i] = 0xffffff;
    *out = img;
    return 0;
}

void face_image_free(struct face_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    free(img->resin);
    free(img->no_overlay);
    free(img);
}

uint32_t face_image_pixel(const struct face_image *img, int x, int y)
{
    size_t i = (size_t)y * (size_t)img->width + (size_t)x;

    return img->resin[i] ? 0x000000 : img->rgb[i];
}

/* One string as one Pango layout; x is the left, right or centre edge.
 * A string wider than max_w (when not 0) is set smaller until it fits:
 * long names shrink rather than run into the photo. */
static void draw_text_fit(cairo_t *cr, const struct colour *c, const char *family,
                          PangoWeight weight, double px, double max_w, const char *text, double x,
                          double y, enum align align)
{
    PangoLayout *layout = pango_cairo_create_layout(cr);
    PangoFontDescription *font = pango_font_description_new();
    cairo_font_options_t *opts = cairo_font_options_create();
    int w = 0, h = 0;
    double left = x;

    /* No hinting: the same glyph outlines whatever the size, so a
	 * reference rendering stays valid. */
    cairo_font_options_set_hint_style(opts, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(opts, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_antialias(opts, CAIRO_ANTIALIAS_GRAY);
    pango_cairo_context_set_font_options(pango_layout_get_context(layout), opts);
    pango_layout_context_changed(layout);

    pango_font_description_set_family(font, family);
    pango_font_description_set_weight(font, weight);
    pango_font_description_set_absolute_size(font, px * PANGO_SCALE);
    pango_layout_set_font_description(layout, font);
    pango_layout_set_text(layout, text, -1);
    pango_layout_get_pixel_size(layout, &w, &h);
    if (max_w > 0 && w > max_w) {
        pango_font_description_set_absolute_size(font, px * max_w / w * PANGO_SCALE);
        pango_layout_set_font_description(layout, font);
        pango_layout_get_pixel_size(layout, &w, &h);
    }
    if (align == ALIGN_RIGHT)
        left = x - w;
    else if (align == ALIGN_CENTER)
        left = x - w / 2.0;
    cairo_set_source_rgb(cr, c->r, c->g, c->b);
    cairo_move_to(cr, left, y);
    pango_cairo_show_layout(cr, layout);

    cairo_font_options_destroy(opts);
    pango_font_description_free(font);
    g_object_unref(layout);
}

static void draw_text(cairo_t *cr, const struct colour *c, const char *family, PangoWeight weight,
                      double px, const char *text, double x, double y, enum align align)
{
    draw_text_fit(cr, c, family, weight, px, 0, text, x, y, align);
}

/* The bilingual label (colour) of a field and its value (resin). */
static void draw_field(cairo_t *colour, cairo_t *resin, double left, double right, double y,
                       const char *ar, const char *en, const char *value)
{
    static const struct colour black = { 0, 0, 0 };

    draw_text(colour, &label, FONT_LATIN, PANGO_WEIGHT_NORMAL, 17, en, left, y, ALIGN_LEFT);
    draw_text(colour, &label, FONT_ARABIC, PANGO_WEIGHT_NORMAL, 19, ar, right, y - 4, ALIGN_RIGHT);
    draw_text_fit(resin, &black, FONT_DIGITS, PANGO_WEIGHT_BOLD, 28, right - left, value, left,
                  y + 22, ALIGN_LEFT);
}

static void draw_photo(cairo_t *cr, const char *photo_png, double x, double y, double w, double h,
                       int *rc)
{
    cairo_save(cr);
    cairo_rectangle(cr, x, y, w, h);
    cairo_clip(cr);
    if (photo_png) {
        cairo_surface_t *s = cairo_image_surface_create_from_png(photo_png);

        if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
            double sw = cairo_image_surface_get_width(s);
            double sh = cairo_image_surface_get_height(s);
            double k = sw / w > sh / h ? h / sh : w / sw; /* cover */

            cairo_translate(cr, x + (w - sw * k) / 2, y + (h - sh * k) / 2);
            cairo_scale(cr, k, k);
            cairo_set_source_surface(cr, s, 0, 0);
            cairo_paint(cr);
        } else {
            *rc = -EIO;
        }
        cairo_surface_destroy(s);
    } else {
        /* An empty frame with a neutral silhouette. */
        cairo_set_source_rgb(cr, 0.86, 0.89, 0.92);
        cairo_paint(cr);
        cairo_set_source_rgb(cr, 0.62, 0.68, 0.74);
        cairo_arc(cr, x + w / 2, y + h * 0.38, w * 0.22, 0, 2 * G_PI);
        cairo_fill(cr);
        cairo_arc(cr, x + w / 2, y + h * 1.02, w * 0.45, G_PI, 2 * G_PI);
        cairo_fill(cr);
    }
    cairo_restore(cr);
    cairo_set_source_rgb(cr, green.r, green.g, green.b);
    cairo_set_line_width(cr, 3);
    cairo_rectangle(cr, x + 1.5, y + 1.5, w - 3, h - 3);
    cairo_stroke(cr);
}

static bool field_ok(const char *s)
{
    return s && s[0] && strlen(s) < FIELD_MAX && g_utf8_validate(s, -1, NULL);
}

static bool data_ok(const struct face_data *d)
{
    if (!d || !field_ok(d->name_ar) || !field_ok(d->name_latin) || !field_ok(d->national_id) ||
        !field_ok(d->birth_date) || !field_ok(d->expiry_date) || !field_ok(d->card_serial))
        return false;
    if (d->kind != FACE_NATIONAL_ID && d->kind != FACE_FAMILY_RECORD)
        return false;
    if (d->kind == FACE_FAMILY_RECORD && !field_ok(d->issue_date))
        return false;
    if (d->n_members > 8 || (d->n_members && !d->members))
        return false;
    for (size_t i = 0; i < d->n_members; i++)
        if (!field_ok(d->members[i]))
            return false;
    return true;
}

size_t face_fields(const struct face_data *d, struct face_field out[FACE_MAX_FIELDS])
{
    if (!d)
        return 0;
    size_t n = 0;
    out[n++] = (struct face_field){ "رقم الهوية", "ID No.", d->national_id };
    if (d->kind == FACE_NATIONAL_ID) {
        out[n++] = (struct face_field){ "تاريخ الميلاد", "Date of Birth", d->birth_date };
        out[n++] = (struct face_field){ "تاريخ الانتهاء", "Expiry Date", d->expiry_date };
        out[n++] = (struct face_field){ "رقم البطاقة", "Card No.", d->card_serial };
    } else {
        /* A family record is issued the day it is produced. */
        out[n++] = (struct face_field){ "رقم السجل", "Record No.", d->card_serial };
        out[n++] = (struct face_field){ "تاريخ الإصدار", "Issue Date", d->issue_date };
    }
    return n;
}

static void draw_card(cairo_t *colour, cairo_t *resin, const struct face_data *d, int *rc)
{
    static const struct colour black = { 0, 0, 0 };
    bool id = d->kind == FACE_NATIONAL_ID;
    cairo_pattern_t *bg = cairo_pattern_create_linear(0, 0, W, H);

    cairo_pattern_add_color_stop_rgb(bg, 0, pale.r, pale.g, pale.b);
    cairo_pattern_add_color_stop_rgb(bg, 1, 1, 1, 1);
    cairo_set_source(colour, bg);
    cairo_paint(colour);
    cairo_pattern_destroy(bg);

    /* Title band, both languages. */
    cairo_set_source_rgb(colour, green.r, green.g, green.b);
    cairo_rectangle(colour, 0, 0, W, 112);
    cairo_fill(colour);
    draw_text(colour, &white, FONT_ARABIC, PANGO_WEIGHT_BOLD, 34, "المملكة العربية السعودية",
              W - 36, 4, ALIGN_RIGHT);
    draw_text(colour, &white, FONT_ARABIC, PANGO_WEIGHT_NORMAL, 26,
              id ? "بطاقة الهوية الوطنية" : "سجل الأسرة", W - 36, 58, ALIGN_RIGHT);
    draw_text(colour, &white, FONT_LATIN, PANGO_WEIGHT_BOLD, 26, "KINGDOM OF SAUDI ARABIA", 36, 18,
              ALIGN_LEFT);
    draw_text(colour, &white, FONT_LATIN, PANGO_WEIGHT_NORMAL, 21,
              id ? "National Identity Card" : "Family Record", 36, 62, ALIGN_LEFT);

    draw_photo(colour, d->photo_png, 756, 136, 220, 280, rc);

    /* The holder's data, right block edge 726, left 300 (ID card: the
	 * chip sits to the left of it). */
    double left = id ? 300 : 40, right = 726;

    draw_text_fit(resin, &black, FONT_ARABIC, PANGO_WEIGHT_BOLD, 40, right - left, d->name_ar,
                  right, 126, ALIGN_RIGHT);
    draw_text_fit(resin, &black, FONT_LATIN, PANGO_WEIGHT_BOLD, 26, right - left, d->name_latin,
                  left, 200, ALIGN_LEFT);
    cairo_set_source_rgb(resin, 0, 0, 0);
    cairo_rectangle(resin, left, 242, right - left, 3);
    cairo_fill(resin);

    struct face_field fields[FACE_MAX_FIELDS];
    size_t nf = face_fields(d, fields);
    for (size_t i = 0; i < nf; i++)
        draw_field(colour, resin, left, right, 256 + 70 * (double)i, fields[i].label_ar,
                   fields[i].label_en, fields[i].value);
    if (!id) {
        for (size_t i = 0; i < d->n_members; i++)
            draw_text_fit(resin, &black, FONT_ARABIC, PANGO_WEIGHT_NORMAL, 22, 330, d->members[i],
                          right - (double)(i / 4) * 345, 466 + (double)(i % 4) * 32, ALIGN_RIGHT);
    }

    /* Bottom rule and band. */
    cairo_set_source_rgb(colour, green.r, green.g, green.b);
    cairo_rectangle(colour, 0, H - 40, W, 40);
    cairo_fill(colour);
    if (id) {
        /* Nothing printed over the contacts. */
        cairo_set_source_rgb(colour, 1, 1, 1);
        cairo_rectangle(colour, CHIP_X, CHIP_Y, CHIP_W, CHIP_H);
        cairo_fill(colour);
        cairo_set_operator(resin, CAIRO_OPERATOR_CLEAR);
        cairo_rectangle(resin, CHIP_X, CHIP_Y, CHIP_W, CHIP_H);
        cairo_fill(resin);
        cairo_set_operator(resin, CAIRO_OPERATOR_OVER);
    }
}

int face_render(const struct face_data *d, struct face_image **out)
{
    cairo_surface_t *colour_s = NULL, *resin_s = NULL;
    cairo_t *colour = NULL, *resin = NULL;
    struct face_image *img = NULL;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!data_ok(d))
        return -EINVAL;
    rc = face_image_new(&img);
    if (rc)
        return rc;
    colour_s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    resin_s = cairo_image_surface_create(CAIRO_FORMAT_A8, W, H);
    if (cairo_surface_status(colour_s) || cairo_surface_status(resin_s)) {
        rc = -ENOMEM;
        goto out_destroy_surfaces;
    }
    colour = cairo_create(colour_s);
    resin = cairo_create(resin_s);
    if (cairo_status(colour) || cairo_status(resin)) {
        rc = -ENOMEM;
        goto out_destroy_contexts;
    }
    draw_card(colour, resin, d, &rc);
    if (rc)
        goto out_destroy_contexts;
    cairo_surface_flush(colour_s);
    cairo_surface_flush(resin_s);

    const uint8_t *cpx = cairo_image_surface_get_data(colour_s);
    const uint8_t *rpx = cairo_image_surface_get_data(resin_s);
    int cstride = cairo_image_surface_get_stride(colour_s);
    int rstride = cairo_image_surface_get_stride(resin_s);

    for (int y = 0; y < H; y++) {
        const uint32_t *crow = (const uint32_t *)(cpx + (size_t)y * (size_t)cstride);
        const uint8_t *rrow = rpx + (size_t)y * (size_t)rstride;

        for (int x = 0; x < W; x++) {
            size_t i = (size_t)y * W + (size_t)x;

            img->rgb[i] = crow[x] & 0xffffff;
            /* Resin is on or off: half coverage decides. */
            img->resin[i] = rrow[x] >= 128;
            if (d->kind == FACE_NATIONAL_ID && x >= CHIP_X && x < CHIP_X + CHIP_W && y >= CHIP_Y &&
                y < CHIP_Y + CHIP_H)
                img->no_overlay[i] = 1;
        }
    }
    *out = img;
    img = NULL;

out_destroy_contexts:
    cairo_destroy(colour);
    cairo_destroy(resin);
out_destroy_surfaces:
    cairo_surface_destroy(colour_s);
    cairo_surface_destroy(resin_s);
    face_image_free(img);
    return rc;
}

int face_write_png(const struct face_image *img, const char *path)
{
    cairo_surface_t *s = NULL;
    uint8_t *px;
    int stride;
    int rc = 0;

    if (!img || !path || img->width != W || img->height != H)
        return -EINVAL;
    s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    if (cairo_surface_status(s)) {
        rc = -ENOMEM;
        goto out_destroy;
    }
    cairo_surface_flush(s);
    px = cairo_image_surface_get_data(s);
    stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < H; y++) {
        uint32_t *row = (uint32_t *)(px + (size_t)y * (size_t)stride);

        for (int x = 0; x < W; x++)
            row[x] = face_image_pixel(img, x, y);
    }
    cairo_surface_mark_dirty(s);
    if (cairo_surface_write_to_png(s, path) != CAIRO_STATUS_SUCCESS)
        rc = -EIO;
out_destroy:
    cairo_surface_destroy(s);
    return rc;
}

/* Stores the low `bits` bits of v as pixel n, MSB first. */
static void pack(uint8_t *panel, unsigned int bits, size_t n, unsigned int v)
{
    size_t bit = n * bits;

    for (unsigned int i = bits; i-- > 0; bit++)
        if ((v >> i) & 1u)
            panel[bit >> 3] |= (uint8_t)(0x80u >> (bit & 7));
}

int face_to_panels(const struct face_image *img, struct printer_panels *out)
{
    struct printer_panels p = { 0 };
    size_t n = (size_t)W * H;

    if (!img || !out || img->width != W || img->height != H)
        return -EINVAL;
    /* The pixels must fit in the sizes the printer expects. */
    _Static_assert((size_t)W * H * 5 / 8 <= PRINTER_PANEL_COLOR_BYTES, "colour panel size");
    _Static_assert((size_t)W * H / 8 <= PRINTER_PANEL_MONO_BYTES, "mono panel size");
    p.y = calloc(1, PRINTER_PANEL_COLOR_BYTES);
    p.m = calloc(1, PRINTER_PANEL_COLOR_BYTES);
    p.c = calloc(1, PRINTER_PANEL_COLOR_BYTES);
    p.k = calloc(1, PRINTER_PANEL_MONO_BYTES);
    p.o = calloc(1, PRINTER_PANEL_MONO_BYTES);
    if (!p.y || !p.m || !p.c || !p.k || !p.o) {
        face_panels_free(&p);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t rgb = img->rgb[i];
        unsigned int r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b = rgb & 0xff;

        /* Dye subtracts light: yellow absorbs blue, magenta green,
		 * cyan red.  8 bits to 5 keeps the top bits. */
        pack(p.y, 5, i, (255 - b) >> 3);
        pack(p.m, 5, i, (255 - g) >> 3);
        pack(p.c, 5, i, (255 - r) >> 3);
        pack(p.k, 1, i, img->resin[i] ? 1 : 0);
        pack(p.o, 1, i, img->no_overlay[i] ? 0 : 1);
    }
    *out = p;
    return 0;
}

void face_panels_free(struct printer_panels *p)
{
    if (!p)
        return;
    free(p->y);
    free(p->m);
    free(p->c);
    free(p->k);
    free(p->o);
    p->y = p->m = p->c = p->k = p->o = NULL;
}
