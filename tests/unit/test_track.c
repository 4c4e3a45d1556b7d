/* test_track.c — what a citizen sees of the delivery address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "track.h"

static void mask_keeps_city_and_district_only(void **state)
{
    (void)state;
    char out[128];
    track_mask_address("Riyadh", "Al Olaya", out, sizeof(out));
    assert_string_equal(out, "Riyadh, Al Olaya, ****"); /* the example of API.md */
    track_mask_address("الرياض", "العليا", out, sizeof(out));
    assert_string_equal(out, "الرياض, العليا, ****");
}

static void mask_tolerates_missing_parts(void **state)
{
    (void)state;
    char out[64];
    track_mask_address(NULL, NULL, out, sizeof(out));
    assert_string_equal(out, ", , ****");
    track_mask_address("Jeddah", NULL, out, sizeof(out));
    assert_string_equal(out, "Jeddah, , ****");
}

static void mask_never_overflows(void **state)
{
    (void)state;
    char out[12];
    memset(out, 'x', sizeof(out));
    track_mask_address("Riyadh", "Al Olaya", out, 10);
    assert_string_equal(out, "Riyadh, A");
    assert_int_equal(out[10], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mask_keeps_city_and_district_only),
        cmocka_unit_test(mask_tolerates_missing_parts),
        cmocka_unit_test(mask_never_overflows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
