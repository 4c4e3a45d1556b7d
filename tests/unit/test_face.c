/*
 * test_face - card face rendering and conversion to printer panels.
 *
 * calloc is wrapped: a countdown makes the Nth allocation fail, and the
 * same conversion runs for every N (SQLite's way of testing failure).
 * CARDD_REGEN_REF=1 rewrites the reference rendering in tests/data/
 * (review it by eye before committing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cairo.h>
#include <glib.h>
#include <unistd.h>

#include "cli_face.h"
#include "face.h"

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

static int calloc_countdown = -1; /* <0: never fail */

void *__wrap_calloc(size_t n, size_t size)
{
    if (calloc_countdown == 0)
        return NULL;
    if (calloc_countdown > 0)
        calloc_countdown--;
    return __real_calloc(n, size);
}

/* fontconfig keeps its pattern cache until exit (reached through pango's
 * default font map); LeakSanitizer would report it on every run. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}

static const char sample_name_ar[] = "محمد عبدالله القحطاني";

static struct face_data sample(void)
{
    struct face_data d = {
        .kind = FACE_NATIONAL_ID,
        .name_ar = sample_name_ar,
        .name_latin = "MOHAMMED ABDULLAH ALQAHTANI",
        .national_id = "1012345678",
        .birth_date = "1985-03-14",
        .expiry_date = "2031-11-26",
        .card_serial = "A00012345",
    };
    return d;
}

static unsigned int unpack(const uint8_t *p, unsigned int bits, size_t n)
{
    size_t bit = n * bits;
    unsigned int v = 0;

    for (unsigned int i = 0; i < bits; i++, bit++)
        v = (v << 1) | ((p[bit >> 3] >> (7 - (bit & 7))) & 1u);
    return v;
}

static const size_t npix = (size_t)PRINTER_FACE_WIDTH * PRINTER_FACE_HEIGHT;

static void test_blank_panels_sizes_and_padding(void **state)
{
    struct face_image *img = NULL;
    struct printer_panels p = { 0 };

    (void)state;
    assert_int_equal(face_image_new(&img), 0);
    assert_int_equal(face_to_panels(img, &p), 0);
    /* White: no dye anywhere, no resin, overlay on every pixel. */
    for (size_t i = 0; i < PRINTER_PANEL_COLOR_BYTES; i++) {
        assert_int_equal(p.y[i], 0);
        assert_int_equal(p.m[i], 0);
        assert_int_equal(p.c[i], 0);
    }
    for (size_t i = 0; i < PRINTER_PANEL_MONO_BYTES; i++) {
        assert_int_equal(p.k[i], 0);
        /* 658,368 pixels fill exactly 82,296 bytes; the rest of the
		 * panel the printer expects is zero padding. */
        assert_int_equal(p.o[i], i < npix / 8 ? 0xff : 0x00);
    }
    face_panels_free(&p);
    face_panels_free(&p); /* idempotent */
    face_image_free(img);
    face_image_free(NULL);
}

static void test_complement_of_rgb(void **state)
{
    struct face_image *img = NULL;
    struct printer_panels p = { 0 };

    (void)state;
    assert_int_equal(face_image_new(&img), 0);
    for (size_t i = 0; i < npix; i++)
        img->rgb[i] = 0xff0000;    /* pure red */
    img->rgb[npix - 1] = 0x00ff00; /* last pixel green */
    assert_int_equal(face_to_panels(img, &p), 0);
    /* Red light passes: no cyan; magenta and yellow full. */
    assert_int_equal(unpack(p.c, 5, 0), 0);
    assert_int_equal(unpack(p.m, 5, 0), 31);
    assert_int_equal(unpack(p.y, 5, 0), 31);
    assert_int_equal(unpack(p.c, 5, npix - 1), 31);
    assert_int_equal(unpack(p.m, 5, npix - 1), 0);
    assert_int_equal(unpack(p.y, 5, npix - 1), 31);
    /* Full magenta: every packed bit set up to the last pixel. */
    for (size_t i = 0; i < npix * 5 / 8 - 1; i++)
        assert_int_equal(p.m[i], 0xff);
    assert_int_equal(p.m[npix * 5 / 8], 0); /* padding */
    face_panels_free(&p);
    face_image_free(img);
}

