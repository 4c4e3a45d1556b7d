/* test_requests.c — validation of POST /v1/requests against every rule of
 * API.md, and the delivery estimate in Riyadh working days. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "calendar.h"
#include "requests.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The example of API.md, with real digests. */
static const char example[] =
    "{\"request_no\": \"RQ-2026-000123\", \"kind\": \"national_id\", \"reason\": \"lost\","
    " \"national_id\": \"1000000008\","
    " \"holder\": {\"name_ar\": \"محمد عبدالله القحطاني\", \"name_en\": \"MOHAMMED ABDULLAH ALQAHTANI\","
    "            \"birth_date\": \"1990-04-12\", \"sex\": \"M\", \"nationality\": \"SAU\"},"
    " \"phone\": \"+966501234567\","
    " \"address\": {\"short_address\": \"RRRD2929\", \"building_no\": \"2929\", \"street\": \"Al Takhassusi\","
    "             \"district\": \"Al Olaya\", \"city\": \"Riyadh\", \"postal_code\": \"12345\","
    "             \"additional_no\": \"7788\", \"lat\": 24.6920, \"lon\": 46.6850},"
    " \"documents\": [{\"type\": \"id_copy\", \"sha256\": \"" HEX_A "\", \"uri\": \"docs://1\"},"
    "               {\"type\": \"loss_report\", \"sha256\": \"" HEX_B "\", \"uri\": \"docs://2\"}],"
    " \"terms_accepted_at\": \"2026-11-20T10:00:00Z\","
    " \"approved_at\": \"2026-11-21T08:00:00Z\"}";

#define APPROVED ((time_t)1795248000) /* 2026-11-21T08:00:00Z */
#define NOW      (APPROVED + 3600)

struct fixture {
    json_t *body;
    json_t *errors;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    json_error_t err;
    if (!f)
        return -1;
    f->body = json_loads(example, 0, &err);
    f->errors = json_array();
    if (!f->body || !f->errors) {
        fprintf(stderr, "example: %s\n", err.text);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    json_decref(f->body);
    json_decref(f->errors);
    free(f);
    return 0;
}

/* Sets (value != NULL, stolen) or deletes a member; path is "a" or "a.b". */
static void set(json_t *body, const char *path, json_t *value)
{
    char key[64];
    snprintf(key, sizeof(key), "%s", path);
    json_t *obj = body;
    char *dot = strchr(key, '.');
    if (dot) {
        *dot = '\0';
        obj = json_object_get(body, key);
        assert_non_null(obj);
        memmove(key, dot + 1, strlen(dot + 1) + 1);
    }
    if (value)
        assert_int_equal(json_object_set_new(obj, key, value), 0);
    else
        json_object_del(obj, key);
}

static void set_str(json_t *body, const char *path, const char *s)
{
    set(body, path, json_string(s));
}

static json_t *doc(const char *type, const char *sha, const char *uri)
{
    return json_pack("{s:s, s:s, s:s}", "type", type, "sha256", sha, "uri", uri);
}

/* The errors, as "field:code" lines, for a message on failure. */
static char *describe(json_t *errors)
{
    static char text[4096];
    size_t n = 0, i;
    json_t *e;
    text[0] = '\0';
    json_array_foreach(errors, i, e)
    {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s:%s\n",
                              json_string_value(json_object_get(e, "field")),
                              json_string_value(json_object_get(e, "code")));
        if (n >= sizeof(text))
            break;
    }
    return text;
}

/* Validates body at NOW and checks the errors are exactly want (a list of
 * "field:code" lines, in order; "" for none). */
static void expect_errors(struct fixture *f, const char *want)
{
    json_array_clear(f->errors);
    int n = request_validate(f->body, NOW, f->errors);
    const char *got = describe(f->errors);
    if (strcmp(got, want) != 0)
        fail_msg("errors differ\n-- want:\n%s-- got:\n%s", want, got);
    assert_int_equal(n, (int)json_array_size(f->errors));
}

/* ---- the whole body ---- */

static void api_example_is_valid(void **state)
{
    struct fixture *f = *state;
    expect_errors(f, "");
}

static void damaged_needs_a_damage_report(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "reason", "damaged");
    json_t *docs = json_object_get(f->body, "documents");
    json_array_set_new(docs, 1, doc("damage_report", HEX_B, "docs://2"));
    expect_errors(f, "");
    set_str(f->body, "kind", "family_record");
    expect_errors(f, "");
}

