/* requests.c — intake of approved requests. */
#include "requests.h"
#include "calendar.h"
#include "db.h"
#include "ids.h"
#include "fields.h"
#include "refdata.h"
#include "store_request.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOCK_SKEW_S 120
#define MAX_TEXT     200

/* A required string field: its text, or NULL after recording the error. */
static const char *want_string(json_t *obj, const char *key, const char *field, size_t maxlen,
                               json_t *errors)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        field_error(errors, field, "required");
        return NULL;
    }
    if (!json_is_string(v)) {
        field_error(errors, field, "type");
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0) {
        field_error(errors, field, "required");
        return NULL;
    }
    if (n > maxlen) {
        field_error(errors, field, "length");
        return NULL;
    }
    return s;
}

static void check_enum(json_t *obj, const char *key, const char *const *allowed, json_t *errors)
{
    const char *s = want_string(obj, key, key, 32, errors);
    if (!s)
        return;
    for (; *allowed; allowed++)
        if (strcmp(s, *allowed) == 0)
            return;
    field_error(errors, key, "enum");
}

/* Holds at least one letter of the Arabic block (U+0600..U+06FF). */
static bool has_arabic(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p == 0xD8 || *p == 0xD9 || *p == 0xDA || *p == 0xDB) && (p[1] & 0xC0) == 0x80)
            return true;
    return false;
}

