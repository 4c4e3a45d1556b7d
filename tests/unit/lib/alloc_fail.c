/* alloc_fail.c — see alloc_fail.h. Linked from an archive, so only the
 * tests that wrap the allocator pull it in. */
#include "alloc_fail.h"

#include <stdbool.h>
#include <stddef.h>

long alloc_countdown = -1;

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_calloc(size_t k, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_calloc(size_t k, size_t n);

static bool alloc_fails(void)
{
    return alloc_countdown >= 0 && alloc_countdown-- == 0;
}

void *__wrap_malloc(size_t n)
{
    return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : __real_realloc(p, n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return alloc_fails() ? NULL : __real_calloc(k, n);
}
