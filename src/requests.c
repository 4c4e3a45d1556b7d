/* requests.c — intake of approved requests. */
#include "requests.h"
#include "calendar.h"
#include "db.h"
#include "ids.h"
#include "journal.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOCK_SKEW_S 120
#define MAX_TEXT     200

static void fail(json_t *errors, const char *field, const char *code)
{
    json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "code", code));
}

/* A required string field: its text, or NULL after recording the error. */
static const char *want_string(json_t *obj, const char *key, const char *field, size_t maxlen,
                               json_t *errors)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        fail(errors, field, "required");
        return NULL;
    }
    if (!json_is_string(v)) {
        fail(errors, field, "type");
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0) {
        fail(errors, field, "required");
        return NULL;
    }
    if (n > maxlen) {
        fail(errors, field, "length");
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
    fail(errors, key, "enum");
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
        fail(errors, "holder", h ? "type" : "required");
        return;
    }
    const char *s = want_string(h, "name_ar", "holder.name_ar", MAX_TEXT, errors);
    if (s && !has_arabic(s))
        fail(errors, "holder.name_ar", "script");
    s = want_string(h, "name_en", "holder.name_en", 100, errors);
    if (s && (!all_of(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz '-") ||
              strspn(s, " '-") == strlen(s)))
        fail(errors, "holder.name_en", "format");
    s = want_string(h, "birth_date", "holder.birth_date", 10, errors);
    long day;
    if (s && date_parse(s, &day) != 0)
        fail(errors, "holder.birth_date", "format");
    else if (s && day > riyadh_day(now))
        fail(errors, "holder.birth_date", "future");
    s = want_string(h, "sex", "holder.sex", 1, errors);
    if (s && strcmp(s, "M") != 0 && strcmp(s, "F") != 0)
        fail(errors, "holder.sex", "enum");
    s = want_string(h, "nationality", "holder.nationality", 3, errors);
    if (s && (strlen(s) != 3 || !all_of(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")))
        fail(errors, "holder.nationality", "format");
}

static void check_digits_field(json_t *a, const char *key, const char *field, unsigned n,
                               json_t *errors)
{
    const char *s = want_string(a, key, field, n, errors);
    if (s && !all_digits(s, n))
        fail(errors, field, "format");
}

static void check_coordinate(json_t *a, const char *key, const char *field, double limit,
                             json_t *errors, int *present)
{
    json_t *v = json_object_get(a, key);
    if (!v || json_is_null(v))
        return;
    (*present)++;
    if (!json_is_number(v)) {
        fail(errors, field, "type");
        return;
    }
    double x = json_number_value(v);
    if (!isfinite(x) || x < -limit || x > limit)
        fail(errors, field, "range");
}

static void check_address(json_t *body, json_t *errors)
{
    json_t *a = json_object_get(body, "address");
    if (!json_is_object(a)) {
        fail(errors, "address", a ? "type" : "required");
        return;
    }
    json_t *sa = json_object_get(a, "short_address");
    if (sa && !json_is_null(sa)) {
        const char *s = json_string_value(sa);
        if (!s)
            fail(errors, "address.short_address", "type");
        else if (strlen(s) != 8 || !all_of(s + 4, "0123456789") ||
                 strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 4)
            fail(errors, "address.short_address", "format");
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
        fail(errors,
             json_object_get(a, "lat") && !json_is_null(json_object_get(a, "lat")) ? "address.lon"
                                                                                   : "address.lat",
             "required");
}

static void check_documents(json_t *body, json_t *errors)
{
    json_t *docs = json_object_get(body, "documents");
    if (!json_is_array(docs)) {
        fail(errors, "documents", docs ? "type" : "required");
        return;
    }
    if (json_array_size(docs) > 8) {
        fail(errors, "documents", "length");
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
            fail(errors, field, "type");
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
            fail(errors, f_sha, "format");
        if (!type)
            continue;
        bool *seen = NULL;
        if (strcmp(type, "id_copy") == 0)
            seen = &have_id;
        else if (strcmp(type, report) == 0)
            seen = &have_report;
        else if (strcmp(type, "loss_report") == 0 || strcmp(type, "damage_report") == 0)
            fail(errors, f_type, "unexpected");
        else
            fail(errors, f_type, "enum");
        if (seen && *seen)
            fail(errors, f_type, "duplicate");
        if (seen)
            *seen = true;
    }
    if (!have_id)
        fail(errors, "documents", "missing_id_copy");
    if (reason && (strcmp(reason, "lost") == 0 || strcmp(reason, "damaged") == 0) && !have_report)
        fail(errors, "documents",
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
        fail(errors, "terms_accepted_at", "format");
    s = want_string(body, "approved_at", "approved_at", 40, errors);
    bool approved_ok = s && timestamp_parse_us(s, &approved) == 0;
    if (s && !approved_ok)
        fail(errors, "approved_at", "format");
    if (terms_ok && terms > latest) {
        fail(errors, "terms_accepted_at", "future");
        terms_ok = false;
    }
    if (approved_ok && approved > latest) {
        fail(errors, "approved_at", "future");
        approved_ok = false;
    }
    if (terms_ok && approved_ok && terms > approved)
        fail(errors, "terms_accepted_at", "after_approval");
}

int request_validate(json_t *body, time_t now, json_t *errors)
{
    size_t before = json_array_size(errors);
    static const char *const kinds[] = { "national_id", "family_record", NULL };
    static const char *const reasons[] = { "lost", "damaged", NULL };

    const char *s = want_string(body, "request_no", "request_no", 32, errors);
    if (s && !request_no_valid(s))
        fail(errors, "request_no", "format");
    check_enum(body, "kind", kinds, errors);
    check_enum(body, "reason", reasons, errors);
    s = want_string(body, "national_id", "national_id", 10, errors);
    if (s) {
        int rc = national_id_check(s);
        if (rc == -1)
            fail(errors, "national_id", "format");
        else if (rc == -2)
            fail(errors, "national_id", "checksum");
    }
    check_holder(body, now, errors);
    s = want_string(body, "phone", "phone", 13, errors);
    if (s && !phone_valid(s))
        fail(errors, "phone", "format");
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

int requests_load_holidays(struct db *db, long day, long *out, size_t max)
{
    char from[11];
    date_format(day, from);
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT day - date '1970-01-01' FROM holidays"
                      " WHERE day > $1::date AND day <= $1::date + 90 ORDER BY day",
                      from);
    if (rc)
        return rc;
    size_t n = db_rows(res) < max ? db_rows(res) : max;
    for (size_t i = 0; i < n; i++)
        out[i] = db_get_long(res, i, 0, 0);
    db_res_free(res);
    return (int)n;
}

static json_t *summary(const char *request_no, const char *status, const char *earliest,
                       const char *latest)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}}", "request_no", request_no, "status", status,
                     "estimated_delivery", "earliest", earliest, "latest", latest);
}

static const char *opt_string(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static char *opt_number(json_t *obj, const char *key, char *buf, size_t len)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return NULL;
    snprintf(buf, len, "%.7f", json_number_value(v));
    return buf;
}

/* Answers a re-submission of an existing request_no: the same body is the
 * same request (200), another body is a conflict (409). */
static void answer_existing(struct http_req *rq, struct db *db, const char *request_no,
                            const char *body_hash)
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT body_sha256 = $2::bytea, request_record(id)::text FROM requests"
                      " WHERE request_no = $1",
                      request_no, body_hash);
    json_t *record = NULL;
    if (rc || db_rows(res) != 1) {
        http_internal_error(rq, "re-submission look-up failed");
    } else if (strcmp(db_get(res, 0, 0), "t") == 0) {
        /* The stored request, whole: a superset of what 201 answered. */
        record = json_loads(db_get(res, 0, 1), 0, NULL);
        if (record)
            http_json(rq, 200, record);
        else
            http_internal_error(rq, "record did not parse");
    } else {
        http_problem(rq, 409, "conflict", "Conflict",
                     "A different request with this request_no was already received.", NULL);
    }
    db_res_free(res);
}

