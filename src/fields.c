/* fields.c — the {"field","code"} items of a 422 answer. */
#include "fields.h"

#include <stdio.h>

void field_error(json_t *errors, const char *field, const char *code)
{
    json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "code", code));
}

void field_error_at(json_t *errors, const char *prefix, const char *field, const char *code)
{
    char name[96];
    snprintf(name, sizeof(name), "%s%s", prefix, field);
    field_error(errors, name, code);
}
