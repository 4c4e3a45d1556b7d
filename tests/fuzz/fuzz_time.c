/* fuzz_time.c — RFC 3339 timestamps and YYYY-MM-DD dates (calendar.c):
 * never a read outside the string, and whatever is accepted survives a
 * round trip through the formatter. */
#include <stdio.h>

#include "calendar.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    int64_t us;
    time_t t;
    if (timestamp_parse_us(s, &us) == 0) {
        FUZZ_ASSERT(timestamp_parse(s, &t) == 0);
        FUZZ_ASSERT((int64_t)t * 1000000 <= us && us < ((int64_t)t + 1) * 1000000);
        char text[21];
        time_t back;
        timestamp_format(t, text);
        FUZZ_ASSERT(timestamp_parse(text, &back) == 0 && back == t);
    } else {
        FUZZ_ASSERT(timestamp_parse(s, &t) != 0);
    }
    long day;
    if (date_parse(s, &day) == 0) {
        char text[11];
        date_format(day, text);
        FUZZ_ASSERT(strcmp(text, s) == 0);
    }
    free(s);
    return 0;
}