void requests_create(struct http_req *rq)
{
    json_t *body = rq->json;
    json_t *errors = json_array();
    time_t now = time(NULL);
    struct db_res *res = NULL;
    char *canonical = NULL;
    long holidays[64];

    request_validate(body, now, errors);

    struct db *db = http_db(rq);
    if (!db)
        goto out;

    /* An address without coordinates is placed at its city's centre, so the
     * city must be one we know. */
    json_t *addr = json_object_get(body, "address");
    const char *city = json_is_object(addr) ? opt_string(addr, "city") : NULL;
    if (city && !json_is_number(json_object_get(addr, "lat")) && json_array_size(errors) == 0) {
        int rc = db_query(db, &res, "SELECT 1 FROM cities WHERE lower(name) = lower($1)", city);
        if (rc) {
            http_internal_error(rq, "city look-up failed");
            goto out;
        }
        if (db_rows(res) == 0)
            fail(errors, "address.city", "unknown_city");
        db_res_free(res);
        res = NULL;
    }
    if (json_array_size(errors) > 0) {
        http_problem(rq, 422, "validation", "Invalid request", "One or more fields are invalid.",
                     errors);
        errors = NULL;
        goto out;
    }

    /* The canonical form (sorted keys, compact) decides whether a
     * re-submission carries the same body. */
    canonical = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    if (!canonical) {
        http_internal_error(rq, "out of memory");
        goto out;
    }
    char body_hash[2 + 65];
    sha256_hex(canonical, strlen(canonical), body_hash);

    time_t approved = 0;
    timestamp_parse(opt_string(body, "approved_at"), &approved);
    long earliest, latest;
    int nh = requests_load_holidays(db, riyadh_day(approved), holidays, 64);
    if (nh < 0) {
        http_internal_error(rq, "holiday look-up failed");
        goto out;
    }
    request_estimate(approved, holidays, (size_t)nh, &earliest, &latest);
    char e1[11], e2[11];
    date_format(earliest, e1);
    date_format(latest, e2);

    const char *request_no = opt_string(body, "request_no");
    json_t *h = json_object_get(body, "holder");
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(
            db, &res,
            "INSERT INTO requests (request_no, kind, reason, national_id, name_ar, name_en,"
            " birth_date, sex, nationality, phone, body_sha256, body, terms_accepted_at,"
            " approved_at, estimated_earliest, estimated_latest)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::date, $8, $9, $10, $11::bytea, $12::jsonb,"
            " $13::timestamptz, $14::timestamptz, $15::date, $16::date)"
            " ON CONFLICT (request_no) DO NOTHING RETURNING id",
            request_no, opt_string(body, "kind"), opt_string(body, "reason"),
            opt_string(body, "national_id"), opt_string(h, "name_ar"), opt_string(h, "name_en"),
            opt_string(h, "birth_date"), opt_string(h, "sex"), opt_string(h, "nationality"),
            opt_string(body, "phone"), body_hash, canonical, opt_string(body, "terms_accepted_at"),
            opt_string(body, "approved_at"), e1, e2);
    if (rc == DB_ECONFLICT && strcmp(db_error_constraint(db), "requests_one_active") == 0) {
        db_rollback(db);
        http_problem(rq, 409, "active_request", "Conflict",
                     "The holder already has an active request of this kind.",
                     json_pack("[{s:s, s:s}]", "field", "national_id", "code", "active_request"));
        goto out;
    }
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    if (db_rows(res) == 0) {
        db_rollback(db);
        answer_existing(rq, db, request_no, body_hash);
        goto out;
    }
    char id[24];
    snprintf(id, sizeof(id), "%s", db_get(res, 0, 0));
    db_res_free(res);
    res = NULL;

    char lat[32], lon[32];
    rc = db_query(db, NULL,
                  "INSERT INTO request_addresses (request_id, short_address, building_no, street,"
                  " district, city, postal_code, additional_no, lat, lon)"
                  " VALUES ($1::bigint, $2, $3, $4, $5, $6, $7, $8, $9::float8, $10::float8)",
                  id, opt_string(addr, "short_address"), opt_string(addr, "building_no"),
                  opt_string(addr, "street"), opt_string(addr, "district"), city,
                  opt_string(addr, "postal_code"), opt_string(addr, "additional_no"),
                  opt_number(addr, "lat", lat, sizeof(lat)),
                  opt_number(addr, "lon", lon, sizeof(lon)));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(body, "documents"), i, d)
    {
        if (rc)
            break;
        rc = db_query(db, NULL,
                      "INSERT INTO request_documents (request_id, doc_type, sha256, uri)"
                      " VALUES ($1::bigint, $2, $3, $4)",
                      id, opt_string(d, "type"), opt_string(d, "sha256"), opt_string(d, "uri"));
    }
    if (!rc)
        rc = journal_status(db, id, "queued", rq->who.name, NULL, NULL);
    if (!rc)
        rc = audit(db, rq->who.name, "request.received", request_no, NULL, NULL, NULL);
    if (!rc)
        rc = db_commit(db);
    if (rc) {
        db_rollback(db);
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    log_info("request %s queued", request_no);
    http_json(rq, 201, summary(request_no, "queued", e1, e2));
out:
    json_decref(errors);
    db_res_free(res);
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
    struct db_res *res = NULL;
    int rc =
        db_query(db, &res, "SELECT request_record(id)::text FROM requests WHERE request_no = $1",
                 rq->param[0]);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
    } else if (db_rows(res) == 0) {
        http_problem(rq, 404, "not_found", "Not found", "No such request.", NULL);
    } else {
        json_t *record = json_loads(db_get(res, 0, 0), 0, NULL);
        if (record)
            http_json(rq, 200, record);
        else
            http_internal_error(rq, "record did not parse");
    }
    db_res_free(res);
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
    struct db_res *res = NULL;
    int rc = db_begin(db);
    if (!rc)
        rc = db_query(db, &res, "SELECT id, status FROM requests WHERE request_no = $1 FOR UPDATE",
                      rq->param[0]);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    if (db_rows(res) == 0) {
        http_problem(rq, 404, "not_found", "Not found", "No such request.", NULL);
        goto out;
    }
    char id[24];
    snprintf(id, sizeof(id), "%s", db_get(res, 0, 0));
    const char *status = db_get(res, 0, 1);
    if (strcmp(status, "cancelled") == 0) {
        db_rollback(db);
        http_json(rq, 200,
                  json_pack("{s:s, s:s}", "request_no", rq->param[0], "status", "cancelled"));
        goto out;
    }
    if (strcmp(status, "queued") != 0 && strcmp(status, "in_production") != 0 &&
        strcmp(status, "produced") != 0) {
        char detail[128];
        snprintf(detail, sizeof(detail), "The request is %s; it can no longer be cancelled.",
                 status);
        http_problem(rq, 409, "not_cancellable", "Conflict", detail, NULL);
        goto out;
    }
    char detail[512];
    json_t *dj = json_pack("{s:s?}", "reason", why);
    char *dtext = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);
    snprintf(detail, sizeof(detail), "%s", dtext ? dtext : "{}");
    free(dtext);
    /* A card already produced for it is voided: it can never be issued. */
    rc = db_query(
        db, NULL,
        "WITH voided AS (UPDATE cards SET state = 'spoiled', spoil_reason = 'voided: request cancelled',"
        " spoiled_at = now(), updated_at = now()"
        " WHERE request_id = $1::bigint AND state = 'used' RETURNING serial)"
        " INSERT INTO audit_log (actor, action, request_no, card_serial, detail)"
        " SELECT $2, 'card.voided', $3, serial, '{}'::jsonb FROM voided",
        id, rq->who.name, rq->param[0]);
    if (!rc)
        rc = journal_status(db, id, "cancelled", rq->who.name, NULL, detail);
    if (!rc)
        rc = audit(db, rq->who.name, "request.cancelled", rq->param[0], NULL, NULL, detail);
    if (!rc)
        rc = db_commit(db);
    if (rc) {
        http_internal_error(rq, db_error_message(db));
        goto out;
    }
    http_json(rq, 200, json_pack("{s:s, s:s}", "request_no", rq->param[0], "status", "cancelled"));