static void check_holder(json_t *body, time_t now, json_t *errors)
{
    json_t *h = json_object_get(body, "holder");
    if (!json_is_object(h)) {
        field_error(errors, "holder", h ? "type" : "required");
        return;
    }
    const char *s = want_string(h, "name_ar", "holder.name_ar", MAX_TEXT, errors);
    if (s && !has_arabic(s))
        field_error(errors, "holder.name_ar", "script");
    s = want_string(h, "name_en", "holder.name_en", 100, errors);
    if (s && (!all_of(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz '-") ||
              strspn(s, " '-") == strlen(s)))
        field_error(errors, "holder.name_en", "format");
    s = want_string(h, "birth_date", "holder.birth_date", 10, errors);
    long day;
    if (s && date_parse(s, &day) != 0)
        field_error(errors, "holder.birth_date", "format");
    else if (s && day > riyadh_day(now))
        field_error(errors, "holder.birth_date", "future");
    s = want_string(h, "sex", "holder.sex", 1, errors);
    if (s && strcmp(s, "M") != 0 && strcmp(s, "F") != 0)
        field_error(errors, "holder.sex", "enum");
    s = want_string(h, "nationality", "holder.nationality", 3, errors);
    if (s && (strlen(s) != 3 || !all_of(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")))
        field_error(errors, "holder.nationality", "format");
}

static void check_digits_field(json_t *a, const char *key, const char *field, unsigned n,
                               json_t *errors)
{
    const char *s = want_string(a, key, field, n, errors);
    if (s && !all_digits(s, n))
        field_error(errors, field, "format");
}

static void check_coordinate(json_t *a, const char *key, const char *field, double limit,
                             json_t *errors, int *present)
{
    json_t *v = json_object_get(a, key);
    if (!v || json_is_null(v))
        return;
    (*present)++;
    if (!json_is_number(v)) {
        field_error(errors, field, "type");
        return;
    }
    double x = json_number_value(v);
    if (!isfinite(x) || x < -limit || x > limit)
        field_error(errors, field, "range");
}

static void check_address(json_t *body, json_t *errors)
{
    json_t *a = json_object_get(body, "address");
    if (!json_is_object(a)) {
        field_error(errors, "address", a ? "type" : "required");
        return;
    }
    json_t *sa = json_object_get(a, "short_address");
    if (sa && !json_is_null(sa)) {
        const char *s = json_string_value(sa);
        if (!s)
            field_error(errors, "address.short_address", "type");
        else if (strlen(s) != 8 || !all_of(s + 4, "0123456789") ||
                 strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 4)
            field_error(errors, "address.short_address", "format");
    }
    check_digits_field(a, "building_no", "address.building_no", 4, errors);
    check_digits_field(a, "additional_no", "address.additional_no", 4, errors);
    check_digits_field(a, "postal_code", "address.postal_code", 5, errors);
    want_string(a, "street", "address.street", MAX_TEXT, errors);
    want_string(a, "district", "address.district", MAX_TEXT, errors);
    want_string(a, "city", "address.city", MAX_TEXT, errors);
    int present = 0;
    check_coordinate(a, "lat", "address.lat", 90, errors, &present);
    check_coordinate(a, "lon", "address.lon", 180, errors, &present);
    if (present == 1)
        field_error(errors,
                    json_object_get(a, "lat") && !json_is_null(json_object_get(a, "lat"))
                        ? "address.lon"
                        : "address.lat",
                    "required");
}

static void check_documents(json_t *body, json_t *errors)
{
    json_t *docs = json_object_get(body, "documents");
    if (!json_is_array(docs)) {
        field_error(errors, "documents", docs ? "type" : "required");
        return;
    }
    if (json_array_size(docs) > 8) {
        field_error(errors, "documents", "length");
        return;
    }
    const char *reason = json_string_value(json_object_get(body, "reason"));
    const char *report = reason && strcmp(reason, "damaged") == 0 ? "damage_report" : "loss_report";
    bool have_id = false, have_report = false;
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        char field[64];
        snprintf(field, sizeof(field), "documents[%zu]", i);
        if (!json_is_object(d)) {
            field_error(errors, field, "type");
            continue;
        }
        char f_type[80], f_sha[80], f_uri[80];
        snprintf(f_type, sizeof(f_type), "%s.type", field);
        snprintf(f_sha, sizeof(f_sha), "%s.sha256", field);
        snprintf(f_uri, sizeof(f_uri), "%s.uri", field);
        const char *type = want_string(d, "type", f_type, 32, errors);
        const char *sha = want_string(d, "sha256", f_sha, 64, errors);
        const char *uri = want_string(d, "uri", f_uri, 512, errors);
        (void)uri;
        if (sha && (strlen(sha) != 64 || !all_of(sha, "0123456789abcdef")))
            field_error(errors, f_sha, "format");
        if (!type)
            continue;
        bool *seen = NULL;
        if (strcmp(type, "id_copy") == 0)
            seen = &have_id;
        else if (strcmp(type, report) == 0)
            seen = &have_report;
        else if (strcmp(type, "loss_report") == 0 || strcmp(type, "damage_report") == 0)
            field_error(errors, f_type, "unexpected");
        else
            field_error(errors, f_type, "enum");
        if (seen && *seen)
            field_error(errors, f_type, "duplicate");
        if (seen)
            *seen = true;
    }
    if (!have_id)
        field_error(errors, "documents", "missing_id_copy");
    if (reason && (strcmp(reason, "lost") == 0 || strcmp(reason, "damaged") == 0) && !have_report)
        field_error(errors, "documents",
                    strcmp(reason, "lost") == 0 ? "missing_loss_report" : "missing_damage_report");
}

/* Compared to the microsecond, as the table's CHECK compares them: a
 * fraction that orders two times here orders them there too. */
static void check_times(json_t *body, time_t now, json_t *errors)
{
    int64_t terms = 0, approved = 0, latest = ((int64_t)now + CLOCK_SKEW_S) * 1000000;
    const char *s = want_string(body, "terms_accepted_at", "terms_accepted_at", 40, errors);
    bool terms_ok = s && timestamp_parse_us(s, &terms) == 0;
    if (s && !terms_ok)
        field_error(errors, "terms_accepted_at", "format");
    s = want_string(body, "approved_at", "approved_at", 40, errors);
    bool approved_ok = s && timestamp_parse_us(s, &approved) == 0;
    if (s && !approved_ok)
        field_error(errors, "approved_at", "format");
    if (terms_ok && terms > latest) {
        field_error(errors, "terms_accepted_at", "future");
        terms_ok = false;
    }
    if (approved_ok && approved > latest) {
        field_error(errors, "approved_at", "future");
        approved_ok = false;
    }
    if (terms_ok && approved_ok && terms > approved)
        field_error(errors, "terms_accepted_at", "after_approval");
}

int request_validate(json_t *body, time_t now, json_t *errors)
{
    size_t before = json_array_size(errors);
    static const char *const kinds[] = { "national_id", "family_record", NULL };
    static const char *const reasons[] = { "lost", "damaged", NULL };

    const char *s = want_string(body, "request_no", "request_no", 32, errors);
    if (s && !request_no_valid(s))
        field_error(errors, "request_no", "format");
    check_enum(body, "kind", kinds, errors);
    check_enum(body, "reason", reasons, errors);
    s = want_string(body, "national_id", "national_id", 10, errors);
    if (s) {
        int rc = national_id_check(s);
        if (rc == -1)
            field_error(errors, "national_id", "format");
        else if (rc == -2)
            field_error(errors, "national_id", "checksum");
    }
    check_holder(body, now, errors);
    s = want_string(body, "phone", "phone", 13, errors);
    if (s && !phone_valid(s))
        field_error(errors, "phone", "format");
    check_address(body, errors);
    check_documents(body, errors);
    check_times(body, now, errors);
    return (int)(json_array_size(errors) - before);
}

void request_estimate(time_t approved, const long *holidays, size_t nholidays, long *earliest,
                      long *latest)
{
    long day = riyadh_day(approved);
    *earliest = add_working_days(day, 5, holidays, nholidays);
    *latest = add_working_days(day, 7, holidays, nholidays);
}

/* ---- handlers ---- */

static void sha256_hex(const char *data, size_t len, char out[2 + 65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    strcpy(out, "\\x");
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 + 2 * i, "%02x", md[i]);
}

static json_t *summary(const char *request_no, const char *status, const char *earliest,
                       const char *latest)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}}", "request_no", request_no, "status", status,
                     "estimated_delivery", "earliest", earliest, "latest", latest);
}

