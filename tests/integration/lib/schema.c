/* schema.c — see schema.h. */
#include "schema.h"

#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64

json_t *openapi_load(void)
{
    char path[1024];
    json_error_t err;
    harness_src("docs/openapi.json", path, sizeof(path));
    json_t *spec = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!spec)
        fprintf(stderr, "schema: cannot read %s: line %d: %s\n", path, err.line, err.text);
    return spec;
}

json_t *openapi_resolve(json_t *root, const char *ref)
{
    if (!ref || strncmp(ref, "#/", 2) != 0)
        return NULL;
    json_t *node = root;
    const char *p = ref + 2;
    while (node && *p) {
        char key[256];
        size_t k = 0;
        for (; *p && *p != '/'; p++) {
            if (k + 1 >= sizeof(key))
                return NULL;
            if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                key[k++] = p[1] == '1' ? '/' : '~';
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

/* ---- the checker ---- */

struct check {
    json_t *root;
    char *why;
    size_t whylen;
    char where[512]; /* JSON path of the value being checked */
};

static int failf(struct check *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->why, c->whylen, "%s: %s", c->where[0] ? c->where : "$", msg);
    return -1;
}

static int check_value(struct check *c, json_t *schema, json_t *v, int depth);

/* Checks v against a subschema found at a deeper location of the value. */
static int check_at(struct check *c, json_t *schema, json_t *v, int depth, const char *fmt, ...)
{
    size_t len = strlen(c->where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->where + len, sizeof(c->where) - len, fmt, ap);
    va_end(ap);
    int rc = check_value(c, schema, v, depth);
    c->where[len] = '\0';
    return rc;
}

static const char *type_of(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static bool type_matches(const char *type, json_t *v)
{
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    return false;
}

/* Characters (code points) of a UTF-8 string, as JSON Schema counts them. */
static size_t utf8_length(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

static bool regex_matches(const char *pattern, const char *s, bool *bad_pattern)
{
    regex_t re;
    *bad_pattern = false;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        *bad_pattern = true;
        return false;
    }
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool valid_date(int y, int m, int d)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m < 1 || m > 12 || d < 1)
        return false;
    return d <= days[m - 1] + (m == 2 && leap(y));
}

/* format: date (YYYY-MM-DD) and date-time (RFC 3339); others pass. */
static bool format_ok(const char *format, const char *s)
{
    bool bad;
    int y, m, d, hh, mm, ss;
    if (strcmp(format, "date") == 0)
        return regex_matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", s, &bad) &&
               sscanf(s, "%4d-%2d-%2d", &y, &m, &d) == 3 && valid_date(y, m, d);
    if (strcmp(format, "date-time") == 0)
        return regex_matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?"
                             "([Zz]|[+-][0-9]{2}:[0-9]{2})$",
                             s, &bad) &&
               sscanf(s, "%4d-%2d-%2d%*c%2d:%2d:%2d", &y, &m, &d, &hh, &mm, &ss) == 6 &&
               valid_date(y, m, d) && hh < 24 && mm < 60 && ss <= 60;
    return true;
}

static int check_string(struct check *c, json_t *schema, json_t *v)
{
    const char *s = json_string_value(v);
    size_t chars = utf8_length(s, json_string_length(v));
    json_t *k;
    if ((k = json_object_get(schema, "minLength")) && chars < (size_t)json_integer_value(k))
        return failf(c, "%zu characters, fewer than minLength %lld", chars,
                     (long long)json_integer_value(k));
    if ((k = json_object_get(schema, "maxLength")) && chars > (size_t)json_integer_value(k))
        return failf(c, "%zu characters, more than maxLength %lld", chars,
                     (long long)json_integer_value(k));
    const char *pattern = json_string_value(json_object_get(schema, "pattern"));
    if (pattern) {
        bool bad;
        bool ok = regex_matches(pattern, s, &bad);
        if (bad)
            return failf(c, "pattern %s does not compile as a POSIX extended expression", pattern);
        if (!ok)
            return failf(c, "\"%s\" does not match %s", s, pattern);
    }
    const char *format = json_string_value(json_object_get(schema, "format"));
    if (format && !format_ok(format, s))
        return failf(c, "\"%s\" is not a valid %s", s, format);
    return 0;
}

static int check_number(struct check *c, json_t *schema, json_t *v)
{
    double x = json_number_value(v);
    json_t *k;
    if ((k = json_object_get(schema, "minimum")) && x < json_number_value(k))
        return failf(c, "%g is below minimum %g", x, json_number_value(k));
    if ((k = json_object_get(schema, "maximum")) && x > json_number_value(k))
        return failf(c, "%g is above maximum %g", x, json_number_value(k));
    return 0;
}

static int check_object(struct check *c, json_t *schema, json_t *v, int depth)
{
    json_t *props = json_object_get(schema, "properties");
    json_t *extra = json_object_get(schema, "additionalProperties");
    size_t i;
    json_t *name;
    json_array_foreach(json_object_get(schema, "required"), i, name)
    {
        if (!json_object_get(v, json_string_value(name)))
            return failf(c, "required property %s is missing", json_string_value(name));
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        json_t *ps = json_object_get(props, key);
        if (ps) {
            if (check_at(c, ps, val, depth + 1, ".%s", key))
                return -1;
        } else if (json_is_false(extra)) {
            return failf(c, "property %s is not allowed", key);
        } else if (json_is_object(extra)) {
            if (check_at(c, extra, val, depth + 1, ".%s", key))
                return -1;
        }
    }
    return 0;
}

static int check_array(struct check *c, json_t *schema, json_t *v, int depth)
{
    size_t n = json_array_size(v);
    json_t *k;
    if ((k = json_object_get(schema, "minItems")) && n < (size_t)json_integer_value(k))
        return failf(c, "%zu items, fewer than minItems %lld", n, (long long)json_integer_value(k));
    if ((k = json_object_get(schema, "maxItems")) && n > (size_t)json_integer_value(k))
        return failf(c, "%zu items, more than maxItems %lld", n, (long long)json_integer_value(k));
    if (json_is_true(json_object_get(schema, "uniqueItems")))
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (json_equal(json_array_get(v, i), json_array_get(v, j)))
                    return failf(c, "items %zu and %zu are equal, but uniqueItems", i, j);
    json_t *items = json_object_get(schema, "items");
    if (items)
        for (size_t i = 0; i < n; i++)
            if (check_at(c, items, json_array_get(v, i), depth + 1, "[%zu]", i))
                return -1;
    return 0;
}

/* allOf: every one; anyOf: at least one; oneOf: exactly one. */
static int check_combinators(struct check *c, json_t *schema, json_t *v, int depth)
{
    size_t i;
    json_t *sub;
    json_array_foreach(json_object_get(schema, "allOf"), i,
                       sub) if (check_value(c, sub, v, depth + 1)) return -1;
    static const char *const kinds[] = { "anyOf", "oneOf" };
    for (int k = 0; k < 2; k++) {
        json_t *list = json_object_get(schema, kinds[k]);
        if (!list)
            continue;
        size_t matched = 0;
        char first_why[512] = "";
        json_array_foreach(list, i, sub)
        {
            if (check_value(c, sub, v, depth + 1) == 0)
                matched++;
            else if (!first_why[0])
                snprintf(first_why, sizeof(first_why), "%s", c->why);
        }
        if (matched == 0)
            return failf(c, "matches none of %s (first: %s)", kinds[k], first_why);
        if (k == 1 && matched > 1)
            return failf(c, "matches %zu schemas of oneOf, not exactly one", matched);
    }
    return 0;
}

static int check_value(struct check *c, json_t *schema, json_t *v, int depth)
{
    if (depth > MAX_DEPTH)
        return failf(c, "schema nests too deeply (a $ref loop?)");
    if (!json_is_object(schema))
        return failf(c, "the schema is not an object");
    const char *ref = json_string_value(json_object_get(schema, "$ref"));
    if (ref) {
        json_t *target = openapi_resolve(c->root, ref);
        if (!target)
            return failf(c, "$ref %s does not resolve", ref);
        return check_value(c, target, v, depth + 1);
    }
    if (json_is_null(v)) {
        if (json_is_true(json_object_get(schema, "nullable")))
            return 0;
        if (json_object_get(schema, "type"))
            return failf(c, "null, but the schema is not nullable");
    }
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (type && !type_matches(type, v))
        return failf(c, "%s where %s is expected", type_of(v), type);
    json_t *choices = json_object_get(schema, "enum");
    if (choices) {
        bool found = false;
        size_t i;
        json_t *e;
        json_array_foreach(choices, i, e) if (json_equal(e, v)) found = true;
        if (!found) {
            char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            failf(c, "%s is not one of the enum", text ? text : "value");
            free(text);
            return -1;
        }
    }
    if (json_is_string(v) && check_string(c, schema, v))
        return -1;
    if (json_is_number(v) && check_number(c, schema, v))
        return -1;
    if (json_is_object(v) && check_object(c, schema, v, depth))
        return -1;
    if (json_is_array(v) && check_array(c, schema, v, depth))
        return -1;
    return check_combinators(c, schema, v, depth);
}

int schema_validate(json_t *root, json_t *schema, json_t *instance, char *why, size_t whylen)
{
    char scratch[8];
    struct check c = { .root = root,
                       .why = why ? why : scratch,
                       .whylen = why ? whylen : sizeof(scratch) };
    c.why[0] = '\0';
    strcpy(c.where, "$");
    return check_value(&c, schema, instance, 0);
}

/* ---- operations and replies ---- */

/* Matches a concrete path against a template whose {name} segments match
 * any one non-empty segment. */
static bool path_matches(const char *tmpl, const char *path)
{
    while (*tmpl && *path && *path != '?') {
        if (*tmpl == '{') {
            const char *close = strchr(tmpl, '}');
            if (!close)
                return false;
            size_t n = strcspn(path, "/?");
            if (n == 0)
                return false;
            tmpl = close + 1;
            path += n;
            continue;
        }
        if (*tmpl != *path)
            return false;
        tmpl++;
        path++;
    }
    return *tmpl == '\0' && (*path == '\0' || *path == '?');
}

static json_t *deref(json_t *root, json_t *node)
{
    const char *ref = json_string_value(json_object_get(node, "$ref"));
    return ref ? openapi_resolve(root, ref) : node;
}

static json_t *find_operation(json_t *spec, const char *method, const char *path)
{
    char lower[16];
    size_t i = 0;
    for (; method[i] && i + 1 < sizeof(lower); i++)
        lower[i] = (char)(method[i] >= 'A' && method[i] <= 'Z' ? method[i] + 32 : method[i]);
    lower[i] = '\0';
    const char *tmpl;
    json_t *item;
    /* A literal path wins over a template that also matches. */
    json_t *literal = json_object_get(json_object_get(spec, "paths"), path);
    if (literal && json_object_get(literal, lower))
        return json_object_get(literal, lower);
    json_object_foreach(json_object_get(spec, "paths"), tmpl,
                        item) if (path_matches(tmpl, path) &&
                                  json_object_get(item, lower)) return json_object_get(item, lower);
    return NULL;
}

json_t *openapi_response(json_t *spec, const char *method, const char *path, int status)
{
    json_t *op = find_operation(spec, method, path);
    json_t *responses = json_object_get(op, "responses");
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    json_t *r = json_object_get(responses, code);
    if (!r)
        r = json_object_get(responses, "default");
    return r ? deref(spec, r) : NULL;
}

/* Compares media types: type/subtype case-insensitively, then parameters
 * as written. */
static bool same_media_type(const char *spec_type, const char *got)
{
    size_t a = strcspn(spec_type, ";"), b = strcspn(got, ";");
    while (a > 0 && spec_type[a - 1] == ' ')
        a--;
    while (b > 0 && got[b - 1] == ' ')
        b--;
    if (a != b || strncasecmp(spec_type, got, a) != 0)
        return false;
    const char *pa = spec_type + strcspn(spec_type, ";"), *pb = got + strcspn(got, ";");
    if (!*pa)
        return true; /* the spec names no parameters: any will do */
    return strcasecmp(pa, pb) == 0;
}

static const char *reply_header(const struct reply *r, const char *name)
{
    if (strcasecmp(name, "X-Request-Id") == 0)
        return r->request_id;
    if (strcasecmp(name, "Retry-After") == 0)
        return r->retry_after;
    if (strcasecmp(name, "Content-Type") == 0)
        return r->content_type;
    return NULL;
}

int openapi_check_reply(json_t *spec, const char *method, const char *path, const struct reply *r,
                        char *why, size_t whylen)
{
    char scratch[8];
    if (!why) {
        why = scratch;
        whylen = sizeof(scratch);
    }
    if (!find_operation(spec, method, path)) {
        snprintf(why, whylen, "the spec has no operation %s %s", method, path);
        return -1;
    }
    json_t *resp = openapi_response(spec, method, path, (int)r->status);
    if (!resp) {
        snprintf(why, whylen, "%s %s: the spec lists no %ld answer", method, path, r->status);
        return -1;
    }
    const char *name;
    json_t *h;
    json_object_foreach(json_object_get(resp, "headers"), name, h)
    {
        h = deref(spec, h);
        if (!json_is_true(json_object_get(h, "required")))
            continue;
        const char *value = reply_header(r, name);
        if (!value) {
            snprintf(why, whylen, "%s %s %ld: the harness does not capture header %s", method, path,
                     r->status, name);
            return -1;
        }
        if (!*value) {
            snprintf(why, whylen, "%s %s %ld: header %s is missing", method, path, r->status, name);
            return -1;
        }
        json_t *hschema = json_object_get(h, "schema");
        const char *htype = json_string_value(json_object_get(hschema, "type"));
        json_t *hv = NULL;
        if (htype && strcmp(htype, "integer") == 0) {
            char *end = NULL;
            long n = strtol(value, &end, 10);
            hv = *end ? json_string(value) : json_integer(n);
        } else {
            hv = json_string(value);
        }
        char inner[400];
        int rc = hschema ? schema_validate(spec, hschema, hv, inner, sizeof(inner)) : 0;
        json_decref(hv);
        if (rc) {
            snprintf(why, whylen, "%s %s %ld: header %s: %s", method, path, r->status, name, inner);
            return -1;
        }
    }
    json_t *content = json_object_get(resp, "content");
    if (json_object_size(content) == 0) {
        if (r->len == 0)
            return 0;
        snprintf(why, whylen, "%s %s %ld: the spec gives no body, but one came", method, path,
                 r->status);
        return -1;
    }
    const char *type;
    json_t *media, *schema = NULL;
    bool found = false;
    json_object_foreach(content, type, media)
    {
        if (same_media_type(type, r->content_type)) {
            schema = json_object_get(media, "schema");
            found = true;
            break;
        }
    }
    if (!found) {
        snprintf(why, whylen, "%s %s %ld: Content-Type \"%s\" is not one the spec gives", method,
                 path, r->status, r->content_type);
        return -1;
    }
    if (!schema)
        return 0;
    bool is_json = strstr(r->content_type, "json") != NULL;
    json_t *body = is_json ? json_incref(r->json) : json_stringn(r->body ? r->body : "", r->len);
    if (!body) {
        snprintf(why, whylen, "%s %s %ld: the body is not JSON", method, path, r->status);
        return -1;
    }
    char inner[600];
    int rc = schema_validate(spec, schema, body, inner, sizeof(inner));
    json_decref(body);
    if (rc) {
        snprintf(why, whylen, "%s %s %ld: %s", method, path, r->status, inner);
        return -1;
    }
    return 0;
}
