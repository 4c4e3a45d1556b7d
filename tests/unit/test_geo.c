/* test_geo.c — great-circle distances and the nearest place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "geo.h"

static void test_known_distances(void **state)
{
    (void)state;
    struct geo_point riyadh = { 24.7136, 46.6753 }, jeddah = { 21.4858, 39.1925 };
    struct geo_point london = { 51.5074, -0.1278 }, paris = { 48.8566, 2.3522 };
    /* Riyadh–Jeddah is about 845 km as the crow flies, London–Paris 344 km. */
    assert_float_equal(geo_distance_km(riyadh, jeddah), 845.10, 0.05);
    assert_float_equal(geo_distance_km(london, paris), 343.56, 0.05);
    /* Symmetric, zero to itself. */
    assert_float_equal(geo_distance_km(jeddah, riyadh), geo_distance_km(riyadh, jeddah), 1e-9);
    assert_float_equal(geo_distance_km(riyadh, riyadh), 0.0, 1e-9);
}

static void test_extremes(void **state)
{
    (void)state;
    /* Antipodes: half the circumference, no NaN from rounding. */
    struct geo_point a = { 0, 0 }, b = { 0, 180 }, n = { 90, 0 }, s = { -90, 0 };
    assert_float_equal(geo_distance_km(a, b), 3.14159265358979 * GEO_EARTH_RADIUS_KM, 1e-6);
    assert_float_equal(geo_distance_km(n, s), 3.14159265358979 * GEO_EARTH_RADIUS_KM, 1e-6);
    /* Across the date line is short, not around the world. */
    struct geo_point w = { 10, 179.9 }, e = { 10, -179.9 };
    assert_true(geo_distance_km(w, e) < 25);
}

static void test_nearest(void **state)
{
    (void)state;
    struct geo_point olaya = { 24.6920, 46.6850 };
    struct geo_point branches[] = {
        { 24.8050, 46.6150 }, /* Malqa */
        { 24.7330, 46.8220 }, /* Naseem */
        { 24.6930, 46.6850 }, /* nearly at the address */
        { 21.5600, 39.1600 }, /* Jeddah */
    };
    assert_int_equal(geo_nearest(olaya, branches, 4), 2);
    assert_int_equal(geo_nearest(olaya, branches, 2), 0);
    assert_int_equal(geo_nearest(olaya, branches, 0), -1);
    /* A tie goes to the lower index. */
    struct geo_point twins[] = { { 1, 1 }, { 2, 2 }, { 1, 1 } };
    struct geo_point from = { 1, 1 };
    assert_int_equal(geo_nearest(from, twins, 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_distances),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_nearest),
    };
    return cmocka_run_group_tests_name("geo", tests, NULL, NULL);
}
