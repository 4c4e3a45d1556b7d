/* fields.h — the {"field","code"} items of a 422 answer, one helper for
 * every handler that checks a body. */
#ifndef CARDD_FIELDS_H
#define CARDD_FIELDS_H

#include <jansson.h>

/* Appends {"field": field, "code": code} to the errors array. */
void field_error(json_t *errors, const char *field, const char *code);

/* The same for a field named prefix + field ("events[2]." + "at"). */
void field_error_at(json_t *errors, const char *prefix, const char *field, const char *code);

#endif
