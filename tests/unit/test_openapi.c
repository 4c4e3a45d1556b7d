/* test_openapi.c — docs/openapi.json and the server's route table describe
 * the same API: every route is an operation of the spec and every operation
 * is a route (but for the few listed below as not yet implemented), with the
 * same roles, signing and body; and the spec itself is whole: every $ref
 * resolves, every answer carries X-Request-Id, every error is a Problem. */
#include "http.h"
#include "server.h"
#include "status.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const struct {
    unsigned bit;
    const char *name;
} role_names[] = {
    { ROLE_INTAKE, "intake" }, { ROLE_OPERATOR, "operator" }, { ROLE_COURIER, "courier" },
    { ROLE_BRANCH, "branch" }, { ROLE_ADMIN, "admin" },
};

static const char *const methods[] = { "get", "put", "post", "delete", "patch", "head", "options" };

static json_t *spec;

/* ---- helpers ---- */

/* "/v1/requests/{request_no}/cancel" -> "/v1/requests/{}/cancel". */
static void normalise(const char *path, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = path; *p && o + 1 < len; p++) {
        out[o++] = *p;
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close)
                p = close - 1;
        }
    }
    out[o] = '\0';
}

static void upper(const char *s, char *out, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        out[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    out[i] = '\0';
}

/* Resolves a local reference "#/components/schemas/Problem" (JSON pointer,
 * with ~1 and ~0), or NULL. */
static json_t *resolve(const char *ref)
{
    if (strncmp(ref, "#/", 2) != 0)
        return NULL;
    json_t *node = spec;
    const char *p = ref + 2;
    while (node && *p) {
        char key[256];
        size_t k = 0;
        for (; *p && *p != '/' && k + 1 < sizeof(key); p++) {
            if (p[0] == '~' && p[1] == '1') {
                key[k++] = '/';
                p++;
            } else if (p[0] == '~' && p[1] == '0') {
                key[k++] = '~';
                p++;
            } else {
                key[k++] = *p;
            }
        }
        key[k] = '\0';
        if (*p == '/')
            p++;
        node = json_object_get(node, key);
    }
    return node;
}

/* The object itself, or what its $ref names. */
static json_t *deref(json_t *node)
{
    const char *ref = json_string_value(json_object_get(node, "$ref"));
    return ref ? resolve(ref) : node;
}

/* The operation of the spec for method and a route pattern, or NULL. */
static json_t *spec_operation(const char *method, const char *pattern)
{
    const char *path;
    json_t *item;
    json_object_foreach(json_object_get(spec, "paths"), path, item)
    {
        char norm[256];
        normalise(path, norm, sizeof(norm));
        if (strcmp(norm, pattern) != 0)
            continue;
        char lower[16];
        size_t i = 0;
        for (; method[i] && i + 1 < sizeof(lower); i++)
            lower[i] = (char)(method[i] >= 'A' && method[i] <= 'Z' ? method[i] + 32 : method[i]);
        lower[i] = '\0';
        return json_object_get(item, lower);
    }
    return NULL;
}

static const struct http_route *server_route(const char *method, const char *pattern)
{
    size_t n = 0;
    const struct http_route *routes = server_routes(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(routes[i].method, method) == 0 && strcmp(routes[i].pattern, pattern) == 0)
            return &routes[i];
    return NULL;
}

/* Calls fn for every operation of the spec. */
typedef void (*op_fn)(const char *method, const char *pattern, json_t *op, int *failures);

static int each_operation(op_fn fn)
{
    int failures = 0;
    const char *path;
    json_t *item;
    json_object_foreach(json_object_get(spec, "paths"), path, item)
    {
        char norm[256];
        normalise(path, norm, sizeof(norm));
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            json_t *op = json_object_get(item, methods[m]);
            if (!op)
                continue;
            char method[16];
            upper(methods[m], method, sizeof(method));
            fn(method, norm, op, &failures);
        }
    }
    return failures;
}

