/* test_parcel.c — the courier events' state machine: forward only, attempts,
 * the branch fallback, and the same state whatever the arrival order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parcel.h"

#define T0 1764144000 /* 2025-11-26T08:00:00Z */

static struct parcel_state fold(struct parcel_event *ev, size_t n, int max_failed, bool branch)
{
    struct parcel_state st;
    parcel_sort(ev, n);
    parcel_fold(ev, n, max_failed, branch, &st);
    return st;
}

static void test_codes(void **state)
{
    (void)state;
    for (int c = 0; c < PARCEL_CODE_COUNT; c++)
        assert_int_equal(parcel_code_parse(parcel_code_name((enum parcel_code)c)), c);
    assert_int_equal(parcel_code_parse("collected"), -1);
    assert_int_equal(parcel_code_parse(""), -1);
}

static void test_no_events(void **state)
{
    (void)state;
    struct parcel_state st = fold(NULL, 0, 2, true);
    assert_string_equal(st.status, "dispatched");
    assert_int_equal(st.failed_attempts, 0);
    assert_false(st.needs_branch);
}

static void test_happy_path_and_forward_only(void **state)
{
    (void)state;
    struct parcel_event ev[] = {
        { PARCEL_PICKED_UP, T0, "e1" },
        { PARCEL_IN_TRANSIT, T0 + 60, "e2" },
        { PARCEL_OUT_FOR_DELIVERY, T0 + 120, "e3" },
        { PARCEL_DELIVERED, T0 + 180, "e4" },
        { PARCEL_IN_TRANSIT, T0 + 240, "late-but-newer" }, /* nothing follows delivered */
        { PARCEL_DELIVERY_FAILED, T0 + 300, "after" },
    };
    struct parcel_state st = fold(ev, 6, 2, true);
    assert_string_equal(st.status, "delivered");
    assert_int_equal(st.status_at, T0 + 180);
    assert_int_equal(st.failed_attempts, 0);

    /* An older scan never moves the status back. */
    struct parcel_event back[] = {
        { PARCEL_OUT_FOR_DELIVERY, T0 + 120, "ofd" },
        { PARCEL_IN_TRANSIT, T0 + 200, "stale-transit" },
        { PARCEL_PICKED_UP, T0 + 10, "old" },
    };
    st = fold(back, 3, 2, true);
    assert_string_equal(st.status, "out_for_delivery");
}

static void test_attempts_and_redirect(void **state)
{
    (void)state;
    struct parcel_event ev[] = {
        { PARCEL_OUT_FOR_DELIVERY, T0, "a1" },
        { PARCEL_DELIVERY_FAILED, T0 + 100, "f1" },
        { PARCEL_OUT_FOR_DELIVERY, T0 + 200, "a2" },
    };
    struct parcel_state st = fold(ev, 3, 2, true);
    /* The second attempt is forward of the first failure. */
    assert_string_equal(st.status, "out_for_delivery");
    assert_int_equal(st.failed_attempts, 1);

    struct parcel_event ev2[] = {
        { PARCEL_OUT_FOR_DELIVERY, T0, "a1" },       { PARCEL_DELIVERY_FAILED, T0 + 100, "f1" },
        { PARCEL_OUT_FOR_DELIVERY, T0 + 200, "a2" }, { PARCEL_DELIVERY_FAILED, T0 + 300, "f2" },
        { PARCEL_OUT_FOR_DELIVERY, T0 + 400, "a3" }, /* too late: it goes to the branch */
    };
    st = fold(ev2, 5, 2, true);
    assert_string_equal(st.status, "redirected_to_branch");
    assert_int_equal(st.failed_attempts, 2);
    assert_true(st.needs_branch);
    assert_int_equal(st.status_at, T0 + 300);

    struct parcel_event ev3[] = {
        { PARCEL_DELIVERY_FAILED, T0 + 100, "f1" },  { PARCEL_DELIVERY_FAILED, T0 + 300, "f2" },
        { PARCEL_ARRIVED_AT_BRANCH, T0 + 500, "b" }, { PARCEL_DELIVERY_FAILED, T0 + 700, "f3" },
        { PARCEL_DELIVERED, T0 + 800, "d" },
    };
    st = fold(ev3, 4, 2, true);
    assert_string_equal(st.status, "ready_for_collection");
    assert_int_equal(st.ready_at, T0 + 500);
    assert_int_equal(st.failed_attempts, 2);

    /* Delivered ends it from any state. */
    st = fold(ev3, 5, 2, true);
    assert_string_equal(st.status, "delivered");
    assert_false(st.needs_branch);

    /* With three attempts allowed, two failures are not enough. */
    st = fold(ev3, 2, 3, true);
    assert_string_equal(st.status, "delivery_failed");
    assert_false(st.needs_branch);

    /* No branch can take it: it stays failed, arrivals are not applied. */
    st = fold(ev3, 3, 2, false);
    assert_string_equal(st.status, "delivery_failed");
    assert_int_equal(st.failed_attempts, 2);
}