static void optional_fields_may_be_absent_or_null(void **state)
{
    struct fixture *f = *state;
    set(f->body, "address.short_address", NULL);
    set(f->body, "address.lat", NULL);
    set(f->body, "address.lon", NULL);
    expect_errors(f, "");
    set(f->body, "address.short_address", json_null());
    set(f->body, "address.lat", json_null());
    set(f->body, "address.lon", json_null());
    expect_errors(f, "");
}

/* One call lists every failing field, each once. */
static void one_call_lists_every_failing_field(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "request_no", "rq 1");
    set_str(f->body, "kind", "passport");
    set_str(f->body, "reason", "damaged");
    set_str(f->body, "national_id", "1000000009");
    set(f->body, "holder",
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "name_ar", "Mohammed", "name_en", "MOHAMMED 2",
                  "birth_date", "2090-01-01", "sex", "X", "nationality", "SA"));
    set_str(f->body, "phone", "+966401234567");
    set(f->body, "address",
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:f}", "short_address", "RRR12929", "building_no",
                  "29a9", "additional_no", "778", "postal_code", "1234", "street", "", "city", 7,
                  "lat", 95.0));
    set(f->body, "documents",
        json_pack("[o, o]", doc("loss_report", "XYZ", "docs://1"),
                  doc("passport", HEX_A, "docs://2")));
    set_str(f->body, "terms_accepted_at", "2026-11-20");
    set_str(f->body, "approved_at", "2030-01-01T00:00:00Z");
    expect_errors(f, "request_no:format\n"
                     "kind:enum\n"
                     "national_id:checksum\n"
                     "holder.name_ar:script\n"
                     "holder.name_en:format\n"
                     "holder.birth_date:future\n"
                     "holder.sex:enum\n"
                     "holder.nationality:format\n"
                     "phone:format\n"
                     "address.short_address:format\n"
                     "address.building_no:format\n"
                     "address.additional_no:format\n"
                     "address.postal_code:format\n"
                     "address.street:required\n"
                     "address.district:required\n"
                     "address.city:type\n"
                     "address.lat:range\n"
                     "address.lon:required\n"
                     "documents[0].sha256:format\n"
                     "documents[0].type:unexpected\n"
                     "documents[1].type:enum\n"
                     "documents:missing_id_copy\n"
                     "documents:missing_damage_report\n"
                     "terms_accepted_at:format\n"
                     "approved_at:future\n");
}

static const char every_field_required[] = "request_no:required\n"
                                           "kind:required\n"
                                           "reason:required\n"
                                           "national_id:required\n"
                                           "holder:required\n"
                                           "phone:required\n"
                                           "address:required\n"
                                           "documents:required\n"
                                           "terms_accepted_at:required\n"
                                           "approved_at:required\n";

static void empty_object_lists_every_required_field(void **state)
{
    struct fixture *f = *state;
    json_decref(f->body);
    f->body = json_object();
    expect_errors(f, every_field_required);
}

static void not_an_object(void **state)
{
    struct fixture *f = *state;
    json_decref(f->body);
    f->body = json_pack("[s]", "RQ-1");
    expect_errors(f, every_field_required);
    json_decref(f->body);
    f->body = NULL;
    expect_errors(f, every_field_required);
}

/* Errors already in the array stay; the count is of the new ones. */
static void appends_and_counts(void **state)
{
    struct fixture *f = *state;
    json_array_append_new(f->errors, json_string("earlier"));
    set_str(f->body, "phone", "0501234567");
    set_str(f->body, "national_id", "3000000004");
    assert_int_equal(request_validate(f->body, NOW, f->errors), 2);
    assert_int_equal(json_array_size(f->errors), 3);
    assert_string_equal(json_string_value(json_array_get(f->errors, 0)), "earlier");
}

/* ---- identifiers ---- */

static void national_id_codes(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "national_id", "1234567897"); /* valid: see test_ids.c */
    expect_errors(f, "");
    set_str(f->body, "national_id", "2987654320");
    expect_errors(f, "");
    set_str(f->body, "national_id", "1000000009"); /* right shape, wrong check digit */
    expect_errors(f, "national_id:checksum\n");
    set_str(f->body, "national_id", "3000000004"); /* Luhn holds, first digit 3 */
    expect_errors(f, "national_id:format\n");
    set_str(f->body, "national_id", "100000000");
    expect_errors(f, "national_id:format\n");
    set_str(f->body, "national_id", "10000000a8");
    expect_errors(f, "national_id:format\n");
    set_str(f->body, "national_id", "10000000080");
    expect_errors(f, "national_id:length\n");
    set_str(f->body, "national_id", "");
    expect_errors(f, "national_id:required\n");
    set(f->body, "national_id", json_integer(1000000008));
    expect_errors(f, "national_id:type\n");
    set(f->body, "national_id", json_null());
    expect_errors(f, "national_id:required\n");
}

