/* refdata.c — CSV imports of cities, branches and holidays. */
#include "refdata.h"
#include "calendar.h"
#include "db.h"

#include <errno.h>
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
