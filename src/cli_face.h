/*
 * cli_face.h - `cardctl card face`: render a card face to a PNG file.
 */
#ifndef CARDD_CLI_FACE_H
#define CARDD_CLI_FACE_H

#include "face.h"

/* Renders the front of the card described by d and writes it, as a person
 * would see the printed card, to out_png.  0, or -EINVAL (missing or
 * invalid field), -ENOMEM, -EIO (photo unreadable, file not writable). */
int cli_card_face_render(const struct face_data *d, const char *out_png);

#endif
