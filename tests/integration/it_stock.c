/* it_stock.c — blank card stock, spoil and destroy under dual control, the
 * station list and the production queue, through the real service. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct service svc;
static char operator_[128], second_operator[128], intake[128];

static int group_setup(void **state)
{
    (void)state;
    if (harness_setup(&svc, "station = st1 evolis EVO-0001 Virtual PCD 00 00\n"
                            "station = st2 evolis EVO-0002 Virtual PCD 00 01\n") != 0)
        return -1;
    if (harness_token(&svc, "operator", "op-fatimah", operator_, sizeof(operator_)) ||
        harness_token(&svc, "operator", "op-khalid", second_operator, sizeof(second_operator)) ||
        harness_token(&svc, "intake", "absher", intake, sizeof(intake)))
        return -1;
    return harness_start(&svc);
}

static int group_teardown(void **state)
{
    (void)state;
    return harness_stop(&svc, false);
}

static json_t *batch_totals(void)
{
    struct reply r;
    assert_int_equal(http_get(&svc, operator_, "/v1/stock", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *t = json_incref(json_object_get(r.json, "totals"));
    /* received = used + spoiled + destroyed + in_production + available, per batch. */
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(r.json, "batches"), i, b)
    {
        json_int_t sum = 0;
        const char *parts[] = { "used", "spoiled", "destroyed", "in_production", "available" };
        for (int k = 0; k < 5; k++)
            sum += json_integer_value(json_object_get(b, parts[k]));
        assert_int_equal(sum, json_integer_value(json_object_get(b, "received")));
    }
    reply_free(&r);
    return t;
}

static long total(json_t *t, const char *k)
{
    return (long)json_integer_value(json_object_get(t, k));
}

static void test_batches(void **state)
{
    (void)state;
    struct reply r;
    assert_int_equal(
        http_post_json(&svc, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"B-2026-01\",\"first_serial\":\"A00000001\",\"count\":50}",
                       &r),
        0);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_object_get(r.json, "last_serial")), "A00000050");
    reply_free(&r);
    /* The same delivery again: 200; a different one under the same number: 409. */
    assert_int_equal(
        http_post_json(&svc, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"B-2026-01\",\"first_serial\":\"A00000001\",\"count\":50}",
                       &r),
        0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(
        http_post_json(&svc, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"B-2026-01\",\"first_serial\":\"A00000001\",\"count\":51}",
                       &r),
        0);
    assert_int_equal(r.status, 409);
    reply_free(&r);
    /* Overlapping serials: 409, and nothing of the batch is kept. */
    assert_int_equal(
        http_post_json(&svc, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"B-2026-02\",\"first_serial\":\"A00000040\",\"count\":20}",
                       &r),
        0);
    assert_int_equal(r.status, 409);
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "type")), "serial_overlap"));
    reply_free(&r);
    char n[16];
    harness_sql(n, sizeof(n), "SELECT count(*) FROM stock_batches WHERE batch_no = 'B-2026-02'");
    assert_string_equal(n, "0");
    /* Invalid fields, all listed. */
    assert_int_equal(
        http_post_json(&svc, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"b 1\",\"first_serial\":\"ABCDEFGHIJ\",\"count\":0}", &r),
        0);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "batch_no"), "format");
    assert_string_equal(problem_code_for(&r, "first_serial"), "format");
    assert_string_equal(problem_code_for(&r, "count"), "range");
    reply_free(&r);
    /* A numeric tail that cannot hold the count. */
    assert_int_equal(
        http_post_json(&svc, operator_, "/v1/stock/batches",
                       "{\"batch_no\":\"B-X\",\"first_serial\":\"ZZZZZZZ98\",\"count\":5}", &r),
        0);
    assert_int_equal(r.status, 422);
    assert_string_equal(problem_code_for(&r, "first_serial"), "no_room_for_count");
    reply_free(&r);
    /* Only operators. */
    assert_int_equal(
        http_post_json(&svc, intake, "/v1/stock/batches",
                       "{\"batch_no\":\"B-Y\",\"first_serial\":\"C00000001\",\"count\":5}", &r),
        0);
    assert_int_equal(r.status, 403);
    reply_free(&r);

    json_t *t = batch_totals();
    assert_int_equal(total(t, "received"), 50);
    assert_int_equal(total(t, "available"), 50);
    json_decref(t);
}

/* A POST countersigned by witness (a token, or NULL for none). */
static void post_witnessed(const char *witness, const char *path, const char *body, struct reply *r)
{
    char auth[256], wit[256];
    const char *headers[] = { "Content-Type: application/json", auth, wit, NULL };
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", operator_);
    snprintf(wit, sizeof(wit), "X-Witness-Authorization: Bearer %s", witness ? witness : "");
    if (!witness)
        headers[2] = NULL;
    assert_int_equal(http_call(&svc, "POST", path, headers, body, strlen(body), r), 0);
}