static void test_delivered_before_redirect_wins(void **state)
{
    (void)state;
    struct parcel_event ev[] = {
        { PARCEL_DELIVERY_FAILED, T0 + 100, "f1" },
        { PARCEL_DELIVERED, T0 + 150, "d" },
        { PARCEL_DELIVERY_FAILED, T0 + 300, "f2" },
    };
    struct parcel_state st = fold(ev, 3, 2, true);
    assert_string_equal(st.status, "delivered");
    assert_int_equal(st.failed_attempts, 1);
    assert_false(st.needs_branch);
}

static void shuffle(struct parcel_event *ev, size_t n, unsigned *seed)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rand_r(seed) % (i + 1);
        struct parcel_event t = ev[i];
        ev[i] = ev[j];
        ev[j] = t;
    }
}

/* Any arrival order gives the same state, ties of time included. */
static void test_order_independent(void **state)
{
    (void)state;
    const struct parcel_event script[] = {
        { PARCEL_PICKED_UP, T0, "s1" },
        { PARCEL_IN_TRANSIT, T0 + 50, "s2" },
        { PARCEL_OUT_FOR_DELIVERY, T0 + 100, "s3" },
        { PARCEL_DELIVERY_FAILED, T0 + 100, "s4" }, /* same second as s3 */
        { PARCEL_IN_TRANSIT, T0 + 150, "s5" },
        { PARCEL_OUT_FOR_DELIVERY, T0 + 200, "s6" },
        { PARCEL_DELIVERY_FAILED, T0 + 250, "s7" },
        { PARCEL_IN_TRANSIT, T0 + 300, "s8" },
        { PARCEL_ARRIVED_AT_BRANCH, T0 + 400, "s9" },
        { PARCEL_DELIVERED, T0 + 400, "s10" },
    };
    const size_t n = sizeof(script) / sizeof(script[0]);
    for (size_t prefix = 0; prefix <= n; prefix++) {
        struct parcel_event ev[16];
        memcpy(ev, script, sizeof(script));
        struct parcel_state want = fold(ev, prefix, 2, true);
        unsigned seed = (unsigned)prefix + 1;
        for (int round = 0; round < 200; round++) {
            memcpy(ev, script, sizeof(script));
            shuffle(ev, prefix ? prefix : 1, &seed);
            if (prefix == 0)
                memcpy(ev, script, sizeof(script));
            struct parcel_state got = fold(ev, prefix, 2, true);
            assert_string_equal(got.status, want.status);
            assert_int_equal(got.failed_attempts, want.failed_attempts);
            assert_int_equal(got.status_at, want.status_at);
            assert_int_equal(got.ready_at, want.ready_at);
        }
    }
    struct parcel_event ev[16];
    memcpy(ev, script, sizeof(script));
    struct parcel_state all = fold(ev, n, 2, true);
    assert_string_equal(all.status, "delivered");
    assert_int_equal(all.failed_attempts, 2);
}

/* The timeline has one entry per event, late ones included; the failure that
 * sends the card to the branch reads `redirected_to_branch`; and any arrival
 * order gives the same entries. */
