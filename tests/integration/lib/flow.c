/* flow.c — see flow.h. */
#include "flow.h"
#include "auth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int flow_courier_add(struct service *svc, const char *name, char *token, size_t toklen,
                     char *secret, size_t seclen)
{
    char out[512];
    if (harness_ctl(svc, out, sizeof(out), "courier", "add", name, NULL) != 0)
        return -1;
    char t[128], s[128];
    if (sscanf(out, "token: %127s secret: %127s", t, s) != 2)
        return -1;
    snprintf(token, toklen, "%s", t);
    snprintf(secret, seclen, "%s", s);
    return 0;
}

int flow_signed(struct service *svc, const char *method, const char *path, const char *token,
                const char *secret, long t, const char *body, struct reply *r)
{
    char auth[256], sig[256], sig_header[300];
    const char *b = body ? body : "";
    size_t len = 0;
    char *text = auth_signed_text(method, path, b, strlen(b), &len);
    if (!text)
        return -1;
    auth_sign(secret, t ? t : (long)time(NULL), text, len, sig, sizeof(sig));
    free(text);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    snprintf(sig_header, sizeof(sig_header), "X-Signature: %s", sig);
    const char *headers[] = { auth, sig_header, "Content-Type: application/json", NULL };
    if (!body)
        headers[2] = NULL;
    return http_call(svc, method, path, headers, body, body ? strlen(body) : 0, r);
}

int flow_produced(struct service *svc, const char *intake_token, json_t *request)
{
    char *text = json_dumps(request, JSON_COMPACT);
    char no[64];
    snprintf(no, sizeof(no), "%s", flow_str(request, "request_no"));
    json_decref(request);
    if (!text)
        return -1;
    struct reply r;
    int rc = http_post_json(svc, intake_token, "/v1/requests", text, &r);
    free(text);
    if (rc || r.status != 201) {
        fprintf(stderr, "flow: intake of %s answered %ld: %s\n", no, r.status,
                r.body ? r.body : "");
        reply_free(&r);
        return -1;
    }
    reply_free(&r);
    /* Set-up: the production line (another part of the service) would do this. */
    return flow_sql(NULL, 0, "UPDATE requests SET status = 'produced' WHERE request_no = '%s'", no);
}

int flow_dispatch(struct service *svc, const char *operator_token, const char *courier,
                  const char *request_no, char tracking[14])
{
    json_t *body = json_pack("{s:s, s:[s]}", "courier", courier, "request_nos", request_no);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct reply r;
    int rc = http_post_json(svc, operator_token, "/v1/dispatches", text, &r);
    free(text);
    if (rc || r.status != 201) {
        fprintf(stderr, "flow: dispatch of %s answered %ld: %s\n", request_no, r.status,
                r.body ? r.body : "");
        reply_free(&r);
        return -1;
    }
    json_t *item = json_array_get(json_object_get(r.json, "items"), 0);
    snprintf(tracking, 14, "%s", flow_str(item, "tracking_no"));
    reply_free(&r);
    return 0;
}

char *flow_event(const char *event_id, const char *tracking_no, const char *code, const char *at,
                 const char *reason)
{
    json_t *e =
        json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s}", "event_id", event_id, "tracking_no",
                  tracking_no, "code", code, "at", at, "reason", reason, "location", "Riyadh");
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    return text;
}

void flow_time(long offset, char out[21])
{
    time_t t = time(NULL) + offset;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *flow_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

int flow_sql(char *out, size_t outlen, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return harness_sql(out, outlen, sql);
}

long flow_count(const char *fmt, ...)
{
    char sql[4096], out[64] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (harness_sql(out, sizeof(out), sql) != 0)
        return -1;
    return atol(out);
}

double flow_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *flow_stock_problem(long cards)
{
    if (flow_count("SELECT count(*) FROM cards") != cards)
        return "cards received and cards in the table differ";
    if (flow_count("SELECT count(*) FROM cards c WHERE c.state = 'in_production' AND NOT EXISTS"
                   " (SELECT 1 FROM production_attempts p WHERE p.card_serial = c.serial"
                   "  AND p.outcome = 'in_progress')") != 0)
        return "a card in production without a job in progress";
    if (flow_count("SELECT count(*) FROM production_attempts p WHERE p.outcome = 'in_progress'"
                   " AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.serial = p.card_serial"
                   "  AND c.state = 'in_production')") != 0)
        return "a job in progress without its card in production";
    if (flow_count("SELECT count(*) FROM cards WHERE state = 'used'") !=
        flow_count("SELECT count(*) FROM production_attempts WHERE outcome = 'produced'"))
        return "used cards and produced jobs differ";
    if (flow_count("SELECT count(*) FROM cards WHERE state = 'spoiled' AND spoil_reason IS NULL"))
        return "a spoiled card without a reason";
    if (flow_count("SELECT coalesce(sum(cards_spoiled), 0) FROM stations") !=
        flow_count(
            "SELECT count(*) FROM production_attempts WHERE outcome IN ('spoiled','unknown')"))
        return "station spoiled counters and spoiled cards differ";
    return NULL;
}
