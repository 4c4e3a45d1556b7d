/* web.h — the pages people use (the citizen's tracking page at "/", the
 * operators' dashboard at "/ops/"), embedded in the binary at build time
 * from the project's web/ folder (scripts/embed-web.sh). */
#ifndef CARDD_WEB_H
#define CARDD_WEB_H

#include <stddef.h>

struct web_asset {
    const char *path; /* where it is served: "/", "/ops/", "/track.js" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
};

/* Generated: every file of web/. */
extern const struct web_asset web_assets[];
extern const size_t web_asset_count;

/* The asset served at path, or NULL. A folder's page is also found
 * without its trailing slash ("/ops"). */
const struct web_asset *web_asset_find(const char *path);

/* The Content-Security-Policy of the pages: their own files only, no
 * inline script or style, no framing. */
#define WEB_PAGE_CSP                                                            \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

/* The policy of every other answer (JSON, text): nothing may run or frame it. */
#define WEB_API_CSP "default-src 'none'; frame-ancestors 'none'"

#endif
