/* fuzz_events.c — courier events as POST /v1/courier/events reads them:
 * JSON text, then one event or {"events": [...]} through event_validate
 * (static in courier.c, so the file is compiled in here). An event that
 * passes has every field the database needs, within its limits. */
#include "courier.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    json_t *errors = json_array();
    json_t *list = json_object_get(body, "events");
    size_t n = json_is_array(list) ? json_array_size(list) : 1;
    for (size_t i = 0; i < n && i < 600; i++) {
        json_t *obj = json_is_array(list) ? json_array_get(list, i) : body;
        char prefix[32] = "";
        if (json_is_array(list))
            snprintf(prefix, sizeof(prefix), "events[%zu].", i);
        struct courier_event ev;
        if (event_validate(obj, prefix, 1764403200, &ev, errors) == 0) {
            FUZZ_ASSERT(ev.event_id && strlen(ev.event_id) <= 64);
            FUZZ_ASSERT(ev.tracking_no && s10_valid(ev.tracking_no));
            FUZZ_ASSERT(ev.code >= 0 && ev.code < PARCEL_CODE_COUNT);
            FUZZ_ASSERT(strlen(ev.at_text) == 20);
        }
    }
    json_decref(errors);
    json_decref(body);
    return 0;
}
