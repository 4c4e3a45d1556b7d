/*
 * face.h - the printed face of a card: rendering it from the holder's data
 * (Pango/HarfBuzz shaping, so Arabic is joined and laid out right to left)
 * and turning it into the ribbon panels a card printer takes.
 */
#ifndef CARDD_FACE_H
#define CARDD_FACE_H

#include <stddef.h>
#include <stdint.h>

#include "printer.h"

enum face_kind {
    FACE_NATIONAL_ID = 0, /* the ID card: chip contacts left clear */
    FACE_FAMILY_RECORD,   /* printed only, no chip */
};

/* What goes on a face; all strings UTF-8, owned by the caller. */
struct face_data {
    enum face_kind kind;
    const char *name_ar;        /* required: full name in Arabic */
    const char *name_latin;     /* required */
    const char *national_id;    /* required: 10 digits */
    const char *birth_date;     /* required: YYYY-MM-DD */
    const char *expiry_date;    /* required: YYYY-MM-DD */
    const char *issue_date;     /* family record: required, YYYY-MM-DD (Riyadh) */
    const char *card_serial;    /* required; family record: its number */
    const char *photo_png;      /* optional: path; NULL: empty frame */
    const char *const *members; /* family record: members' Arabic names */
    size_t n_members;
};

/* One labelled field of a face, as printed: bilingual label and value. */
struct face_field {
    const char *label_ar;
    const char *label_en;
    const char *value;
};

#define FACE_MAX_FIELDS 4

/* The labelled fields printed on the face of d, top to bottom, into out;
 * returns how many (0 when d is NULL). The values point into d. */
size_t face_fields(const struct face_data *d, struct face_field out[FACE_MAX_FIELDS]);

/* A rendered face: the colour layer and the black resin layer. */
struct face_image {
    int width, height;   /* PRINTER_FACE_WIDTH x PRINTER_FACE_HEIGHT */
    uint32_t *rgb;       /* 0x00RRGGBB, row-major, width*height */
    uint8_t *resin;      /* 1 where black resin is printed */
    uint8_t *no_overlay; /* 1 where the overlay must stay off (chip) */
};

/* Renders d.  On success *out is an image to free with face_image_free().
 * -EINVAL when a required field is missing or too long to fit, -ENOMEM,
 * -EIO when the photo cannot be read. */
int face_render(const struct face_data *d, struct face_image **out);

/* Allocates a blank (white, no resin) image of the printer's size. */
int face_image_new(struct face_image **out);

/* Frees an image.  NULL-safe. */
void face_image_free(struct face_image *img);

/* The face as a person sees it (colour with resin on top), as RGB 0xRRGGBB
 * at (x, y); the pixel must be inside the image. */
uint32_t face_image_pixel(const struct face_image *img, int x, int y);

/* Writes the face as a person sees it to a PNG file.  0, -EINVAL, -EIO. */
int face_write_png(const struct face_image *img, const char *path);

/*
 * Turns an image into panels: Y, M, C the complement of blue, green, red
 * at 32 levels (5 bits a pixel), K the resin layer and O the overlay
 * (everywhere but no_overlay), 1 bit a pixel; packed MSB first, rows from
 * the top-left, zero-padded to the printer's panel sizes.  On success the
 * buffers in *out are the caller's, to release with face_panels_free().
 */
int face_to_panels(const struct face_image *img, struct printer_panels *out);

/* Frees the panel buffers and NULLs them.  NULL-safe, idempotent. */
void face_panels_free(struct printer_panels *p);

#endif