static void test_packing_msb_first(void **state)
{
    struct face_image *img = NULL;
    struct printer_panels p = { 0 };

    (void)state;
    assert_int_equal(face_image_new(&img), 0);
    /* Pixel 1: yellow level 22 (10110b); blue = 255 - (22 << 3). */
    img->rgb[1] = 0xffff00 | (255 - (22u << 3));
    img->resin[9] = 1;
    img->no_overlay[0] = 1;
    img->no_overlay[7] = 1;
    assert_int_equal(face_to_panels(img, &p), 0);
    /* 00000 10110 ... -> 0000 0101 10xx xxxx */
    assert_int_equal(p.y[0], 0x05);
    assert_int_equal(p.y[1], 0x80);
    assert_int_equal(p.y[2], 0x00);
    assert_int_equal(p.k[0], 0x00);
    assert_int_equal(p.k[1], 0x40); /* pixel 9 = bit 1 of byte 1 */
    assert_int_equal(p.o[0], 0x7e); /* pixels 0 and 7 left bare */
    /* 8-bit levels keep their top 5 bits. */
    face_panels_free(&p);
    face_image_free(img);
}

static void test_panels_every_allocation_failure(void **state)
{
    struct face_image *img = NULL;
    struct printer_panels p = { 0 };

    (void)state;
    assert_int_equal(face_image_new(&img), 0);
    for (int n = 0; n < 5; n++) {
        calloc_countdown = n;
        assert_int_equal(face_to_panels(img, &p), -ENOMEM);
        assert_null(p.y);
    }
    calloc_countdown = -1;
    for (int n = 0; n < 3; n++) {
        struct face_image *other = NULL;

        calloc_countdown = n;
        assert_int_equal(face_image_new(&other), -ENOMEM);
        assert_null(other);
    }
    calloc_countdown = -1;
    face_image_free(img);
}

static void test_render_refuses_bad_input(void **state)
{
    struct face_data d = sample();
    struct face_image *img = NULL;
    char longname[400];

    (void)state;
    d.name_ar = NULL;
    assert_int_equal(face_render(&d, &img), -EINVAL);
    assert_null(img);
    d = sample();
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    d.name_latin = longname;
    assert_int_equal(face_render(&d, &img), -EINVAL);
    d = sample();
    d.national_id = "\xff\xfe"; /* not UTF-8 */
    assert_int_equal(face_render(&d, &img), -EINVAL);
    d = sample();
    d.photo_png = "/nonexistent/photo.png";
    assert_int_equal(face_render(&d, &img), -EIO);
    assert_null(img);
    assert_int_equal(face_render(NULL, &img), -EINVAL);
}

/* Share of pixels in [x0,x1)x[y0,y1) whose colour differs by more than
 * 48 in some channel. */
static double diff_ratio(const struct face_image *img, cairo_surface_t *ref, int x0, int y0, int x1,
                         int y1)
{
    const uint8_t *px = cairo_image_surface_get_data(ref);
    int stride = cairo_image_surface_get_stride(ref);
    size_t bad = 0, all = 0;

    for (int y = y0; y < y1; y++) {
        const uint32_t *row = (const uint32_t *)(px + (size_t)y * (size_t)stride);

        for (int x = x0; x < x1; x++, all++) {
            uint32_t a = face_image_pixel(img, x, y), b = row[x];

            for (int s = 0; s < 24; s += 8) {
                int d = (int)((a >> s) & 0xff) - (int)((b >> s) & 0xff);

                if (d > 48 || d < -48) {
                    bad++;
                    break;
                }
            }
        }
    }
    return (double)bad / (double)all;
}

static char *data_path(const char *name)
{
    const char *root = getenv("CARDD_ROOT");
    static char path[4096];

    snprintf(path, sizeof(path), "%s/tests/data/%s", root ? root : ".", name);
    return path;
}

/* The Arabic name must be shaped (joined letter forms) and laid out right
 * to left: the rendering matches a reference that was checked by eye, and
 * the same name with its letters forced apart (ZWNJ) does not. */
static void test_render_matches_reference_shaping(void **state)
{
    struct face_data d = sample();
    struct face_image *img = NULL, *unjoined = NULL;
    cairo_surface_t *ref = NULL;
    const char *ref_path = data_path("face-sample.png");

    (void)state;
    assert_int_equal(face_render(&d, &img), 0);
    if (getenv("CARDD_REGEN_REF"))
        assert_int_equal(face_write_png(img, ref_path), 0);
    ref = cairo_image_surface_create_from_png(ref_path);
    assert_int_equal(cairo_surface_status(ref), CAIRO_STATUS_SUCCESS);
    assert_int_equal(cairo_image_surface_get_width(ref), PRINTER_FACE_WIDTH);
    assert_int_equal(cairo_image_surface_get_height(ref), PRINTER_FACE_HEIGHT);

    assert_true(diff_ratio(img, ref, 0, 0, PRINTER_FACE_WIDTH, PRINTER_FACE_HEIGHT) < 0.002);

    /* Name band: x 300..726, y 126..196. */
    GString *s = g_string_new(NULL);
    for (const char *p = sample_name_ar; *p; p = g_utf8_next_char(p)) {
        g_string_append_len(s, p, g_utf8_next_char(p) - p);
        if (*p != ' ')
            g_string_append(s, "\u200c");
    }
    d.name_ar = s->str;
    assert_int_equal(face_render(&d, &unjoined), 0);
    assert_true(diff_ratio(unjoined, ref, 300, 126, 726, 196) > 0.02);

    g_string_free(s, TRUE);
    cairo_surface_destroy(ref);
    face_image_free(unjoined);
    face_image_free(img);
}