/* The roles of x-roles as a mask, or -1 when x-roles is missing or names an unknown role. */
static long spec_roles(json_t *op)
{
    json_t *roles = json_object_get(op, "x-roles");
    if (!json_is_array(roles))
        return -1;
    unsigned mask = 0;
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r)
    {
        const char *name = json_string_value(r);
        bool known = false;
        for (size_t k = 0; name && k < sizeof(role_names) / sizeof(role_names[0]); k++)
            if (strcmp(name, role_names[k].name) == 0) {
                mask |= role_names[k].bit;
                known = true;
            }
        if (!known)
            return -1;
    }
    return mask;
}

/* The security requirements in force for op: its own, else the document's. */
static json_t *effective_security(json_t *op)
{
    json_t *sec = json_object_get(op, "security");
    return sec ? sec : json_object_get(spec, "security");
}

/* True when every alternative of the security requirement names scheme. */
static bool requires_scheme(json_t *security, const char *scheme)
{
    if (json_array_size(security) == 0)
        return false;
    size_t i;
    json_t *req;
    json_array_foreach(security, i, req) if (!json_object_get(req, scheme)) return false;
    return true;
}

/* ---- fixtures ---- */

static int load_spec(void **state)
{
    (void)state;
    const char *root = getenv("CARDD_ROOT");
    char path[1024];
    snprintf(path, sizeof(path), "%s/docs/openapi.json", root && *root ? root : ".");
    json_error_t err;
    spec = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!spec) {
        fprintf(stderr, "cannot read %s: line %d: %s\n", path, err.line, err.text);
        return -1;
    }
    return 0;
}

static int free_spec(void **state)
{
    (void)state;
    json_decref(spec);
    spec = NULL;
    return 0;
}

/* ---- the two directions ---- */

static void test_spec_is_openapi_3(void **state)
{
    (void)state;
    const char *version = json_string_value(json_object_get(spec, "openapi"));
    assert_non_null(version);
    assert_int_equal(strncmp(version, "3.0.", 4), 0);
    assert_non_null(json_object_get(json_object_get(spec, "info"), "title"));
    assert_true(json_object_size(json_object_get(spec, "paths")) > 0);
}

/* How many routes of the server the spec lacks; each is named on stderr. */
static int routes_missing_from_spec(void)
{
    size_t n = 0;
    const struct http_route *routes = server_routes(&n);
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        if (!spec_operation(routes[i].method, routes[i].pattern)) {
            fprintf(stderr, "route %s %s is not in docs/openapi.json\n", routes[i].method,
                    routes[i].pattern);
            missing++;
        }
    }
    return missing;
}

static void test_every_route_is_in_the_spec(void **state)
{
    (void)state;
    size_t n = 0;
    server_routes(&n);
    assert_true(n > 0);
    assert_int_equal(routes_missing_from_spec(), 0);
}

static void check_operation_has_route(const char *method, const char *pattern, json_t *op,
                                      int *failures)
{
    (void)op;
    if (server_route(method, pattern) == NULL) {
        fprintf(stderr, "%s %s is in the spec but the server has no such route\n", method, pattern);
        (*failures)++;
    }
}

static void test_every_operation_is_a_route(void **state)
{
    (void)state;
    assert_int_equal(each_operation(check_operation_has_route), 0);
}

/* ---- roles, signing, bodies ---- */