out:
    db_rollback(db);
    db_res_free(res);
}

/* ---- the promise at risk ---- */

/* Not dispatched by the cutoff, or with the courier past the latest date. */
#define AT_RISK_WHERE                                                                   \
    " FROM requests r WHERE (r.status IN ('queued','in_production','produced')"         \
    "  AND r.estimated_latest <= $1::date)"                                             \
    " OR (r.status IN ('dispatched','in_transit','out_for_delivery','delivery_failed')" \
    "  AND r.estimated_latest < $2::date)"

static int at_risk_dates(struct db *db, time_t now, char cutoff[11], char today[11])
{
    long holidays[64];
    long day = riyadh_day(now);
    int nh = requests_load_holidays(db, day, holidays, 64);
    if (nh < 0)
        return nh;
    date_format(add_working_days(day, 2, holidays, (size_t)nh), cutoff);
    date_format(day, today);
    return 0;
}

int requests_at_risk(struct db *db, time_t now, char cutoff[11], struct db_res **res)
{
    char today[11];
    int rc = at_risk_dates(db, now, cutoff, today);
    if (rc)
        return rc;
    return db_query(
        db, res,
        "SELECT r.request_no, r.kind, r.status,"
        " to_char(r.estimated_earliest, 'YYYY-MM-DD'),"
        " to_char(r.estimated_latest, 'YYYY-MM-DD'), r.estimated_latest < $2::date" AT_RISK_WHERE
        " ORDER BY r.estimated_latest, r.id LIMIT 500",
        cutoff, today);
}

int requests_at_risk_count(struct db *db, time_t now, long *count)
{
    char cutoff[11], today[11];
    struct db_res *res = NULL;
    int rc = at_risk_dates(db, now, cutoff, today);
    if (!rc)
        rc = db_query(db, &res, "SELECT count(*)" AT_RISK_WHERE, cutoff, today);
    if (rc)
        return rc;
    *count = db_get_long(res, 0, 0, 0);
    db_res_free(res);
    return 0;
}