static long witnessed_status(const char *witness, const char *path, const char *body)
{
    struct reply r;
    post_witnessed(witness, path, body, &r);
    long status = r.status;
    reply_free(&r);
    return status;
}

/* A blank leaves the stock only on two people's word: spoiling an available
 * blank and destroying a spoiled card are countersigned by a second
 * operator's own token. */
static void test_spoil_and_destroy(void **state)
{
    (void)state;
    const char *spoil3 = "/v1/cards/A00000003/spoil", *destroy3 = "/v1/cards/A00000003/destroy";
    const char *reason = "{\"reason\":\"scratched in handling\"}";
    /* Missing, unknown, not an operator, the caller's own: 403. */
    assert_int_equal(witnessed_status(NULL, spoil3, reason), 403);
    assert_int_equal(
        witnessed_status("cdt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", spoil3, reason),
        403);
    assert_int_equal(witnessed_status("", spoil3, reason), 403);
    assert_int_equal(witnessed_status(intake, spoil3, reason), 403);
    assert_int_equal(witnessed_status(operator_, spoil3, reason), 403);
    struct reply r;
    post_witnessed(second_operator, spoil3, reason, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "witness")), "op-khalid");
    reply_free(&r);
    /* Twice: the card is no longer available. */
    assert_int_equal(witnessed_status(second_operator, spoil3, "{\"reason\":\"again\"}"), 409);
    assert_int_equal(witnessed_status(second_operator, "/v1/cards/A00000004/spoil", "{}"), 422);
    assert_int_equal(
        witnessed_status(second_operator, "/v1/cards/NOPE99999/spoil", "{\"reason\":\"x\"}"), 404);

    /* Destruction: the witness countersigns with their own token, and the
     * body names that token. */
    const char *khalid = "{\"witness\":\"op-khalid\"}";
    assert_int_equal(witnessed_status(NULL, destroy3, khalid), 403);
    assert_int_equal(witnessed_status(operator_, destroy3, "{\"witness\":\"op-fatimah\"}"), 403);
    assert_int_equal(witnessed_status(intake, destroy3, "{\"witness\":\"absher\"}"), 403);
    assert_int_equal(witnessed_status(operator_, destroy3, khalid), 403);
    assert_int_equal(witnessed_status(second_operator, destroy3, "{\"witness\":\"op-someone\"}"),
                     403);
    assert_int_equal(witnessed_status(second_operator, destroy3, "{}"), 422);
    assert_int_equal(witnessed_status(second_operator, "/v1/cards/A00000005/destroy", khalid),
                     409); /* not spoiled */
    post_witnessed(second_operator, destroy3, khalid, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "state")), "destroyed");
    assert_string_equal(json_string_value(json_object_get(r.json, "witness")), "op-khalid");
    reply_free(&r);

    /* cardctl: the same rule; the witness types their token on its input. */
    char out[512], typed[160];
    snprintf(typed, sizeof(typed), "%s\n", second_operator);
    assert_int_equal(
        harness_ctl_input(&svc, "", out, sizeof(out), "card", "spoil", "A00000006", "bent", NULL),
        1);
    char not_operator[160];
    snprintf(not_operator, sizeof(not_operator), "%s\n", intake);
    assert_int_equal(harness_ctl_input(&svc, not_operator, out, sizeof(out), "card", "spoil",
                                       "A00000006", "bent", NULL),
                     1);
    assert_int_equal(harness_ctl_input(&svc, typed, out, sizeof(out), "card", "spoil", "A00000006",
                                       "bent", NULL),
                     0);
    assert_non_null(strstr(out, "witnessed by op-khalid"));
    assert_int_equal(harness_ctl_input(&svc, "nonsense\n", out, sizeof(out), "card", "destroy",
                                       "A00000006", NULL),
                     1);
    assert_int_equal(
        harness_ctl_input(&svc, typed, out, sizeof(out), "card", "destroy", "A00000006", NULL), 0);
    assert_int_equal(
        harness_ctl_input(&svc, typed, out, sizeof(out), "card", "destroy", "A00000006", NULL), 1);

    json_t *t = batch_totals();
    assert_int_equal(total(t, "received"), 50);
    assert_int_equal(total(t, "destroyed"), 2);
    assert_int_equal(total(t, "spoiled"), 0);
    assert_int_equal(total(t, "available"), 48);
    json_decref(t);

    /* The audit log has both steps with both people, and refuses to be rewritten. */
    char n[16];
    harness_sql(n, sizeof(n),
                "SELECT count(*) FROM audit_log WHERE card_serial = 'A00000003'"
                " AND actor = 'op-fatimah' AND detail->>'witness' = 'op-khalid'");
    assert_string_equal(n, "2");
    harness_sql(n, sizeof(n),
                "SELECT count(*) FROM audit_log WHERE card_serial = 'A00000006'"
                " AND actor LIKE 'cardctl:%' AND detail->>'witness' = 'op-khalid'");
    assert_string_equal(n, "2");
    assert_int_not_equal(harness_sql(NULL, 0, "UPDATE audit_log SET actor = 'x'"), 0);
    assert_int_not_equal(harness_sql(NULL, 0, "DELETE FROM audit_log"), 0);
}