/* Answers a re-submission of an existing request_no: the same body is the
 * same request, answered whole (200); another body is a conflict (409). */
static void answer_existing(struct http_req *rq, struct db *db, const char *request_no,
                            const char *body_hash)
{
    json_t *record = NULL;
    bool same = false;
    int rc = request_record(db, request_no, body_hash, &same, &record);
    if (rc)
        http_internal_error(rq, "re-submission look-up failed");
    else if (same)
        http_json(rq, 200, json_incref(record));
    else
        http_problem(rq, 409, "conflict", "Conflict",
                     "A different request with this request_no was already received.", NULL);
    json_decref(record);
}

/* Every rule of the body, and a known city for an address without
 * coordinates (it is placed at its city's centre). Answers and returns
 * false when the body is refused. */
static bool body_acceptable(struct http_req *rq, struct db *db, time_t now)
{
    json_t *errors = json_array();
    request_validate(rq->json, now, errors);
    json_t *addr = json_object_get(rq->json, "address");
    const char *city =
        json_is_object(addr) ? json_string_value(json_object_get(addr, "city")) : NULL;
    if (city && !json_is_number(json_object_get(addr, "lat")) && json_array_size(errors) == 0) {
        int known = refdata_city_known(db, city);
        if (known < 0) {
            json_decref(errors);
            http_internal_error(rq, "city look-up failed");
            return false;
        }
        if (!known)
            field_error(errors, "address.city", "unknown_city");
    }
    if (json_array_size(errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     errors);
        return false;
    }
    json_decref(errors);
    return true;
}

/* The estimated delivery window of a request approved at approved_at. */
static int estimate(struct db *db, const char *approved_at, char e1[11], char e2[11])
{
    long holidays[64], earliest, latest;
    time_t approved = 0;
    timestamp_parse(approved_at, &approved);
    int nh = refdata_holidays_after(db, riyadh_day(approved), holidays, 64);
    if (nh < 0)
        return nh;
    request_estimate(approved, holidays, (size_t)nh, &earliest, &latest);
    date_format(earliest, e1);
    date_format(latest, e2);
    return 0;
}

