/* fuzz.h — what the libFuzzer harnesses share. Each harness is one
 * LLVMFuzzerTestOneInput over one reader of outside bytes; `make fuzz`
 * builds them with clang under ASan+UBSan and runs each for FUZZ_SECONDS. */
#ifndef CARDD_FUZZ_H
#define CARDD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of data (the caller frees it), so that readers of C
 * strings see exactly size bytes and ASan catches a read past them. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Takes the input apart: the part up to the first separator byte, then the rest. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, uint8_t sep)
{
    const uint8_t *p = memchr(data, sep, size);
    return p ? (size_t)(p - data) : size;
}

/* A failed property: crash so that libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond)                                                               \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

#endif
