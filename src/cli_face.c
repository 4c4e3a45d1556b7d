/*
 * cli_face.c - the face rendering behind `cardctl card face`.
 */
#include <errno.h>

#include "cli_face.h"

int cli_card_face_render(const struct face_data *d, const char *out_png)
{
    struct face_image *img = NULL;
    int rc;

    if (!d || !out_png)
        return -EINVAL;
    rc = face_render(d, &img);
    if (rc)
        return rc;
    rc = face_write_png(img, out_png);
    face_image_free(img);
    return rc;
}
