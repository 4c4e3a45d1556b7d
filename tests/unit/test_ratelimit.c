/* test_ratelimit.c — failed look-ups per client address in a sliding window. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "config.h"
#include "ratelimit.h"

#define T0 ((time_t)1795248000) /* 2026-11-21T08:00:00Z */

static int setup_10_per_minute(void **state)
{
    struct ratelimit *rl = NULL;
    if (ratelimit_new(&rl, 10, 60) != 0)
        return -1;
    *state = rl;
    return 0;
}

static int teardown(void **state)
{
    ratelimit_free(*state);
    return 0;
}

static void bad_arguments(void **state)
{
    (void)state;
    struct ratelimit *rl = (struct ratelimit *)&rl;
    assert_int_equal(ratelimit_new(&rl, 0, 60), -EINVAL);
    assert_null(rl);
    rl = (struct ratelimit *)&rl;
    assert_int_equal(ratelimit_new(&rl, 10, 0), -EINVAL);
    assert_null(rl);
    ratelimit_free(NULL);
}

/* Every limit the configuration accepts is honoured exactly: the limit-th
 * failure blocks, the one before does not. */
static void every_configurable_limit_is_honoured(void **state)
{
    (void)state;
    struct config cfg;
    assert_int_equal(config_defaults(&cfg), 0);
    static const char *const limits[] = { "1", "10", "64", "65", "100", "1000", "100000" };
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (config_set(&cfg, "track_fail_limit", limits[i]) != 0)
            continue; /* refused by the configuration: fine */
        struct ratelimit *rl = NULL;
        assert_int_equal(ratelimit_new(&rl, cfg.track_fail_limit, 60), 0);
        for (int n = 0; n < cfg.track_fail_limit - 1; n++)
            ratelimit_fail(rl, "192.0.2.1", T0);
        assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0), 0);
        ratelimit_fail(rl, "192.0.2.1", T0);
        assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0), 60);
        ratelimit_free(rl);
    }
    config_free(&cfg);
}

static void unknown_address_is_free(void **state)
{
    assert_int_equal(ratelimit_blocked(*state, "192.0.2.1", T0), 0);
    assert_int_equal(ratelimit_blocked(*state, "", T0), 0);
}

/* Ten failures, one a second from T0: the eleventh try waits until the
 * first failure leaves the window. */
static void tenth_failure_blocks_until_the_first_ages_out(void **state)
{
    struct ratelimit *rl = *state;
    for (int i = 0; i < 9; i++) {
        ratelimit_fail(rl, "192.0.2.1", T0 + i);
        assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + i), 0);
    }
    ratelimit_fail(rl, "192.0.2.1", T0 + 9);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + 9), 51);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + 30), 30);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + 59), 1);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + 60), 0);
    /* another failure now: the oldest of the last ten is T0 + 1 */
    ratelimit_fail(rl, "192.0.2.1", T0 + 60);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + 60), 1);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + 61), 0);
}

static void failures_spread_over_more_than_a_window_do_not_block(void **state)
{
    struct ratelimit *rl = *state;
    for (int i = 0; i < 100; i++) {
        ratelimit_fail(rl, "192.0.2.1", T0 + i * 7); /* 10 failures take 63 s */
        assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + i * 7), 0);
    }
}

static void addresses_are_counted_apart(void **state)
{
    struct ratelimit *rl = *state;
    for (int i = 0; i < 10; i++)
        ratelimit_fail(rl, "192.0.2.1", T0);
    ratelimit_fail(rl, "2001:db8::1", T0);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + 1), 59);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.2", T0 + 1), 0);
    assert_int_equal(ratelimit_blocked(rl, "2001:db8::1", T0 + 1), 0);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.10", T0 + 1), 0);
}

/* The longest address a client_ip holds (63 characters) is tracked. */
static void long_address(void **state)
{
    struct ratelimit *rl = *state;
    char key[64];
    memset(key, 'a', 63);
    key[63] = '\0';
    for (int i = 0; i < 10; i++)
        ratelimit_fail(rl, key, T0);
    assert_int_equal(ratelimit_blocked(rl, key, T0), 60);
    key[62] = 'b';
    assert_int_equal(ratelimit_blocked(rl, key, T0), 0);
}

/* A flood of other addresses that failed earlier does not push out an
 * address that is blocked now. */
static void flood_of_older_addresses_keeps_the_blocked_one(void **state)
{
    struct ratelimit *rl = *state;
    for (int i = 0; i < 10; i++)
        ratelimit_fail(rl, "198.51.100.7", T0);
    char key[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        ratelimit_fail(rl, key, T0 - 30);
    }
    assert_int_equal(ratelimit_blocked(rl, "198.51.100.7", T0 + 10), 50);
}

/* 2000 neighbouring addresses (half the table) each fail ten times in a
 * minute: every one of them stays blocked. */
