/* schema.h — a small checker of JSON values against the OpenAPI 3.0 schemas
 * of docs/openapi.json, so that integration tests can hold the real
 * service's answers to the published contract.
 *
 * Keywords understood: $ref (local, "#/..."), nullable, type (string,
 * integer, number, boolean, object, array), enum, required, properties,
 * additionalProperties (boolean or schema), items, minItems, maxItems,
 * uniqueItems, pattern (POSIX extended regular expression), minLength and
 * maxLength (in characters), minimum, maximum, format (date-time, date),
 * allOf, anyOf, oneOf. Other keywords (description, example, default, x-*)
 * are ignored. */
#ifndef CARDD_TEST_SCHEMA_H
#define CARDD_TEST_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

#include "harness.h"

/* Reads $CARDD_ROOT/docs/openapi.json (else ./docs/openapi.json). Returns
 * the document, or NULL after saying why on stderr. */
json_t *openapi_load(void);

/* Resolves a local reference such as "#/components/schemas/Problem"
 * against root. Returns a borrowed reference, or NULL. */
json_t *openapi_resolve(json_t *root, const char *ref);

/* Checks instance against schema; $refs resolve in root. Returns 0 when
 * it conforms, else -1 with the first failure, located by a JSON path
 * ("$.delivery.branch: ..."), in why. */
int schema_validate(json_t *root, json_t *schema, json_t *instance, char *why, size_t whylen);

/* The response object (with $ref resolved) that the spec gives for method
 * and a concrete path ("/v1/requests/RQ-1"; the query string is ignored)
 * and status, falling back on the operation's "default". NULL when the
 * spec has no such operation or response. Borrowed reference. */
json_t *openapi_response(json_t *spec, const char *method, const char *path, int status);

/* Holds a real reply to the spec: the status is one the operation lists,
 * the Content-Type is the one the spec gives for it, the headers it marks
 * required (X-Request-Id, Retry-After) are there and match their schemas,
 * and the body conforms to the schema. Returns 0, or -1 with why. */
int openapi_check_reply(json_t *spec, const char *method, const char *path, const struct reply *r,
                        char *why, size_t whylen);

#endif
