/* test_store_card.c — a card's life, run through its transition table:
 * every allowed move writes the card's new state with what goes with it
 * (the request and station of a job, the spoil reason, the destruction's
 * two operators) and the audit entry; every other move is refused and
 * writes nothing. No card state is citizen-visible: no notification. The
 * database is replaced at link time (test_store_card.wrap). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fake_db.h"
#include "store_card.h"

/* A blank is claimed for a job and ends used, spoiled, or back in stock;
 * a blank may be spoiled by hand; an issued card is voided only by a
 * cancellation; only a spoiled card is destroyed (README, API.md). */
static const struct {
    const char *from, *event, *to, *audit;
} allowed[] = {
    { "available", "claim", "in_production", "job.claimed" },
    { "in_production", "use", "used", "job.produced" },
    { "in_production", "return", "available", "job.card_not_taken" },
    { "in_production", "spoil", "spoiled", "card.spoiled" },
    { "in_production", "recover", "spoiled", "job.recovered" },
    { "available", "spoil_blank", "spoiled", "card.spoiled" },
    { "used", "void", "spoiled", "card.voided" },
    { "spoiled", "destroy", "destroyed", "card.destroyed" },
};
#define NALLOWED (sizeof(allowed) / sizeof(allowed[0]))

static const char *const states[] = { "available", "in_production", "used", "spoiled",
                                      "destroyed" };
static const char *const events[] = { "claim",       "use",  "return",  "spoil",  "recover",
                                      "spoil_blank", "void", "destroy", "receive" };

static int expected_row(const char *from, const char *event)
{
    for (size_t i = 0; i < NALLOWED; i++)
        if (strcmp(allowed[i].from, from) == 0 && strcmp(allowed[i].event, event) == 0)
            return (int)i;
    return -1;
}

static const char *param(const struct fake_stmt *st, int k)
{
    assert_non_null(st);
    assert_true(k < st->nparams);
    return st->params[k];
}

static void run_one(const char *from, const char *event)
{
    const char *row[] = { from };
    fake_db_reset();
    fake_db_answer("SELECT state FROM cards", 1, row);
    struct card_change c = {
        .ch = { .actor = "op-1", .detail_json = "{}", .request_no = "REQ-9", .station_id = "st1" },
        .request_id = "9",
        .reason = "scratched",
        .witness = "op-2",
    };
    char had[16] = "";
    int rc = card_apply(NULL, "A00000001", event, &c, had);
    assert_string_equal(had, from);
    int e = expected_row(from, event);
    if (e < 0) {
        if (rc != -EPERM)
            fail_msg("%s --%s--> should be refused, got %d", from, event, rc);
        assert_int_equal(fake_db_writes(), 0);
        return;
    }
    if (rc != 0)
        fail_msg("%s --%s--> %s refused (%d)", from, event, allowed[e].to, rc);
    const struct fake_stmt *st = fake_db_find("UPDATE cards SET state");
    assert_string_equal(param(st, 0), "A00000001");
    assert_string_equal(param(st, 1), allowed[e].to);
    assert_string_equal(param(st, 2), "9");
    assert_string_equal(param(st, 3), "st1");
    assert_string_equal(param(st, 4), "scratched");
    assert_string_equal(param(st, 5), "op-1");
    assert_string_equal(param(st, 6), "op-2");
    /* the SQL sets what each state needs from those parameters */
    assert_non_null(strstr(st->sql, "request_id = CASE $2 WHEN 'in_production' THEN $3"));
    assert_non_null(strstr(st->sql, "spoil_reason = CASE $2 WHEN 'spoiled' THEN $5"));
    assert_non_null(strstr(st->sql, "witness = CASE $2 WHEN 'destroyed' THEN $7"));
    st = fake_db_find("INSERT INTO audit_log");
    assert_string_equal(param(st, 0), "op-1");
    assert_string_equal(param(st, 1), allowed[e].audit);
    assert_string_equal(param(st, 2), "REQ-9");
    assert_string_equal(param(st, 3), "A00000001");
    assert_string_equal(param(st, 4), "st1");
    assert_null(fake_db_find("INSERT INTO notifications"));
    assert_int_equal(fake_db_writes(), 2);
}

static void every_pair_of_state_and_event(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++)
        for (size_t e = 0; e < sizeof(events) / sizeof(events[0]); e++)
            run_one(states[s], events[e]);
    fake_db_reset();
}

static void table_is_the_documented_life(void **state)
{
    (void)state;
    assert_int_equal(card_ntransitions, NALLOWED);
    for (size_t i = 0; i < NALLOWED; i++) {
        const struct transition *t =
            transition_find(card_transitions, card_ntransitions, allowed[i].from, allowed[i].event);
        assert_non_null(t);
        assert_string_equal(t->to, allowed[i].to);
        assert_string_equal(t->audit_action, allowed[i].audit);
    }
}

static void unknown_card_is_not_found(void **state)
{
    (void)state;
    fake_db_reset();
    struct card_change c = { .ch = { .actor = "x" } };
    assert_int_equal(card_apply(NULL, "Z9", "destroy", &c, NULL), -ENOENT);
    assert_int_equal(fake_db_writes(), 0);
    fake_db_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_pair_of_state_and_event),
        cmocka_unit_test(table_is_the_documented_life),
        cmocka_unit_test(unknown_card_is_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
