/* fuzz_intake.c — an approved request as the intake endpoint reads it:
 * JSON text (jansson, duplicates refused as http.c does), then
 * request_validate. Every error names a field and a code. */
#include <jansson.h>
#include <stdio.h>

#include "fuzz.h"
#include "requests.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    json_t *errors = json_array();
    int n = request_validate(body, 1764403200, errors);
    FUZZ_ASSERT(n >= 0 && (size_t)n == json_array_size(errors));
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        FUZZ_ASSERT(json_is_string(json_object_get(e, "field")));
        FUZZ_ASSERT(json_is_string(json_object_get(e, "code")));
    }
    json_decref(errors);
    json_decref(body);
    return 0;
}