static void test_stations(void **state)
{
    (void)state;
    struct reply r;
    assert_int_equal(http_get(&svc, operator_, "/v1/stations", &r), 0);
    assert_int_equal(r.status, 200);
    json_t *list = json_object_get(r.json, "stations");
    assert_int_equal(json_array_size(list), 2);
    json_t *st1 = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(st1, "id")), "st1");
    assert_string_equal(json_string_value(json_object_get(st1, "reader")), "Virtual PCD 00 00");
    reply_free(&r);

    assert_int_equal(http_post_json(&svc, operator_, "/v1/stations/st1/pause", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "state")), "paused");
    reply_free(&r);
    assert_int_equal(http_get(&svc, operator_, "/v1/stations", &r), 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r.json, "stations"), 0), "state")),
                        "paused");
    reply_free(&r);
    assert_int_equal(http_post_json(&svc, operator_, "/v1/stations/st9/pause", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    /* An error is cleared only by an operator's resume. */
    harness_sql(
        NULL, 0,
        "UPDATE stations SET state = 'error', error_reason = 'ribbon_out' WHERE id = 'st2'");
    assert_int_equal(http_get(&svc, operator_, "/v1/stations", &r), 0);
    json_t *st2 = json_array_get(json_object_get(r.json, "stations"), 1);
    assert_string_equal(json_string_value(json_object_get(st2, "state")), "error");
    assert_string_equal(json_string_value(json_object_get(st2, "reason")), "ribbon_out");
    reply_free(&r);
    /* These stations' printers are not attached: their workers say
     * "offline", which a resume leaves alone; the error is what it clears. */
    assert_int_equal(http_post_json(&svc, operator_, "/v1/stations/st2/resume", NULL, &r), 0);
    assert_string_not_equal(json_string_value(json_object_get(r.json, "state")), "error");
    reply_free(&r);
    char reason[64];
    harness_sql(reason, sizeof(reason),
                "SELECT coalesce(error_reason, 'none') FROM stations WHERE id = 'st2'");
    assert_string_not_equal(reason, "ribbon_out");
    assert_int_equal(http_post_json(&svc, operator_, "/v1/stations/st1/resume", NULL, &r), 0);
    assert_false(json_is_true(json_object_get(r.json, "paused")));
    assert_string_not_equal(json_string_value(json_object_get(r.json, "state")), "paused");
    reply_free(&r);
}

static void test_queue_pagination(void **state)
{
    (void)state;
    struct reply r;
    for (int i = 0; i < 7; i++) {
        char no[32], nine[10], nid[11];
        snprintf(no, sizeof(no), "RQ-Q-%03d", i);
        snprintf(nine, sizeof(nine), "2%08d", 500 + i);
        make_national_id(nine, nid);
        char *body = sample_request(no, nid, i % 2 ? "family_record" : "national_id", "lost");
        assert_int_equal(http_post_json(&svc, intake, "/v1/requests", body, &r), 0);
        assert_int_equal(r.status, 201);
        reply_free(&r);
        free(body);
    }
    char path[128] = "/v1/production/queue?limit=3";
    int seen = 0;
    char last[32] = "";
    for (int page = 0; page < 5; page++) {
        assert_int_equal(http_get(&svc, operator_, path, &r), 0);
        assert_int_equal(r.status, 200);
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(r.json, "items"), i, it)
        {
            const char *no = json_string_value(json_object_get(it, "request_no"));
            assert_true(strcmp(no, last) > 0); /* oldest first, no repeats */
            snprintf(last, sizeof(last), "%s", no);
            seen++;
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        if (json_is_null(next)) {
            reply_free(&r);
            break;
        }
        snprintf(path, sizeof(path), "/v1/production/queue?limit=3&cursor=%s",
                 json_string_value(next));
        reply_free(&r);
    }
    assert_int_equal(seen, 7);
    assert_int_equal(http_get(&svc, operator_, "/v1/production/queue?limit=0", &r), 0);
    assert_int_equal(r.status, 422);
    reply_free(&r);
    assert_int_equal(http_get(&svc, operator_, "/v1/production/queue?cursor=abc", &r), 0);
    assert_int_equal(r.status, 422);
    reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_spoil_and_destroy),
        cmocka_unit_test(test_stations),
        cmocka_unit_test(test_queue_pagination),
    };
    return cmocka_run_group_tests_name("stock", tests, group_setup, group_teardown);
}
