/* face_check.h — compares a face PNG from the emulated printer's hopper
 * (rebuilt by the emulator from the panels it received) with a rendering. */
#ifndef CARDD_IT_FACE_CHECK_H
#define CARDD_IT_FACE_CHECK_H

#include <stddef.h>

#include "face.h"

/* Pixels of png that differ from img by more than the 5-bit levels of the
 * colour panels can explain (12 per channel); (size_t)-1 when png cannot be
 * read or has the wrong size. */
size_t face_png_mismatches(const char *png, const struct face_image *img);

#endif