static void test_timeline(void **state)
{
    (void)state;
    const struct parcel_event script[] = {
        { PARCEL_PICKED_UP, T0, "t1" },
        { PARCEL_OUT_FOR_DELIVERY, T0 + 100, "t2" },
        { PARCEL_DELIVERY_FAILED, T0 + 150, "t3" },
        { PARCEL_IN_TRANSIT, T0 + 120, "t4" }, /* late: below the status, still shown */
        { PARCEL_OUT_FOR_DELIVERY, T0 + 200, "t5" },
        { PARCEL_DELIVERY_FAILED, T0 + 250, "t6" },
        { PARCEL_DELIVERY_FAILED, T0 + 260, "t7" }, /* after the redirect: a failure */
        { PARCEL_ARRIVED_AT_BRANCH, T0 + 400, "t8" },
    };
    const char *const want[] = { "in_transit",      "out_for_delivery",    "in_transit",
                                 "delivery_failed", "out_for_delivery",    "redirected_to_branch",
                                 "delivery_failed", "ready_for_collection" };
    const size_t n = sizeof(script) / sizeof(script[0]);
    unsigned seed = 7;
    for (int round = 0; round < 100; round++) {
        struct parcel_event ev[16];
        const char *got[16];
        memcpy(ev, script, sizeof(script));
        if (round > 0)
            shuffle(ev, n, &seed);
        parcel_sort(ev, n);
        parcel_timeline(ev, n, 2, true, got);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(got[i], want[i]);
    }
    /* With no branch to take the card, every failure stays a failure. */
    struct parcel_event ev[16];
    const char *got[16];
    memcpy(ev, script, sizeof(script));
    parcel_sort(ev, n);
    parcel_timeline(ev, n, 2, false, got);
    assert_string_equal(got[5], "delivery_failed");
}

/* An event later than all the others moves the stored state by one step
 * (parcel_step) to exactly what folding all of them gives: for every
 * sequence of up to five events in time order, after one or two allowed
 * attempts, with and without a branch. The status stored is all the store
 * keeps besides the count of failures, so the step is given nothing else. */
static void test_step_is_fold(void **state)
{
    (void)state;
    const int codes = PARCEL_CODE_COUNT;
    long checked = 0;
    for (int run = 0; run < 4; run++) {
        int max_failed = run % 2 + 1;
        bool branch = run < 2;
        for (long x = 0, total = (long)codes * codes * codes * codes * codes; x < total; x++) {
            struct parcel_event ev[5];
            long y = x;
            for (int i = 0; i < 5; i++, y /= codes)
                ev[i] = (struct parcel_event){ (enum parcel_code)(y % codes), T0 + i * 60, "e" };
            struct parcel_state stepped = { .status = "dispatched" };
            for (size_t n = 1; n <= 5; n++) {
                struct parcel_state folded;
                parcel_fold(ev, n, max_failed, branch, &folded);
                struct parcel_state from = { .status = stepped.status,
                                             .failed_attempts = stepped.failed_attempts };
                assert_int_equal(parcel_step(&from, &ev[n - 1], max_failed, branch), 0);
                assert_string_equal(from.status, folded.status);
                assert_int_equal(from.failed_attempts, folded.failed_attempts);
                assert_int_equal(from.needs_branch, folded.needs_branch);
                if (strcmp(from.status, stepped.status) != 0) {
                    /* a change of status is dated by its event */
                    assert_int_equal(from.status_at, folded.status_at);
                    assert_int_equal(from.ready_at, folded.ready_at);
                }
                stepped = from;
                checked++;
            }
        }
    }
    assert_true(checked > 10000);
    struct parcel_state bad = { .status = "collected" };
    const struct parcel_event e = { PARCEL_DELIVERED, T0, "x" };
    assert_int_equal(parcel_step(&bad, &e, 2, true), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_no_events),
        cmocka_unit_test(test_happy_path_and_forward_only),
        cmocka_unit_test(test_attempts_and_redirect),
        cmocka_unit_test(test_delivered_before_redirect_wins),
        cmocka_unit_test(test_order_independent),
        cmocka_unit_test(test_timeline),
        cmocka_unit_test(test_step_is_fold),
    };
    return cmocka_run_group_tests_name("parcel", tests, NULL, NULL);
}
