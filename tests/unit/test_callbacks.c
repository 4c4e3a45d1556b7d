/* test_callbacks.c — the callback worker's backoff and which answers it
 * tries again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "callbacks.h"
#include "claim.h"

static void backoff_doubles_up_to_the_cap(void **state)
{
    (void)state;
    /* No jitter: 1 s, 2 s, 4 s ... */
    assert_int_equal(callbacks_backoff_ms(0, 600, 0, 0), 1000);
    assert_int_equal(callbacks_backoff_ms(1, 600, 0, 0), 1000);
    assert_int_equal(callbacks_backoff_ms(2, 600, 0, 0), 2000);
    assert_int_equal(callbacks_backoff_ms(4, 600, 0, 0), 8000);
    assert_int_equal(callbacks_backoff_ms(10, 600, 0, 0), 512000);
    assert_int_equal(callbacks_backoff_ms(11, 600, 0, 0), 600000);
    assert_int_equal(callbacks_backoff_ms(5000, 600, 0, 0), 600000);
    assert_int_equal(callbacks_backoff_ms(3, 2, 0, 0), 2000);
}

static void jitter_takes_off_at_most_half(void **state)
{
    (void)state;
    assert_int_equal(callbacks_backoff_ms(3, 600, 0.5, 0), 3000);
    long low = callbacks_backoff_ms(3, 600, 0.999999, 0);
    assert_true(low > 2000 && low <= 2001);
    assert_int_equal(callbacks_backoff_ms(12, 600, 0.5, 0), 450000);
    /* out of range: none */
    assert_int_equal(callbacks_backoff_ms(3, 600, 1.5, 0), 4000);
    assert_int_equal(callbacks_backoff_ms(3, 600, -1, 0), 4000);
}

static void retry_after_is_honoured_when_longer(void **state)
{
    (void)state;
    assert_int_equal(callbacks_backoff_ms(1, 600, 0, 30), 30000);
    /* beyond the cap too: the platform asked for it */
    assert_int_equal(callbacks_backoff_ms(1, 2, 0, 30), 30000);
    /* shorter than the backoff: the backoff */
    assert_int_equal(callbacks_backoff_ms(5, 600, 0, 3), 16000);
    /* a day at most */
    assert_int_equal(callbacks_backoff_ms(1, 600, 0, 10L * 86400),
                     CALLBACK_MAX_RETRY_AFTER_S * 1000L);
    assert_int_equal(callbacks_backoff_ms(1, 600, 0, -5), 1000);
}

static void which_answers_are_tried_again(void **state)
{
    (void)state;
    const long again[] = { 0, 408, 429, 500, 502, 503, 504, 599 };
    const long stop[] = { 400, 401, 403, 404, 409, 410, 413, 415, 422, 451, 301, 304, 100 };
    for (size_t i = 0; i < sizeof(again) / sizeof(again[0]); i++)
        assert_true(callbacks_retryable(again[i]));
    for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++)
        assert_false(callbacks_retryable(stop[i]));
}

/* A claim outlives the sends it covers, and the recording after them. */
static void claim_outlives_the_sends(void **state)
{
    (void)state;
    assert_int_equal(claim_ms(10000, 1), 10000 + CLAIM_MARGIN_MS);
    assert_int_equal(claim_ms(5000, 50), 250000 + CLAIM_MARGIN_MS);
    assert_int_equal(claim_ms(5000, 0), 5000 + CLAIM_MARGIN_MS);
    assert_true(claim_ms(2000, 1) > 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_doubles_up_to_the_cap),
        cmocka_unit_test(jitter_takes_off_at_most_half),
        cmocka_unit_test(retry_after_is_honoured_when_longer),
        cmocka_unit_test(which_answers_are_tried_again),
        cmocka_unit_test(claim_outlives_the_sends),
    };
    return cmocka_run_group_tests_name("callbacks", tests, NULL, NULL);
}