static void check_security(const char *method, const char *pattern, json_t *op, int *failures)
{
    const struct http_route *route = server_route(method, pattern);
    json_t *security = effective_security(op);
    long roles = spec_roles(op);
    bool signed_op = requires_scheme(security, "courierSignature");
    const char *desc = json_string_value(json_object_get(op, "description"));
    char why[256] = "";

    if (roles < 0) {
        snprintf(why, sizeof(why), "x-roles is missing or names an unknown role");
    } else if (roles == 0) {
        if (!json_is_array(security) || json_array_size(security) != 0)
            snprintf(why, sizeof(why), "a public operation must have security: []");
        else if (!desc || !strstr(desc, "Public"))
            snprintf(why, sizeof(why), "the description does not say it is public");
    } else {
        if (!requires_scheme(security, "bearerAuth"))
            snprintf(why, sizeof(why), "an operation with roles must require bearerAuth");
        /* Admin may use everything but the signed courier calls, which
         * need a courier's own secret. */
        if (!why[0] && !signed_op && !(roles & ROLE_ADMIN))
            snprintf(why, sizeof(why), "x-roles lacks admin");
    }
    if (!why[0] && route) {
        unsigned want = route->roles & ~(unsigned)ROLE_ADMIN;
        unsigned have = (unsigned)roles & ~(unsigned)ROLE_ADMIN;
        if (want != have)
            snprintf(why, sizeof(why), "x-roles (mask %#x) differs from the route's roles (%#x)",
                     have, want);
        else if (signed_op != ((route->flags & ROUTE_SIGNED) != 0))
            snprintf(why, sizeof(why), "courierSignature %s but the route is %s",
                     signed_op ? "is required" : "is not required",
                     route->flags & ROUTE_SIGNED ? "signed" : "not signed");
    }
    if (!why[0] && signed_op) {
        /* Courier calls name their roles, courier. */
        if (roles != ROLE_COURIER)
            snprintf(why, sizeof(why), "a signed operation is for the courier role");
    }
    for (size_t k = 0; !why[0] && roles > 0 && k < sizeof(role_names) / sizeof(role_names[0]);
         k++) {
        char quoted[32];
        snprintf(quoted, sizeof(quoted), "`%s`", role_names[k].name);
        if ((roles & role_names[k].bit) && (!desc || !strstr(desc, quoted)))
            snprintf(why, sizeof(why), "the description does not name the role %s",
                     role_names[k].name);
    }
    if (why[0]) {
        fprintf(stderr, "%s %s: %s\n", method, pattern, why);
        (*failures)++;
    }
}

static void test_security_matches_roles(void **state)
{
    (void)state;
    assert_non_null(json_object_get(
        json_object_get(json_object_get(spec, "components"), "securitySchemes"), "bearerAuth"));
    assert_int_equal(each_operation(check_security), 0);
}

static void check_body(const char *method, const char *pattern, json_t *op, int *failures)
{
    const struct http_route *route = server_route(method, pattern);
    json_t *body = deref(json_object_get(op, "requestBody"));
    bool required = json_is_true(json_object_get(body, "required"));
    json_t *schema = json_object_get(
        json_object_get(json_object_get(body, "content"), "application/json"), "schema");
    char why[160] = "";
    if (body && !schema)
        snprintf(why, sizeof(why), "requestBody without an application/json schema");
    if (!why[0] && route) {
        if (route->flags & ROUTE_BODY && (!body || !required))
            snprintf(why, sizeof(why),
                     "the route requires a JSON body: requestBody, required: true");
        else if (route->flags & ROUTE_BODY_OPTIONAL && (!body || required))
            snprintf(why, sizeof(why),
                     "the route takes an optional body: requestBody, required: false");
        else if (!(route->flags & (ROUTE_BODY | ROUTE_BODY_OPTIONAL)) && body)
            snprintf(why, sizeof(why), "the route takes no body, but the spec has a requestBody");
    }
    /* Whoever sends a body can get 415; whoever may not, 400. */
    json_t *responses = json_object_get(op, "responses");
    if (!why[0] && body && !json_object_get(responses, "415"))
        snprintf(why, sizeof(why), "an operation with a body must list 415");
    if (!why[0] && !json_object_get(responses, "400"))
        snprintf(why, sizeof(why), "every operation must list 400 (malformed or unexpected body)");
    if (why[0]) {
        fprintf(stderr, "%s %s: %s\n", method, pattern, why);
        (*failures)++;
    }
}

static void test_bodies_match(void **state)
{
    (void)state;
    assert_int_equal(each_operation(check_body), 0);
}

/* ---- the spec is whole ---- */

static bool is_x_request_id(json_t *header)
{
    json_t *h = deref(header);
    return h && json_is_true(json_object_get(h, "required"));
}