static void request_no_codes(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "request_no", "0123456789ABCDEFGHIJKLMNOPQRSTUV");
    expect_errors(f, "");
    set_str(f->body, "request_no", "rq-2026-000123");
    expect_errors(f, "request_no:format\n");
    set_str(f->body, "request_no", "RQ_2026");
    expect_errors(f, "request_no:format\n");
    set_str(f->body, "request_no", "0123456789ABCDEFGHIJKLMNOPQRSTUVW");
    expect_errors(f, "request_no:length\n");
    set(f->body, "request_no", NULL);
    expect_errors(f, "request_no:required\n");
}

static void phone_codes(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = { "+966401234567", "0501234567", "+96650123456",
                                       "966501234567", "+9665O1234567" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_str(f->body, "phone", bad[i]);
        expect_errors(f, "phone:format\n");
    }
    set_str(f->body, "phone", "+9665012345678");
    expect_errors(f, "phone:length\n");
    set(f->body, "phone", json_integer(966501234567));
    expect_errors(f, "phone:type\n");
}

static void kind_and_reason(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "kind", "passport");
    set_str(f->body, "reason", "stolen");
    expect_errors(f, "kind:enum\nreason:enum\n");
    set_str(f->body, "kind", "National_ID");
    set(f->body, "reason", NULL);
    expect_errors(f, "kind:enum\nreason:required\n");
}

static void holder_fields(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "holder.name_en", "Mohammed O'Neil-Smith");
    expect_errors(f, "");
    set_str(f->body, "holder.name_ar", "MOHAMMED");
    set_str(f->body, "holder.name_en", " - ");
    set_str(f->body, "holder.birth_date", "1990-02-30");
    set_str(f->body, "holder.sex", "m");
    set_str(f->body, "holder.nationality", "Saudi");
    expect_errors(f, "holder.name_ar:script\nholder.name_en:format\nholder.birth_date:format\n"
                     "holder.sex:enum\nholder.nationality:length\n");
    set(f->body, "holder", json_string("Mohammed"));
    expect_errors(f, "holder:type\n");
    set(f->body, "holder", json_object());
    expect_errors(f,
                  "holder.name_ar:required\nholder.name_en:required\nholder.birth_date:required\n"
                  "holder.sex:required\nholder.nationality:required\n");
}

/* Born "today" in Riyadh is fine; tomorrow is not. NOW is 2026-11-21 12:00 Riyadh. */
static void holder_birth_date_future(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "holder.birth_date", "2026-11-21");
    expect_errors(f, "");
    set_str(f->body, "holder.birth_date", "2026-11-22");
    expect_errors(f, "holder.birth_date:future\n");
}

/* ---- address ---- */

static void address_number_fields(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "address.building_no", "292");
    set_str(f->body, "address.additional_no", "77a8");
    set_str(f->body, "address.postal_code", "1234");
    expect_errors(f, "address.building_no:format\naddress.additional_no:format\n"
                     "address.postal_code:format\n");
    set_str(f->body, "address.building_no", "29290");
    set_str(f->body, "address.additional_no", "");
    set_str(f->body, "address.postal_code", "123456");
    expect_errors(f, "address.building_no:length\naddress.additional_no:required\n"
                     "address.postal_code:length\n");
    set(f->body, "address.building_no", json_integer(2929));
    set(f->body, "address.additional_no", NULL);
    set(f->body, "address.postal_code", json_null());
    expect_errors(f, "address.building_no:type\naddress.additional_no:required\n"
                     "address.postal_code:required\n");
}

static void address_text_fields(void **state)
{
    struct fixture *f = *state;
    char long_text[202];
    memset(long_text, 'x', 201);
    long_text[201] = '\0';
    set_str(f->body, "address.street", long_text);
    set(f->body, "address.district", json_integer(1));
    set(f->body, "address.city", NULL);
    expect_errors(f, "address.street:length\naddress.district:type\naddress.city:required\n");
    long_text[200] = '\0'; /* 200 characters: the limit */
    set_str(f->body, "address.street", long_text);
    set_str(f->body, "address.district", "العليا");
    set_str(f->body, "address.city", "الرياض");
    expect_errors(f, "");
}