void requests_create(struct http_req *rq)
{
    struct db *db = http_db(rq);
    if (!db || !body_acceptable(rq, db, time(NULL)))
        return;
    /* The canonical form (sorted keys, compact) decides whether a
     * re-submission carries the same body. */
    char *canonical = json_dumps(rq->json, JSON_COMPACT | JSON_SORT_KEYS);
    if (!canonical) {
        http_internal_error(rq, "out of memory");
        return;
    }
    char body_hash[2 + 65], e1[11], e2[11];
    sha256_hex(canonical, strlen(canonical), body_hash);
    const char *request_no = json_string_value(json_object_get(rq->json, "request_no"));
    if (estimate(db, json_string_value(json_object_get(rq->json, "approved_at")), e1, e2) < 0) {
        http_internal_error(rq, "holiday look-up failed");
        goto out;
    }
    const struct request_intake in = { rq->json, canonical, body_hash, e1, e2 };
    int rc = request_create(db, &in, rq->who.name);
    if (rc == -EBUSY) {
        http_problem(rq, 409, "active_request", "Conflict",
                     "The holder already has an active request of this kind.",
                     json_pack("[{s:s, s:s}]", "field", "national_id", "code", "active_request"));
    } else if (rc == -EEXIST) {
        answer_existing(rq, db, request_no, body_hash);
    } else if (rc) {
        http_internal_error(rq, db_error_message(db));
    } else {
        log_info("request %s queued", request_no);
        http_json(rq, 201, summary(request_no, "queued", e1, e2));
    }
out:
    free(canonical);
}

void requests_get(struct http_req *rq)
{
    if (!request_no_valid(rq->param[0])) {
        http_problem(rq, 404, "not_found", "Not found", "No such request.", NULL);
        return;
    }
    struct db *db = http_db(rq);
    if (!db)
        return;
    json_t *record = NULL;
    int rc = request_record(db, rq->param[0], NULL, NULL, &record);
    if (rc == -ENOENT)
        http_problem(rq, 404, "not_found", "Not found", "No such request.", NULL);
    else if (rc)
        http_internal_error(rq, rc == -ENOMEM ? "record did not parse" : db_error_message(db));
    else
        http_json(rq, 200, record);
}

void requests_cancel(struct http_req *rq)
{
    if (!request_no_valid(rq->param[0])) {
        http_problem(rq, 404, "not_found", "Not found", "No such request.", NULL);
        return;
    }
    const char *why = rq->json ? json_string_value(json_object_get(rq->json, "reason")) : NULL;
    if (why && strlen(why) > MAX_TEXT) {
        http_problem(rq, 422, "validation", "Invalid request", "The reason is too long.",
                     json_pack("[{s:s, s:s}]", "field", "reason", "code", "length"));
        return;
    }
    struct db *db = http_db(rq);
    if (!db)
        return;
    json_t *dj = json_pack("{s:s?}", "reason", why);
    char *detail = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);
    char status[32] = "";
    int rc = request_cancel(db, rq->param[0], rq->who.name, detail ? detail : "{}", status);
    free(detail);
    if (rc == -ENOENT) {
        http_problem(rq, 404, "not_found", "Not found", "No such request.", NULL);
    } else if (rc == -EPERM) {
        char text[128];
        snprintf(text, sizeof(text), "The request is %s; it can no longer be cancelled.", status);
        http_problem(rq, 409, "not_cancellable", "Conflict", text, NULL);
    } else if (rc && rc != -EALREADY) {
        http_internal_error(rq, db_error_message(db));
    } else {
        http_json(rq, 200,
                  json_pack("{s:s, s:s}", "request_no", rq->param[0], "status", "cancelled"));
    }
}
