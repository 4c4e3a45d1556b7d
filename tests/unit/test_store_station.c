/* test_store_station.c — a station's life, run through its transition
 * table: every allowed move writes the new state, the error reason of an
 * error or offline state, the paused flag of a pause or resume, and the
 * audit entry (a job's claim and finish are audited by the card's job.*
 * entries instead); every other move is refused and writes nothing. The
 * database is replaced at link time (test_store_station.wrap). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fake_db.h"
#include "store_station.h"

/* README, "The production line": a station takes a job when idle (or just
 * started), goes back to idle or to error for an operator, goes offline
 * when its devices are gone and back when they answer; an error stays
 * until an operator resumes the station (only another error replaces it,
 * and the worker clears only an error it raised and saw go away);
 * pause and resume keep the state, and a resume clears an error. */
static const struct {
    const char *from, *event, *to, *audit;
} allowed[] = {
    { "idle", "claim", "busy", NULL },
    { "offline", "claim", "busy", NULL },
    { "busy", "finish", "idle", NULL },
    { "busy", "fail", "error", "station.error" },
    { "idle", "fault", "error", "station.error" },
    { "offline", "fault", "error", "station.error" },
    { "offline", "online", "idle", "station.online" },
    { "idle", "go_offline", "offline", "station.offline" },
    { "busy", "go_offline", "offline", "station.offline" },
    { "error", "fail", "error", "station.error" },
    { "error", "fault", "error", "station.error" },
    { "busy", "restart", "idle", "station.restarted" },
    { "error", "clear", "idle", "station.cleared" },
    { "idle", "pause", "idle", "station.paused" },
    { "busy", "pause", "busy", "station.paused" },
    { "error", "pause", "error", "station.paused" },
    { "offline", "pause", "offline", "station.paused" },
    { "idle", "resume", "idle", "station.resumed" },
    { "busy", "resume", "busy", "station.resumed" },
    { "error", "resume", "idle", "station.resumed" },
    { "offline", "resume", "offline", "station.resumed" },
};
#define NALLOWED (sizeof(allowed) / sizeof(allowed[0]))

static const char *const states[] = { "idle", "busy", "error", "offline", "paused" };
static const char *const events[] = { "claim",  "finish",     "fail",    "fault",
                                      "online", "go_offline", "restart", "pause",
                                      "resume", "clear",      "produce" };

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
    fake_db_answer("SELECT state, error_reason FROM stations", 1, row);
    const struct change ch = { .actor = "station:st1" };
    char after[16] = "";
    int rc = station_apply(NULL, "st1", event, "ribbon_out", &ch, after);
    int e = expected_row(from, event);
    if (e < 0) {
        if (rc != -EPERM)
            fail_msg("%s --%s--> should be refused, got %d", from, event, rc);
        assert_int_equal(fake_db_writes(), 0);
        return;
    }
    if (rc != 0)
        fail_msg("%s --%s--> %s refused (%d)", from, event, allowed[e].to, rc);
    assert_string_equal(after, allowed[e].to);
    const struct fake_stmt *st = fake_db_find("UPDATE stations SET state");
    assert_string_equal(param(st, 0), "st1");
    assert_string_equal(param(st, 1), allowed[e].to);
    assert_string_equal(param(st, 2), "ribbon_out");
    assert_string_equal(param(st, 3), event);
    /* the reason is kept when the state stays, set for error and offline,
     * cleared otherwise; the paused flag follows pause and resume */
    assert_non_null(strstr(st->sql, "error_reason = CASE WHEN state = $2 THEN error_reason"
                                    "  WHEN $2 IN ('error','offline') THEN $3 ELSE NULL END"));
    assert_non_null(strstr(st->sql, "paused = CASE $4 WHEN 'pause' THEN true"
                                    " WHEN 'resume' THEN false"));
    st = fake_db_find("INSERT INTO audit_log");
    if (!allowed[e].audit) {
        assert_null(st);
        assert_int_equal(fake_db_writes(), 1);
        return;
    }
    assert_string_equal(param(st, 0), "station:st1");
    assert_string_equal(param(st, 1), allowed[e].audit);
    assert_string_equal(param(st, 4), "st1");
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

/* The same error again, each second while a device stays down, writes
 * nothing: no audit entry a second. Another reason is written. */
static void the_same_error_again_writes_nothing(void **state)
{
    (void)state;
    const char *row[] = { "error", "signer_unavailable" };
    const struct change ch = { .actor = "station:st1" };
    fake_db_reset();
    fake_db_answer("SELECT state, error_reason FROM stations", 2, row);
    assert_int_equal(station_apply(NULL, "st1", "fault", "signer_unavailable", &ch, NULL), 0);
    assert_int_equal(fake_db_writes(), 0);
    fake_db_reset();
    fake_db_answer("SELECT state, error_reason FROM stations", 2, row);
    assert_int_equal(station_apply(NULL, "st1", "fault", "ribbon_out", &ch, NULL), 0);
    assert_int_equal(fake_db_writes(), 2);
    fake_db_reset();
    fake_db_answer("SELECT state, error_reason FROM stations", 2, row);
    assert_int_equal(station_apply(NULL, "st1", "pause", NULL, &ch, NULL), 0);
    assert_int_equal(fake_db_writes(), 2);
    fake_db_reset();
}

static void table_is_the_documented_life(void **state)
{
    (void)state;
    assert_int_equal(station_ntransitions, NALLOWED);
    for (size_t i = 0; i < NALLOWED; i++) {
        const struct transition *t = transition_find(station_transitions, station_ntransitions,
                                                     allowed[i].from, allowed[i].event);
        assert_non_null(t);
        assert_string_equal(t->to, allowed[i].to);
        if (allowed[i].audit)
            assert_string_equal(t->audit_action, allowed[i].audit);
        else
            assert_null(t->audit_action);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_pair_of_state_and_event),
        cmocka_unit_test(table_is_the_documented_life),
        cmocka_unit_test(the_same_error_again_writes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
