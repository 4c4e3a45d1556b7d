/* fuzz_signature.c — the courier's X-Signature header (auth.c): the input
 * is the header, a newline, then the body it signs. */
#include <stdio.h>

#include "auth.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char secret[] = "9f2c3b1a0e7d6c5b4a3928171615141312111009080706050403020100ffeedd";
    size_t h = fuzz_split(data, size, '\n');
    char *header = fuzz_cstr(data, h);
    size_t body_len = h < size ? size - h - 1 : 0;
    char *body = fuzz_cstr(data + size - body_len, body_len);
    long now = 1764403200;
    int rc = auth_verify_signature(header, body, body_len, secret, now);
    FUZZ_ASSERT(rc <= 0);
    /* The header this body would carry is always good. */
    char good[256];
    auth_sign(secret, now, body, body_len, good, sizeof(good));
    FUZZ_ASSERT(auth_verify_signature(good, body, body_len, secret, now) == 0);
    free(header);
    free(body);
    return 0;
}