static void test_cli_writes_png(void **state)
{
    struct face_data d = sample();
    char path[] = "/tmp/test_face_XXXXXX.png";
    int fd = mkstemps(path, 4);
    cairo_surface_t *s = NULL;

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cli_card_face_render(&d, path), 0);
    s = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    assert_int_equal(cairo_image_surface_get_width(s), PRINTER_FACE_WIDTH);
    cairo_surface_destroy(s);
    unlink(path);
    assert_int_equal(cli_card_face_render(&d, "/nonexistent/dir/x.png"), -EIO);
    assert_int_equal(cli_card_face_render(NULL, path), -EINVAL);
}

static void test_family_record_has_no_chip_gap(void **state)
{
    static const char *const members[] = { "نورة سعد القحطاني", "سارة محمد القحطاني" };
    struct face_data d = sample();
    struct face_image *img = NULL;
    size_t bare = 0;

    (void)state;
    d.kind = FACE_FAMILY_RECORD;
    d.issue_date = "2026-11-29";
    d.members = members;
    d.n_members = 2;
    assert_int_equal(face_render(&d, &img), 0);
    for (size_t i = 0; i < npix; i++)
        bare += img->no_overlay[i];
    assert_int_equal(bare, 0);
    face_image_free(img);

    d = sample();
    assert_int_equal(face_render(&d, &img), 0);
    for (size_t i = 0; i < npix; i++)
        bare += img->no_overlay[i];
    assert_true(bare > 10000); /* the ID card leaves its chip bare */
    face_image_free(img);
}

/* A family record is issued the day it is produced: its face carries the
 * issue date under "Issue Date", never the holder's birth date; without an
 * issue date there is no family record face. */
static void test_family_record_issue_date(void **state)
{
    struct face_data d = sample();
    struct face_field f[FACE_MAX_FIELDS];
    struct face_image *img = NULL;
    (void)state;

    d.kind = FACE_FAMILY_RECORD;
    assert_int_equal(face_render(&d, &img), -EINVAL);
    d.issue_date = "2026-11-29";
    size_t n = face_fields(&d, f);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        assert_string_not_equal(f[i].value, d.birth_date);
        if (strcmp(f[i].label_en, "Issue Date") == 0) {
            assert_string_equal(f[i].label_ar, "تاريخ الإصدار");
            assert_string_equal(f[i].value, "2026-11-29");
            found = true;
        }
    }
    assert_true(found);

    /* The picture changes with the issue date: it is what is printed there. */
    struct face_image *other = NULL;
    assert_int_equal(face_render(&d, &img), 0);
    d.issue_date = "2027-01-02";
    assert_int_equal(face_render(&d, &other), 0);
    size_t differ = 0;
    for (size_t i = 0; i < npix; i++)
        differ +=
            face_image_pixel(img, (int)(i % PRINTER_FACE_WIDTH), (int)(i / PRINTER_FACE_WIDTH)) !=
            face_image_pixel(other, (int)(i % PRINTER_FACE_WIDTH), (int)(i / PRINTER_FACE_WIDTH));
    assert_true(differ > 100);
    face_image_free(other);
    face_image_free(img);

    /* The national ID card shows birth and expiry dates. */
    d = sample();
    n = face_fields(&d, f);
    assert_int_equal(n, 4);
    assert_string_equal(f[1].label_en, "Date of Birth");
    assert_string_equal(f[1].value, d.birth_date);
    assert_string_equal(f[2].value, d.expiry_date);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blank_panels_sizes_and_padding),
        cmocka_unit_test(test_complement_of_rgb),
        cmocka_unit_test(test_packing_msb_first),
        cmocka_unit_test(test_panels_every_allocation_failure),
        cmocka_unit_test(test_render_refuses_bad_input),
        cmocka_unit_test(test_render_matches_reference_shaping),
        cmocka_unit_test(test_cli_writes_png),
        cmocka_unit_test(test_family_record_has_no_chip_gap),
        cmocka_unit_test(test_family_record_issue_date),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
