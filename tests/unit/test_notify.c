/* test_notify.c — the notification worker's backoff and the gateway body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "notify.h"

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(notify_backoff_s(0, 300), 1);
    assert_int_equal(notify_backoff_s(1, 300), 1);
    assert_int_equal(notify_backoff_s(2, 300), 2);
    assert_int_equal(notify_backoff_s(3, 300), 4);
    assert_int_equal(notify_backoff_s(9, 300), 256);
    assert_int_equal(notify_backoff_s(10, 300), 300);
    assert_int_equal(notify_backoff_s(1000, 300), 300); /* no overflow */
    assert_int_equal(notify_backoff_s(5, 3), 3);
}

static void test_body(void **state)
{
    (void)state;
    json_t *b = notify_body("6f1c3d2e-0000-4000-8000-000000000001", "+966501234567",
                            "طلب الهوية الوطنية رقم RQ-1: تم التسليم",
                            "National ID request RQ-1: Delivered", "RQ-1", "delivered");
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "id")),
                        "6f1c3d2e-0000-4000-8000-000000000001");
    assert_string_equal(json_string_value(json_object_get(b, "phone")), "+966501234567");
    json_t *text = json_object_get(b, "text");
    assert_string_equal(json_string_value(json_object_get(text, "ar")),
                        "طلب الهوية الوطنية رقم RQ-1: تم التسليم");
    assert_string_equal(json_string_value(json_object_get(text, "en")),
                        "National ID request RQ-1: Delivered");
    assert_string_equal(json_string_value(json_object_get(b, "request_no")), "RQ-1");
    assert_string_equal(json_string_value(json_object_get(b, "status")), "delivered");
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_body),
    };
    return cmocka_run_group_tests_name("notify", tests, NULL, NULL);
}