static void check_responses(const char *method, const char *pattern, json_t *op, int *failures)
{
    json_t *responses = json_object_get(op, "responses");
    long roles = spec_roles(op);
    const char *code;
    json_t *resp;
    char why[200] = "";
    static const char *const always[] = { "400", "413", "500" };
    static const char *const authenticated[] = { "401", "403", "503" };

    if (json_object_size(responses) == 0)
        snprintf(why, sizeof(why), "no responses");
    for (size_t i = 0; !why[0] && i < sizeof(always) / sizeof(always[0]); i++)
        if (!json_object_get(responses, always[i]))
            snprintf(why, sizeof(why), "does not list %s", always[i]);
    for (size_t i = 0; !why[0] && roles > 0 && i < 3; i++)
        if (!json_object_get(responses, authenticated[i]))
            snprintf(why, sizeof(why), "needs a token but does not list %s", authenticated[i]);
    if (!why[0] && json_object_get(op, "parameters")) {
        json_t *p;
        size_t i;
        json_array_foreach(
            json_object_get(op, "parameters"), i,
            p) if (strcmp(json_string_value(json_object_get(deref(p), "in")) ?: "", "path") == 0 &&
                   !json_object_get(responses, "404"))
            snprintf(why, sizeof(why), "has a path parameter but does not list 404");
    }
    json_object_foreach(responses, code, resp)
    {
        if (why[0])
            break;
        json_t *r = deref(resp);
        int status = atoi(code);
        if (!r || !json_is_string(json_object_get(r, "description"))) {
            snprintf(why, sizeof(why), "response %s does not resolve or has no description", code);
            break;
        }
        json_t *headers = json_object_get(r, "headers");
        if (!is_x_request_id(json_object_get(headers, "X-Request-Id")))
            snprintf(why, sizeof(why), "response %s lacks the X-Request-Id header", code);
        else if (json_object_size(json_object_get(r, "content")) == 0)
            snprintf(why, sizeof(why), "response %s has no content", code);
        else if (status >= 400) {
            json_t *schema = json_object_get(
                json_object_get(json_object_get(r, "content"), "application/problem+json"),
                "schema");
            const char *ref = json_string_value(json_object_get(schema, "$ref"));
            if (!ref || strcmp(ref, "#/components/schemas/Problem") != 0)
                snprintf(why, sizeof(why), "error %s is not application/problem+json Problem",
                         code);
            else if (status == 429 && !json_object_get(headers, "Retry-After"))
                snprintf(why, sizeof(why), "429 lacks Retry-After");
        }
    }
    if (why[0]) {
        fprintf(stderr, "%s %s: %s\n", method, pattern, why);
        (*failures)++;
    }
}

static void test_responses_are_whole(void **state)
{
    (void)state;
    assert_int_equal(each_operation(check_responses), 0);
}

/* Walks node and counts $refs that do not resolve. */
static int unresolved_refs(json_t *node)
{
    int bad = 0;
    if (json_is_object(node)) {
        const char *key;
        json_t *v;
        json_object_foreach(node, key, v)
        {
            if (strcmp(key, "$ref") == 0 && json_is_string(v)) {
                if (!resolve(json_string_value(v))) {
                    fprintf(stderr, "unresolved $ref %s\n", json_string_value(v));
                    bad++;
                }
            } else {
                bad += unresolved_refs(v);
            }
        }
    } else if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) bad += unresolved_refs(v);
    }
    return bad;
}

static void test_every_ref_resolves(void **state)
{
    (void)state;
    assert_int_equal(unresolved_refs(spec), 0);
    assert_null(resolve("#/components/schemas/NoSuchSchema"));
}

static void collect_operation_id(const char *method, const char *pattern, json_t *op, int *failures)
{
    static json_t *seen;
    if (!op) {
        json_decref(seen);
        seen = NULL;
        return;
    }
    if (!seen)
        seen = json_object();
    const char *id = json_string_value(json_object_get(op, "operationId"));
    if (!id || json_object_get(seen, id)) {
        fprintf(stderr, "%s %s: operationId %s\n", method, pattern, id ? "repeated" : "missing");
        (*failures)++;
    } else {
        json_object_set_new(seen, id, json_true());
    }
}

static void test_operation_ids_unique(void **state)
{
    (void)state;
    int failures = each_operation(collect_operation_id);
    collect_operation_id(NULL, NULL, NULL, NULL);
    assert_int_equal(failures, 0);
}