static void neighbouring_addresses_keep_their_own_entries(void **state)
{
    struct ratelimit *rl = *state;
    char key[32];
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < 2000; i++) {
            snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
            ratelimit_fail(rl, key, T0 + round);
        }
    int free_to_try = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        free_to_try += ratelimit_blocked(rl, key, T0 + 9) == 0;
    }
    assert_int_equal(free_to_try, 0);
}

struct worker {
    struct ratelimit *rl;
    int id;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    char key[32];
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof(key), "203.0.%d.%d", w->id, i);
            ratelimit_fail(w->rl, key, T0 + round);
            (void)ratelimit_blocked(w->rl, key, T0 + round);
        }
    return NULL;
}

static void threads_share_one_table(void **state)
{
    struct ratelimit *rl = *state;
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ rl, i };
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    char key[32];
    for (int id = 0; id < 4; id++)
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof(key), "203.0.%d.%d", id, i);
            assert_int_equal(ratelimit_blocked(rl, key, T0 + 9), 51);
        }
}

/* A reservation counts at once; a success gives it back, a failure keeps it. */
static void reservations_count_at_once(void **state)
{
    struct ratelimit *rl = *state;
    struct rl_ticket t[11];
    for (int i = 0; i < 10; i++)
        assert_int_equal(ratelimit_reserve(rl, "192.0.2.1", T0, &t[i]), 0);
    for (int i = 0; i < 10; i++)
        if (i != 3)
            ratelimit_keep(rl, &t[i]);
    ratelimit_release(rl, &t[3]);
    ratelimit_release(rl, &t[3]); /* once only */
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + 1), 0);
    assert_int_equal(ratelimit_reserve(rl, "192.0.2.1", T0 + 1, &t[3]), 0);
    ratelimit_keep(rl, &t[3]);
    assert_int_equal(ratelimit_reserve(rl, "192.0.2.1", T0 + 1, &t[10]), 59);
    ratelimit_release(rl, &t[10]); /* a refused reservation holds nothing */
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.1", T0 + 1), 59);
    ratelimit_release(rl, NULL);
}

struct settler {
    struct ratelimit *rl;
    struct rl_ticket *ticket;
};

static void *settle_later(void *arg)
{
    struct settler *s = arg;
    usleep(100000);
    ratelimit_release(s->rl, s->ticket);
    return NULL;
}

/* When attempts under way could use up the limit, the next one waits for
 * one to settle instead of being refused: a success frees its place. */
static void a_success_under_way_refuses_no_one(void **state)
{
    struct ratelimit *rl = *state;
    struct rl_ticket t[11];
    for (int i = 0; i < 10; i++)
        assert_int_equal(ratelimit_reserve(rl, "192.0.2.7", T0, &t[i]), 0);
    pthread_t th;
    struct settler s = { rl, &t[0] };
    assert_int_equal(pthread_create(&th, NULL, settle_later, &s), 0);
    assert_int_equal(ratelimit_reserve(rl, "192.0.2.7", T0, &t[10]), 0);
    pthread_join(th, NULL);
    for (int i = 1; i < 11; i++)
        ratelimit_keep(rl, &t[i]);
    assert_int_equal(ratelimit_blocked(rl, "192.0.2.7", T0), 60);
}

/* ---- a rate: calls per second with bursts ---- */

#define MS0 1000000LL /* any monotonic instant */

static void rate_bad_arguments(void **state)
{
    (void)state;
    struct ratelimit *rl = (struct ratelimit *)&rl;
    assert_int_equal(ratelimit_new_rate(&rl, 0, 10), -EINVAL);
    assert_null(rl);
    assert_int_equal(ratelimit_new_rate(&rl, 10, 0), -EINVAL);
    assert_null(rl);
}

static void rate_allows_a_burst_then_the_rate(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    assert_int_equal(ratelimit_new_rate(&rl, 10, 30), 0);
    for (int i = 0; i < 30; i++)
        assert_int_equal(ratelimit_take(rl, "10.0.0.1", MS0), 0);
    /* The 31st waits for one call's worth: 100 ms at 10 a second. */
    long wait = ratelimit_take(rl, "10.0.0.1", MS0);
    assert_in_range(wait, 99, 101);
    /* A refusal takes nothing: still one call after 100 ms, not two. */
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", MS0 + 100), 0);
    assert_true(ratelimit_take(rl, "10.0.0.1", MS0 + 100) > 0);
    /* Over ten seconds, a hundred calls and no more. */
    int allowed = 0;
    for (long long t = MS0 + 101; t <= MS0 + 10100; t += 5)
        allowed += ratelimit_take(rl, "10.0.0.1", t) == 0;
    assert_in_range(allowed, 99, 101);
    /* Idle, the bucket fills up to the burst, never past it. */
    int burst = 0;
    while (ratelimit_take(rl, "10.0.0.1", MS0 + 3600000) == 0)
        burst++;
    assert_int_equal(burst, 30);
    ratelimit_free(rl);
}

