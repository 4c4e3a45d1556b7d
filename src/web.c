/* web.c — finding the embedded pages' files by path. */
#include "web.h"

#include <string.h>

const struct web_asset *web_asset_find(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < web_asset_count; i++) {
        const char *p = web_assets[i].path;
        if (strcmp(p, path) == 0)
            return &web_assets[i];
        size_t m = strlen(p);
        if (n > 0 && m == n + 1 && p[n] == '/' && strncmp(p, path, n) == 0)
            return &web_assets[i];
    }
    return NULL;
}