static void address_short_address(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = { "RRR12929", "rrrd2929", "RRRD292", "RRRD29299",
                                       "RRRDD929", "RRRD29A9", "",        "1234RRRD" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_str(f->body, "address.short_address", bad[i]);
        expect_errors(f, "address.short_address:format\n");
    }
    set(f->body, "address.short_address", json_integer(12345678));
    expect_errors(f, "address.short_address:type\n");
    set_str(f->body, "address.short_address", "ABCD0000");
    expect_errors(f, "");
}

static void address_coordinates(void **state)
{
    struct fixture *f = *state;
    set(f->body, "address.lon", NULL);
    expect_errors(f, "address.lon:required\n");
    set(f->body, "address.lon", json_real(46.685));
    set(f->body, "address.lat", json_null());
    expect_errors(f, "address.lat:required\n");

    set(f->body, "address.lat", json_real(90.0001));
    set(f->body, "address.lon", json_real(-180.5));
    expect_errors(f, "address.lat:range\naddress.lon:range\n");
    set(f->body, "address.lat", json_real(-90.5));
    set(f->body, "address.lon", json_real(180.0001));
    expect_errors(f, "address.lat:range\naddress.lon:range\n");
    set(f->body, "address.lat", json_integer(-90));
    set(f->body, "address.lon", json_real(180.0));
    expect_errors(f, "");
    set(f->body, "address.lat", json_string("24.69"));
    expect_errors(f, "address.lat:type\n");
}

static void address_missing_or_wrong_type(void **state)
{
    struct fixture *f = *state;
    set(f->body, "address", json_pack("[]"));
    expect_errors(f, "address:type\n");
    set(f->body, "address", NULL);
    expect_errors(f, "address:required\n");
}

/* ---- documents ---- */

static void documents_missing_report(void **state)
{
    struct fixture *f = *state;
    json_array_remove(json_object_get(f->body, "documents"), 1);
    expect_errors(f, "documents:missing_loss_report\n");
    set_str(f->body, "reason", "damaged");
    expect_errors(f, "documents:missing_damage_report\n");
}

static void documents_missing_id_copy(void **state)
{
    struct fixture *f = *state;
    json_array_remove(json_object_get(f->body, "documents"), 0);
    expect_errors(f, "documents:missing_id_copy\n");
    set(f->body, "documents", json_array());
    expect_errors(f, "documents:missing_id_copy\ndocuments:missing_loss_report\n");
}

static void documents_unexpected_report(void **state)
{
    struct fixture *f = *state;
    /* a loss report on a damaged card: unexpected, and the damage report is missing */
    set_str(f->body, "reason", "damaged");
    expect_errors(f, "documents[1].type:unexpected\ndocuments:missing_damage_report\n");
    /* both reports on a lost card: the damage report is unexpected */
    set_str(f->body, "reason", "lost");
    json_array_append_new(json_object_get(f->body, "documents"),
                          doc("damage_report", HEX_A, "docs://3"));
    expect_errors(f, "documents[2].type:unexpected\n");
}

static void documents_duplicates(void **state)
{
    struct fixture *f = *state;
    json_t *docs = json_object_get(f->body, "documents");
    json_array_append_new(docs, doc("id_copy", HEX_B, "docs://3"));
    json_array_append_new(docs, doc("loss_report", HEX_A, "docs://4"));
    expect_errors(f, "documents[2].type:duplicate\ndocuments[3].type:duplicate\n");
}

static void documents_entries(void **state)
{
    struct fixture *f = *state;
    json_t *docs = json_object_get(f->body, "documents");
    json_array_append_new(docs, doc("passport", HEX_A, "docs://3"));
    json_array_append_new(docs, json_string("id_copy"));
    json_array_append_new(docs, json_pack("{s:s}", "type", "id_copy"));
    json_array_append_new(
        docs, doc("loss_report", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                  "docs://6"));
    expect_errors(f, "documents[2].type:enum\n"
                     "documents[3]:type\n"
                     "documents[4].sha256:required\n"
                     "documents[4].uri:required\n"
                     "documents[4].type:duplicate\n"
                     "documents[5].sha256:format\n"
                     "documents[5].type:duplicate\n");
}