static void rate_counts_addresses_apart(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    assert_int_equal(ratelimit_new_rate(&rl, 1, 2), 0);
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", MS0), 0);
    assert_int_equal(ratelimit_take(rl, "10.0.0.1", MS0), 0);
    assert_true(ratelimit_take(rl, "10.0.0.1", MS0) > 0);
    assert_int_equal(ratelimit_take(rl, "10.0.0.2", MS0), 0);
    assert_int_equal(ratelimit_take(rl, "2001:db8:1:2::/64", MS0), 0);
    /* A clock read late by another thread changes nothing. */
    assert_true(ratelimit_take(rl, "10.0.0.1", MS0 - 500) > 0);
    ratelimit_free(rl);
}

/* ---- connections open at once ---- */

static void conns_serve_hold_then_refuse(void **state)
{
    (void)state;
    struct ratelimit *rl = (struct ratelimit *)&rl;
    assert_int_equal(ratelimit_new_conns(&rl, 0, 2), -EINVAL);
    assert_int_equal(ratelimit_new_conns(&rl, 2, -1), -EINVAL);
    assert_int_equal(ratelimit_new_conns(&rl, 2, 1), 0);
    bool counted = false;
    assert_false(ratelimit_conn_full(rl, "10.0.0.1"));
    assert_int_equal(ratelimit_conn_open(rl, "10.0.0.1", T0, &counted), RL_CONN_SERVE);
    assert_true(counted);
    assert_int_equal(ratelimit_conn_open(rl, "10.0.0.1", T0, &counted), RL_CONN_SERVE);
    assert_false(ratelimit_conn_full(rl, "10.0.0.1"));
    assert_int_equal(ratelimit_conn_open(rl, "10.0.0.1", T0, &counted), RL_CONN_HOLD);
    assert_true(ratelimit_conn_full(rl, "10.0.0.1"));
    assert_false(ratelimit_conn_full(rl, "10.0.0.2"));
    /* One closes: room for one more, past the limit again. */
    ratelimit_conn_close(rl, "10.0.0.1");
    assert_false(ratelimit_conn_full(rl, "10.0.0.1"));
    assert_int_equal(ratelimit_conn_open(rl, "10.0.0.1", T0, &counted), RL_CONN_HOLD);
    /* Two close: one of the limit is free again. */
    ratelimit_conn_close(rl, "10.0.0.1");
    ratelimit_conn_close(rl, "10.0.0.1");
    assert_int_equal(ratelimit_conn_open(rl, "10.0.0.1", T0, &counted), RL_CONN_SERVE);
    ratelimit_free(rl);
}

/* Addresses with connections open keep their entries however many others
 * come and go; with every slot of a probe in use a connection is served and
 * not counted. */
static void conns_keep_open_addresses(void **state)
{
    (void)state;
    struct ratelimit *rl = NULL;
    assert_int_equal(ratelimit_new_conns(&rl, 1, 0), 0);
    bool counted = false;
    assert_int_equal(ratelimit_conn_open(rl, "10.0.0.1", T0, &counted), RL_CONN_SERVE);
    char key[32];
    int uncounted = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "10.%d.%d.%d", 1 + i / 65536, (i / 256) % 256, i % 256);
        ratelimit_conn_open(rl, key, T0 + 1, &counted);
        uncounted += !counted;
    }
    assert_true(uncounted > 0);
    assert_true(ratelimit_conn_full(rl, "10.0.0.1"));
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(rate_bad_arguments),
        cmocka_unit_test(rate_allows_a_burst_then_the_rate),
        cmocka_unit_test(rate_counts_addresses_apart),
        cmocka_unit_test(conns_serve_hold_then_refuse),
        cmocka_unit_test(conns_keep_open_addresses),
        cmocka_unit_test(every_configurable_limit_is_honoured),
        cmocka_unit_test_setup_teardown(unknown_address_is_free, setup_10_per_minute, teardown),
        cmocka_unit_test_setup_teardown(tenth_failure_blocks_until_the_first_ages_out,
                                        setup_10_per_minute, teardown),
        cmocka_unit_test_setup_teardown(failures_spread_over_more_than_a_window_do_not_block,
                                        setup_10_per_minute, teardown),
        cmocka_unit_test_setup_teardown(addresses_are_counted_apart, setup_10_per_minute, teardown),
        cmocka_unit_test_setup_teardown(reservations_count_at_once, setup_10_per_minute, teardown),
        cmocka_unit_test_setup_teardown(a_success_under_way_refuses_no_one, setup_10_per_minute,
                                        teardown),
        cmocka_unit_test_setup_teardown(long_address, setup_10_per_minute, teardown),
        cmocka_unit_test_setup_teardown(flood_of_older_addresses_keeps_the_blocked_one,
                                        setup_10_per_minute, teardown),
        cmocka_unit_test_setup_teardown(neighbouring_addresses_keep_their_own_entries,
                                        setup_10_per_minute, teardown),
        cmocka_unit_test_setup_teardown(threads_share_one_table, setup_10_per_minute, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
