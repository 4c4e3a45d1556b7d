/* refdata.c — CSV imports of cities, branches and holidays. */
#include "refdata.h"
#include "calendar.h"
#include "db.h"
#include "geo.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line, *out = line;
    line[strcspn(line, "\r\n")] = '\0';
    for (;;) {
        if (n >= max)
            return -1;
        fields[n++] = out;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0')
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            if (*p != ',' && *p != '\0')
                return -1;
        } else {
            while (*p && *p != ',')
                *out++ = *p++;
        }
        if (*p == '\0') {
            *out = '\0';
            return n;
        }
        *out++ = '\0';
        p++;
    }
}

typedef int (*row_fn)(struct db *db, char **f, char *why, size_t whylen);

static bool valid_coordinate(const char *s, double limit)
{
    char *end = NULL;
    double v = strtod(s, &end);
    return end != s && *end == '\0' && v >= -limit && v <= limit;
}

static int import(struct db *db, FILE *in, int nfields, const char *header, row_fn row, char *msg,
                  size_t msglen)
{
    char line[2048];
    char *f[16];
    int lineno = 0, count = 0;
    int rc = db_begin(db);
    if (rc) {
        snprintf(msg, msglen, "database: %s", db_error_message(db));
        return rc;
    }
    while (fgets(line, sizeof(line), in)) {
        lineno++;
        if (lineno == 1) {
            line[strcspn(line, "\r\n")] = '\0';
            if (strcmp(line, header) != 0) {
                snprintf(msg, msglen, "line 1: expected the header \"%s\"", header);
                rc = -EINVAL;
                break;
            }
            continue;
        }
        if (line[strspn(line, " \r\n")] == '\0')
            continue;
        if (csv_split(line, f, 16) != nfields) {
            snprintf(msg, msglen, "line %d: expected %d fields", lineno, nfields);
            rc = -EINVAL;
            break;
        }
        char why[256] = "";
        rc = row(db, f, why, sizeof(why));
        if (rc) {
            snprintf(msg, msglen, "line %d: %s", lineno, why[0] ? why : db_error_message(db));
            break;
        }
        count++;
    }
    if (rc == 0 && lineno == 0) {
        snprintf(msg, msglen, "empty file");
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = db_commit(db);
    if (rc) {
        db_rollback(db);
        return rc < 0 ? rc : -EINVAL;
    }
    snprintf(msg, msglen, "%d rows imported", count);
    return count;
}

static int city_row(struct db *db, char **f, char *why, size_t whylen)
{
    if (!f[0][0] || !valid_coordinate(f[2], 90) || !valid_coordinate(f[3], 180)) {
        snprintf(why, whylen, "a city needs a name and valid coordinates");
        return -EINVAL;
    }
    return db_query(
        db, NULL,
        "INSERT INTO cities (name, region, lat, lon) VALUES ($1, $2, $3::float8, $4::float8)"
        " ON CONFLICT (name) DO UPDATE SET region = EXCLUDED.region, lat = EXCLUDED.lat,"
        " lon = EXCLUDED.lon",
        f[0], f[1], f[2], f[3]);
}

static int branch_row(struct db *db, char **f, char *why, size_t whylen)
{
    if (!valid_coordinate(f[4], 90) || !valid_coordinate(f[5], 180)) {
        snprintf(why, whylen, "bad coordinates");
        return -EINVAL;
    }
    if (strcmp(f[6], "true") != 0 && strcmp(f[6], "false") != 0) {
        snprintf(why, whylen, "collects_cards must be true or false");
        return -EINVAL;
    }
    return db_query(
        db, NULL,
        "INSERT INTO branches (branch_id, name_en, name_ar, city, lat, lon, collects_cards)"
        " VALUES ($1, $2, $3, $4, $5::float8, $6::float8, $7::boolean)"
        " ON CONFLICT (branch_id) DO UPDATE SET name_en = EXCLUDED.name_en,"
        " name_ar = EXCLUDED.name_ar, city = EXCLUDED.city, lat = EXCLUDED.lat,"
        " lon = EXCLUDED.lon, collects_cards = EXCLUDED.collects_cards, active = true",
        f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
}

static int holiday_row(struct db *db, char **f, char *why, size_t whylen)
{
    long day;
    if (date_parse(f[0], &day) != 0) {
        snprintf(why, whylen, "the date must be YYYY-MM-DD");
        return -EINVAL;
    }
    return db_query(db, NULL,
                    "INSERT INTO holidays (day, name) VALUES ($1::date, $2)"
                    " ON CONFLICT (day) DO UPDATE SET name = EXCLUDED.name",
                    f[0], f[1]);
}

int refdata_holidays_after(struct db *db, long day, long *out, size_t max)
{
    char from[11], limit[24];
    date_format(day, from);
    snprintf(limit, sizeof(limit), "%zu", max);
    struct db_res *res = NULL;
    int rc = db_query(db, &res,
                      "SELECT day - date '1970-01-01' FROM holidays WHERE day > $1::date"
                      " ORDER BY day LIMIT $2::int",
                      from, limit);
    if (rc)
        return rc;
    size_t n = db_rows(res) < max ? db_rows(res) : max;
    for (size_t i = 0; i < n; i++)
        out[i] = db_get_long(res, i, 0, 0);
    db_res_free(res);
    return (int)n;
}

int branch_nearest(struct db *db, const char *request_id, char out[33])
{
    struct db_res *addr = NULL, *res = NULL;
    struct geo_point *places = NULL;
    int rc =
        db_query(db, &addr,
                 "SELECT coalesce(a.lat, c.lat), coalesce(a.lon, c.lon), a.city"
                 " FROM request_addresses a LEFT JOIN cities c ON lower(c.name) = lower(a.city)"
                 " WHERE a.request_id = $1::bigint",
                 request_id);
    if (rc)
        goto out;
    const char *city = db_get(addr, 0, 2);
    rc = db_query(db, &res,
                  "SELECT branch_id, lat, lon, lower(city) = lower($1) FROM branches"
                  " WHERE active AND collects_cards ORDER BY branch_id",
                  city ? city : "");
    if (rc)
        goto out;
    size_t n = db_rows(res);
    if (n == 0) {
        rc = -ENOENT;
        goto out;
    }
    long pick = 0;
    if (db_rows(addr) == 1 && !db_is_null(addr, 0, 0)) {
        places = calloc(n, sizeof(*places));
        if (!places) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            places[i].lat = strtod(db_get(res, i, 1), NULL);
            places[i].lon = strtod(db_get(res, i, 2), NULL);
        }
        struct geo_point from = { strtod(db_get(addr, 0, 0), NULL),
                                  strtod(db_get(addr, 0, 1), NULL) };
        pick = geo_nearest(from, places, n);
    } else {
        for (size_t i = 0; i < n; i++)
            if (strcmp(db_get(res, i, 3), "t") == 0) {
                pick = (long)i;
                break;
            }
    }
    snprintf(out, 33, "%s", db_get(res, (size_t)pick, 0));
out:
    free(places);
    db_res_free(addr);
    db_res_free(res);
    return rc;
}

json_t *branch_describe(struct db *db, const char *branch_id, int *rc)
{
    struct db_res *res = NULL;
    json_t *b = NULL;
    *rc = db_query(db, &res,
                   "SELECT branch_id, name_ar, name_en, city, lat, lon FROM branches"
                   " WHERE branch_id = $1",
                   branch_id);
    if (*rc)
        return NULL;
    if (db_rows(res) != 1) {
        *rc = -ENOENT;
    } else {
        b = json_pack("{s:s, s:{s:s, s:s}, s:s, s:f, s:f}", "branch_id", db_get(res, 0, 0), "name",
                      "ar", db_get(res, 0, 1), "en", db_get(res, 0, 2), "city", db_get(res, 0, 3),
                      "lat", strtod(db_get(res, 0, 4), NULL), "lon",
                      strtod(db_get(res, 0, 5), NULL));
        if (!b)
            *rc = -ENOMEM;
    }
    db_res_free(res);
    return b;
}

/* Whether the branch is active and hands over cards: 1, 0 (also when there
 * is no such branch) or a DB_* code. */
int branch_collects(struct db *db, const char *branch_id)
{
    struct db_res *res = NULL;
    int rc = db_query(
        db, &res, "SELECT collects_cards AND active FROM branches WHERE branch_id = $1", branch_id);
    if (rc)
        return rc;
    rc = db_rows(res) == 1;
    db_res_free(res);
    return rc;
}

int refdata_city_known(struct db *db, const char *city)
{
    struct db_res *res = NULL;
    int rc = db_query(db, &res, "SELECT 1 FROM cities WHERE lower(name) = lower($1)", city);
    if (rc)
        return rc;
    rc = db_rows(res) > 0;
    db_res_free(res);
    return rc;
}

int refdata_import_cities(struct db *db, FILE *in, char *msg, size_t msglen)
{
    return import(db, in, 4, "city,region,lat,lon", city_row, msg, msglen);
}

int refdata_import_branches(struct db *db, FILE *in, char *msg, size_t msglen)
{
    return import(db, in, 7, "branch_id,name_en,name_ar,city,lat,lon,collects_cards", branch_row,
                  msg, msglen);
}

int refdata_import_holidays(struct db *db, FILE *in, char *msg, size_t msglen)
{
    return import(db, in, 2, "date,name", holiday_row, msg, msglen);
}