static void documents_digest_shape(void **state)
{
    struct fixture *f = *state;
    json_t *docs = json_object_get(f->body, "documents");
    /* 63 hex digits */
    json_array_set_new(docs, 0, doc("id_copy", &HEX_A[1], "docs://1"));
    expect_errors(f, "documents[0].sha256:format\n");
    /* 65 hex digits */
    json_array_set_new(docs, 0, doc("id_copy", HEX_A "a", "docs://1"));
    expect_errors(f, "documents[0].sha256:length\n");
    /* 64 characters, one not hex */
    json_array_set_new(docs, 0,
                       doc("id_copy",
                           "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                           "docs://1"));
    expect_errors(f, "documents[0].sha256:format\n");
}

static void documents_container(void **state)
{
    struct fixture *f = *state;
    set(f->body, "documents", json_object());
    expect_errors(f, "documents:type\n");
    set(f->body, "documents", NULL);
    expect_errors(f, "documents:required\n");
    json_t *many = json_array();
    json_array_append_new(many, doc("id_copy", HEX_A, "docs://1"));
    json_array_append_new(many, doc("loss_report", HEX_A, "docs://2"));
    for (int i = 0; i < 7; i++)
        json_array_append_new(many, doc("id_copy", HEX_A, "docs://x"));
    set(f->body, "documents", many);
    expect_errors(f, "documents:length\n");
}

/* ---- timestamps ---- */

static void timestamps_format(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "terms_accepted_at", "2026-11-20 10:00:00Z");
    set_str(f->body, "approved_at", "2026-11-21T08:00:00");
    expect_errors(f, "terms_accepted_at:format\napproved_at:format\n");
    set_str(f->body, "terms_accepted_at", "20/11/2026");
    set(f->body, "approved_at", json_integer(APPROVED));
    expect_errors(f, "terms_accepted_at:format\napproved_at:type\n");
}

static void timestamps_future(void **state)
{
    struct fixture *f = *state;
    char t[21];
    timestamp_format(NOW + 3600, t);
    set_str(f->body, "approved_at", t);
    expect_errors(f, "approved_at:future\n");
    set_str(f->body, "terms_accepted_at", t);
    expect_errors(f, "terms_accepted_at:future\napproved_at:future\n");
    /* a clock a little ahead of ours (up to two minutes) is tolerated */
    timestamp_format(NOW + 120, t);
    set_str(f->body, "terms_accepted_at", t);
    set_str(f->body, "approved_at", t);
    expect_errors(f, "");
    timestamp_format(NOW + 121, t);
    set_str(f->body, "approved_at", t);
    expect_errors(f, "approved_at:future\n");
}

static void timestamps_order(void **state)
{
    struct fixture *f = *state;
    set_str(f->body, "terms_accepted_at", "2026-11-21T08:00:00Z"); /* equal: fine */
    expect_errors(f, "");
    set_str(f->body, "terms_accepted_at", "2026-11-21T08:00:01Z");
    expect_errors(f, "terms_accepted_at:after_approval\n");
    set_str(f->body, "terms_accepted_at", "2026-11-21T11:00:01+03:00");
    expect_errors(f, "terms_accepted_at:after_approval\n");
    /* Fractions and leap seconds count as PostgreSQL counts them. */
    set_str(f->body, "approved_at", "2026-11-21T08:00:00.1Z");
    set_str(f->body, "terms_accepted_at", "2026-11-21T08:00:00.9Z");
    expect_errors(f, "terms_accepted_at:after_approval\n");
    set_str(f->body, "terms_accepted_at", "2026-11-21T08:00:00.0999999Z"); /* rounds to .1 */
    expect_errors(f, "");
    set_str(f->body, "approved_at", "2026-11-21T07:59:60Z"); /* 08:00:00 */
    set_str(f->body, "terms_accepted_at", "2026-11-21T08:00:00Z");
    expect_errors(f, "");
    set_str(f->body, "terms_accepted_at", "2026-11-21T07:59:60.5Z");
    expect_errors(f, "terms_accepted_at:after_approval\n");
}

/* ---- the estimate ---- */

static void check_estimate(const char *approved_at, const long *holidays, size_t n,
                           const char *earliest, const char *latest)
{
    time_t approved;
    long e = 0, l = 0;
    char es[11], ls[11];
    assert_int_equal(timestamp_parse(approved_at, &approved), 0);
    request_estimate(approved, holidays, n, &e, &l);
    date_format(e, es);
    date_format(l, ls);
    assert_string_equal(es, earliest);
    assert_string_equal(ls, latest);
}

static long day(const char *date)
{
    long d = 0;
    assert_int_equal(date_parse(date, &d), 0);
    return d;
}

/* Approved Saturday 2026-11-21: Sun 22 (1) Mon 23 (2) Tue 24 (3) Wed 25 (4)
 * Thu 26 (5); Fri 27, Sat 28 weekend; Sun 29 (6) Mon 30 (7). */
static void estimate_api_example(void **state)
{
    (void)state;
    check_estimate("2026-11-21T08:00:00Z", NULL, 0, "2026-11-26", "2026-11-30");
}

/* Approved Sunday 2026-09-20, Saudi National Day Wednesday 23 September:
 * Mon 21 (1) Tue 22 (2) [Wed 23] Thu 24 (3) [Fri, Sat] Sun 27 (4) Mon 28 (5)
 * Tue 29 (6) Wed 30 (7). Without the holiday: 27 and 29 September. */
static void estimate_skips_a_holiday(void **state)
{
    (void)state;
    long holidays[] = { day("2026-09-23") };
    check_estimate("2026-09-20T08:00:00Z", holidays, 1, "2026-09-28", "2026-09-30");
    check_estimate("2026-09-20T08:00:00Z", NULL, 0, "2026-09-27", "2026-09-29");
}

/* A holiday week Mon 23 - Thu 26 November, plus a holiday on Friday 27
 * that falls on the weekend anyway. From Saturday 21: Sun 22 (1) Sun 29 (2)
 * Mon 30 (3) Tue 1 (4) Wed 2 (5) Thu 3 (6) Sun 6 (7). */
static void estimate_across_holidays_and_weekends(void **state)
{
    (void)state;
    long holidays[] = { day("2026-11-23"), day("2026-11-24"), day("2026-11-25"), day("2026-11-26"),
                        day("2026-11-27") };
    check_estimate("2026-11-21T08:00:00Z", holidays, 5, "2026-12-02", "2026-12-06");
}

/* 21:30 UTC on Tuesday 1 December is 00:30 on Wednesday 2 December in
 * Riyadh, so counting starts from Wednesday: Thu 3 (1) Sun 6 (2) Mon 7 (3)
 * Tue 8 (4) Wed 9 (5) Thu 10 (6) Sun 13 (7). One second before 21:00 UTC it
 * is still Tuesday: Wed 2 (1) ... Tue 8 (5) ... Thu 10 (7). */
static void estimate_uses_the_riyadh_date(void **state)
{
    (void)state;
    check_estimate("2026-12-01T21:30:00Z", NULL, 0, "2026-12-09", "2026-12-13");
    check_estimate("2026-12-01T21:00:00Z", NULL, 0, "2026-12-09", "2026-12-13");
    check_estimate("2026-12-01T20:59:59Z", NULL, 0, "2026-12-08", "2026-12-10");
    check_estimate("2026-12-02T00:30:00+03:00", NULL, 0, "2026-12-09", "2026-12-13");
}

/* Approved late on Thursday 26 November or early on Friday 27 (Riyadh):
 * both count from Sunday 29: Thu 3 December (5), Mon 7 December (7). */
static void estimate_from_the_weekend(void **state)
{
    (void)state;
    check_estimate("2026-11-26T20:59:59Z", NULL, 0, "2026-12-03", "2026-12-07");
    check_estimate("2026-11-26T22:30:00Z", NULL, 0, "2026-12-03", "2026-12-07");
    check_estimate("2026-11-28T12:00:00Z", NULL, 0, "2026-12-03", "2026-12-07");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(api_example_is_valid),
        T(damaged_needs_a_damage_report),
        T(optional_fields_may_be_absent_or_null),
        T(one_call_lists_every_failing_field),
        T(empty_object_lists_every_required_field),
        T(not_an_object),
        T(appends_and_counts),
        T(national_id_codes),
        T(request_no_codes),
        T(phone_codes),
        T(kind_and_reason),
        T(holder_fields),
        T(holder_birth_date_future),
        T(address_number_fields),
        T(address_text_fields),
        T(address_short_address),
        T(address_coordinates),
        T(address_missing_or_wrong_type),
        T(documents_missing_report),
        T(documents_missing_id_copy),
        T(documents_unexpected_report),
        T(documents_duplicates),
        T(documents_entries),
        T(documents_digest_shape),
        T(documents_container),
        T(timestamps_format),
        T(timestamps_future),
        T(timestamps_order),
        cmocka_unit_test(estimate_api_example),
        cmocka_unit_test(estimate_skips_a_holiday),
        cmocka_unit_test(estimate_across_holidays_and_weekends),
        cmocka_unit_test(estimate_uses_the_riyadh_date),
        cmocka_unit_test(estimate_from_the_weekend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
