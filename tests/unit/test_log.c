/* test_log.c — what a log line may hold: control bytes and backslashes are
 * escaped, so a client's input can neither break a line nor forge one. */
#include "log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void control_bytes_are_escaped(void **state)
{
    (void)state;
    char out[256];
    log_escape("GET /v1/x\n2026-01-01T00:00:00Z error forged\r\x1b[2J\x7f", out, sizeof(out));
    assert_string_equal(out, "GET /v1/x\\x0a2026-01-01T00:00:00Z error forged\\x0d\\x1b[2J\\x7f");
    log_escape("a\\x0ab", out, sizeof(out)); /* a literal backslash cannot pose as an escape */
    assert_string_equal(out, "a\\x5cx0ab");
    log_escape("تتبع RQ-1 ok", out, sizeof(out)); /* UTF-8 stays readable */
    assert_string_equal(out, "تتبع RQ-1 ok");
    log_escape("", out, sizeof(out));
    assert_string_equal(out, "");
}

static void output_is_cut_whole(void **state)
{
    (void)state;
    char out[8];
    log_escape("abcdefghij", out, sizeof(out));
    assert_true(strlen(out) < sizeof(out));
    log_escape("\n\n\n\n", out, sizeof(out)); /* never half an escape */
    assert_string_equal(out, "\\x0a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(control_bytes_are_escaped),
        cmocka_unit_test(output_is_cut_whole),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