/* The status enum and its labels are those the service answers with. */
static void test_status_labels(void **state)
{
    (void)state;
    json_t *status = resolve("#/components/schemas/Status");
    json_t *values = json_object_get(status, "enum");
    json_t *labels = json_object_get(status, "x-labels");
    const char *desc = json_string_value(json_object_get(status, "description"));
    assert_int_equal(json_array_size(values), 12);
    assert_int_equal(json_object_size(labels), 12);
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v)
    {
        const char *code = json_string_value(v);
        const struct status_label *l = status_find(code);
        if (!l)
            fail_msg("status %s of the spec is unknown to the service", code);
        json_t *lbl = json_object_get(labels, code);
        assert_string_equal(json_string_value(json_object_get(lbl, "ar")), l->ar);
        assert_string_equal(json_string_value(json_object_get(lbl, "en")), l->en);
        assert_non_null(strstr(desc, l->ar));
        assert_non_null(strstr(desc, l->en));
    }
}

/* The patterns API.md fixes, where the spec must carry them. */
static void test_identifier_patterns(void **state)
{
    (void)state;
    static const struct {
        const char *pointer;
        const char *pattern;
    } expected[] = {
        { "#/components/schemas/NationalId/pattern", "^[12][0-9]{9}$" },
        { "#/components/schemas/RequestNo/pattern", "^[A-Z0-9-]{1,32}$" },
        { "#/components/schemas/TrackingNo/pattern", "^[A-Z]{2}[0-9]{9}SA$" },
        { "#/components/schemas/IntakeRequest/properties/phone/pattern", "^\\+9665[0-9]{8}$" },
        { "#/components/schemas/Address/properties/short_address/pattern", "^[A-Z]{4}[0-9]{4}$" },
        { "#/components/schemas/Address/properties/postal_code/pattern", "^[0-9]{5}$" },
        { "#/components/schemas/Address/properties/building_no/pattern", "^[0-9]{4}$" },
        { "#/components/schemas/Address/properties/additional_no/pattern", "^[0-9]{4}$" },
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const char *got = json_string_value(resolve(expected[i].pointer));
        if (!got || strcmp(got, expected[i].pattern) != 0)
            fail_msg("%s is %s, not %s", expected[i].pointer, got ? got : "missing",
                     expected[i].pattern);
    }
}

/* The checks themselves can fail: a spec that lacks a route, or whose
 * roles differ, is caught. */
static void test_checks_can_fail(void **state)
{
    (void)state;
    json_t *saved = json_deep_copy(spec);
    fprintf(stderr, "-- the failures reported below are deliberate --\n");
    json_t *paths = json_object_get(spec, "paths");
    json_object_del(paths, "/v1/stock");
    assert_null(spec_operation("GET", "/v1/stock"));
    assert_int_equal(routes_missing_from_spec(), 1);
    int failures = 0;

    json_t *op = spec_operation("POST", "/v1/requests");
    json_object_set_new(op, "x-roles", json_pack("[s, s]", "operator", "admin"));
    failures = 0;
    check_security("POST", "/v1/requests", op, &failures);
    assert_int_equal(failures, 1);

    op = spec_operation("GET", "/healthz");
    json_object_del(op, "security");
    failures = 0;
    check_security("GET", "/healthz", op, &failures);
    assert_int_equal(failures, 1);

    op = spec_operation("POST", "/v1/track");
    json_object_del(op, "requestBody");
    failures = 0;
    check_body("POST", "/v1/track", op, &failures);
    assert_int_equal(failures, 1);

    op = spec_operation("POST", "/v1/dispatches");
    failures = 0;
    check_operation_has_route("POST", "/v1/stock/batches", op, &failures);
    assert_int_equal(failures, 0);
    check_operation_has_route("POST", "/v1/no-such-thing", op, &failures);
    assert_int_equal(failures, 1);

    json_decref(spec);
    spec = saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_is_openapi_3),
        cmocka_unit_test(test_every_route_is_in_the_spec),
        cmocka_unit_test(test_every_operation_is_a_route),
        cmocka_unit_test(test_security_matches_roles),
        cmocka_unit_test(test_bodies_match),
        cmocka_unit_test(test_responses_are_whole),
        cmocka_unit_test(test_every_ref_resolves),
        cmocka_unit_test(test_operation_ids_unique),
        cmocka_unit_test(test_status_labels),
        cmocka_unit_test(test_identifier_patterns),
        cmocka_unit_test(test_checks_can_fail),
    };
    return cmocka_run_group_tests_name("openapi", tests, load_spec, free_spec);
}
