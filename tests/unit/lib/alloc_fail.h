/* alloc_fail.h — SQLite-style allocation countdown for unit tests whose
 * .wrap file names malloc, realloc and calloc: while alloc_countdown is
 * N >= 0, the Nth allocation made by the product code from then on fails
 * (the shared libraries are not wrapped). -1 disarms it. */
#ifndef CARDD_TEST_ALLOC_FAIL_H
#define CARDD_TEST_ALLOC_FAIL_H

extern long alloc_countdown;

#endif
