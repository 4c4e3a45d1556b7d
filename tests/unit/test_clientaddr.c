/* test_clientaddr.c — the client key of the limits: IPv4, IPv6 by /64,
 * forwarded addresses believed from trusted proxies only. */
#include "clientaddr.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static const char *key(const char *peer, const char *xff, const char *trusted)
{
    static char out[CLIENT_KEY_LEN];
    clientaddr_key(peer, xff, trusted, out);
    return out;
}

static void direct_clients(void **state)
{
    (void)state;
    assert_string_equal(key("192.0.2.7", NULL, ""), "192.0.2.7");
    assert_string_equal(key("::ffff:192.0.2.7", NULL, ""), "192.0.2.7");
    assert_string_equal(key("2001:db8:1:2:3:4:5:6", NULL, ""), "2001:db8:1:2::/64");
    assert_string_equal(key("2001:db8:1:2::9", NULL, ""), "2001:db8:1:2::/64");
    assert_string_equal(key("2001:db8:1:3::9", NULL, ""), "2001:db8:1:3::/64");
    assert_string_equal(key("::1", NULL, ""), "::/64");
    /* no trusted proxy: a forwarded address is never believed */
    assert_string_equal(key("192.0.2.7", "198.51.100.1", ""), "192.0.2.7");
    assert_string_equal(key("192.0.2.7", "198.51.100.1", "10.0.0.0/8"), "192.0.2.7");
}

static void behind_trusted_proxies(void **state)
{
    (void)state;
    const char *trusted = "10.0.0.0/8, 192.0.2.1 2001:db8:ff::/48";
    assert_string_equal(key("10.1.2.3", "198.51.100.1", trusted), "198.51.100.1");
    assert_string_equal(key("10.1.2.3", " 198.51.100.1 , 10.4.4.4", trusted), "198.51.100.1");
    /* the client's own left-hand entries are not believed */
    assert_string_equal(key("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.4.4.4", trusted),
                        "198.51.100.1");
    assert_string_equal(key("192.0.2.1", "2001:db8:5:6::1", trusted), "2001:db8:5:6::/64");
    assert_string_equal(key("2001:db8:ff:1::1", "203.0.113.5", trusted), "203.0.113.5");
    /* garbage stops the walk at the last proxy's word */
    assert_string_equal(key("10.1.2.3", "junk", trusted), "10.1.2.3");
    assert_string_equal(key("10.1.2.3", "198.51.100.1, junk, 10.4.4.4", trusted), "10.4.4.4");
    assert_string_equal(key("10.1.2.3", "", trusted), "10.1.2.3");
    /* every hop a proxy: the leftmost one is the client */
    assert_string_equal(key("10.1.2.3", "10.5.5.5", trusted), "10.5.5.5");
}

static void list_validation(void **state)
{
    (void)state;
    assert_true(clientaddr_list_valid(""));
    assert_true(clientaddr_list_valid(NULL));
    assert_true(clientaddr_list_valid("127.0.0.1, ::1, 10.0.0.0/8 fd00::/8"));
    assert_false(clientaddr_list_valid("127.0.0.1/33"));
    assert_false(clientaddr_list_valid("::1/129"));
    assert_false(clientaddr_list_valid("proxy.example"));
    assert_false(clientaddr_list_valid("10.0.0.0/"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(direct_clients),
        cmocka_unit_test(behind_trusted_proxies),
        cmocka_unit_test(list_validation),
    };
    return cmocka_run_group_tests_name("clientaddr", tests, NULL, NULL);
}
