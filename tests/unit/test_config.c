/* test_config.c — defaults, bounds, stations and the config file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static int setup(void **state)
{
    struct config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg || config_defaults(cfg) != 0)
        return -1;
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    config_free(*state);
    free(*state);
    return 0;
}

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *temp_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/cardd-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static void defaults(void **state)
{
    struct config *cfg = *state;
    assert_string_equal(cfg->listen_address, "127.0.0.1");
    assert_int_equal(cfg->port, 8080);
    assert_string_equal(cfg->database, "");
    assert_int_equal(cfg->db_pool_size, 16);
    assert_int_equal(cfg->track_fail_limit, 10);    /* API.md: 10 failed look-ups ... */
    assert_int_equal(cfg->track_fail_window_s, 60); /* ... a minute */
    assert_int_equal(cfg->delivery_attempts, 2);    /* API.md: default 2 */
    assert_int_equal(cfg->collection_days, 10);
    assert_int_equal(cfg->spoil_limit, 3);
    assert_int_equal(cfg->notify_batch, 50);
    assert_int_equal(cfg->notify_max_backoff_s, 300);
    assert_string_equal(cfg->master_key_file, "keys/master.key");
    assert_string_equal(cfg->log_level, "info");
    assert_string_equal(cfg->sql_dir, "sql");
    assert_string_equal(cfg->sms_gateway_url, "");
    assert_int_equal(cfg->station_count, 0);
}

static void integers_and_their_bounds(void **state)
{
    struct config *cfg = *state;
    assert_int_equal(config_set(cfg, "port", "0"), 0);
    assert_int_equal(cfg->port, 0);
    assert_int_equal(config_set(cfg, "port", "65535"), 0);
    assert_int_equal(cfg->port, 65535);
    assert_int_equal(config_set(cfg, "port", "65536"), -EINVAL);
    assert_int_equal(config_set(cfg, "port", "-1"), -EINVAL);
    assert_int_equal(config_set(cfg, "port", "80x"), -EINVAL);
    assert_int_equal(config_set(cfg, "port", ""), -EINVAL);
    assert_int_equal(config_set(cfg, "port", "99999999999999999999999"), -EINVAL);
    assert_int_equal(cfg->port, 65535); /* a refused value leaves the old one */

    assert_int_equal(config_set(cfg, "delivery_attempts", "0"), -EINVAL);
    assert_int_equal(config_set(cfg, "delivery_attempts", "11"), -EINVAL);
    assert_int_equal(config_set(cfg, "delivery_attempts", "3"), 0);
    assert_int_equal(cfg->delivery_attempts, 3);
    assert_int_equal(config_set(cfg, "db_pool_size", "0"), -EINVAL);
    assert_int_equal(config_set(cfg, "db_pool_size", "256"), 0);
    assert_int_equal(cfg->db_pool_size, 256);
}

static void strings_and_unknown_keys(void **state)
{
    struct config *cfg = *state;
    assert_int_equal(config_set(cfg, "database", "dbname=cardd host=/run/postgresql"), 0);
    assert_string_equal(cfg->database, "dbname=cardd host=/run/postgresql");
    assert_int_equal(config_set(cfg, "database", "dbname=other"), 0);
    assert_string_equal(cfg->database, "dbname=other");
    assert_int_equal(config_set(cfg, "sms_gateway_url", "http://127.0.0.1:9/sms"), 0);
    assert_string_equal(cfg->sms_gateway_url, "http://127.0.0.1:9/sms");
    assert_int_equal(config_set(cfg, "no_such_key", "1"), -EINVAL);
    assert_int_equal(config_set(cfg, "Port", "1"), -EINVAL);
    assert_int_equal(config_set(cfg, "", "1"), -EINVAL);
}

static void stations(void **state)
{
    struct config *cfg = *state;
    assert_int_equal(config_set(cfg, "station", "st1 evolis EV0001 Virtual PCD 00 00"), 0);
    assert_int_equal(config_set(cfg, "station", "st-2_b evolis EV0002 Virtual PCD 00 01"), 0);
    assert_int_equal(cfg->station_count, 2);
    assert_string_equal(cfg->stations[0].id, "st1");
    assert_string_equal(cfg->stations[0].printer_driver, "evolis");
    assert_string_equal(cfg->stations[0].printer_serial, "EV0001");
    assert_string_equal(cfg->stations[0].reader, "Virtual PCD 00 00");
    assert_string_equal(cfg->stations[1].id, "st-2_b");
    assert_string_equal(cfg->stations[1].reader, "Virtual PCD 00 01");

    assert_int_equal(config_set(cfg, "station", "st1 evolis EV0003 Virtual PCD 00 02"), -EINVAL);
    assert_int_equal(config_set(cfg, "station", "st/3 evolis EV0003 Virtual PCD 00 02"), -EINVAL);
    assert_int_equal(config_set(cfg, "station", "st3 evolis EV0003"), -EINVAL);
    assert_int_equal(config_set(cfg, "station", "st3 evolis EV0003 "), -EINVAL);
    assert_int_equal(config_set(cfg, "station", "st3 evolis"), -EINVAL);
    assert_int_equal(config_set(cfg, "station", ""), -EINVAL);
    assert_int_equal(cfg->station_count, 2);
}

/* A word longer than its field is refused, not cut and carried over into
 * the next field. */
static void station_words_too_long(void **state)
{
    struct config *cfg = *state;
    char value[512];
    /* id of 33 characters (the field holds 32) */
    snprintf(value, sizeof(value), "%s evolis EV0001 Virtual PCD 00 00",
             "abcdefghijklmnopqrstuvwxyz0123456");
    assert_int_equal(config_set(cfg, "station", value), -EINVAL);
    /* driver of 17 characters (the field holds 16) */
    assert_int_equal(config_set(cfg, "station", "st1 evolisevolisevoli EV0001 Virtual PCD 00 00"),
                     -EINVAL);
    /* printer serial of 33 characters */
    snprintf(value, sizeof(value), "st1 evolis %s Virtual PCD 00 00",
             "EV0001EV0001EV0001EV0001EV0001EV0");
    assert_int_equal(config_set(cfg, "station", value), -EINVAL);
    /* reader name of 129 characters (the field holds 128) */
    char reader[130];
    memset(reader, 'R', 129);
    reader[129] = '\0';
    snprintf(value, sizeof(value), "st1 evolis EV0001 %s", reader);
    assert_int_equal(config_set(cfg, "station", value), -EINVAL);
    assert_int_equal(cfg->station_count, 0);

    /* exactly at the limits is fine */
    reader[128] = '\0';
    snprintf(value, sizeof(value), "%s %s %s %s", "abcdefghijklmnopqrstuvwxyz012345",
             "evolisevolisevol", "EV0001EV0001EV0001EV0001EV0001EV", reader);
    assert_int_equal(config_set(cfg, "station", value), 0);
    assert_int_equal(cfg->station_count, 1);
    assert_string_equal(cfg->stations[0].id, "abcdefghijklmnopqrstuvwxyz012345");
    assert_string_equal(cfg->stations[0].printer_driver, "evolisevolisevol");
    assert_string_equal(cfg->stations[0].printer_serial, "EV0001EV0001EV0001EV0001EV0001EV");
    assert_string_equal(cfg->stations[0].reader, reader);
}

static void at_most_max_stations(void **state)
{
    struct config *cfg = *state;
    char value[64];
    for (int i = 0; i < CONFIG_MAX_STATIONS; i++) {
        snprintf(value, sizeof(value), "st%d evolis EV%04d Reader %d", i, i, i);
        assert_int_equal(config_set(cfg, "station", value), 0);
    }
    assert_int_equal(config_set(cfg, "station", "one-more evolis EV9999 Reader X"), -EINVAL);
    assert_int_equal(cfg->station_count, CONFIG_MAX_STATIONS);
}

static void load_file(void **state)
{
    struct config *cfg = *state;
    const char *path = temp_file("# a comment\n"
                                 "\n"
                                 "  port   =   9090  \n"
                                 "database = dbname=cardd user=cardd\n"
                                 "station = st1 evolis EV0001 Virtual PCD 00 00\n"
                                 "delivery_attempts=3"); /* no final newline */
    assert_int_equal(config_load(cfg, path, NULL), 0);
    unlink(path);
    assert_int_equal(cfg->port, 9090);
    assert_string_equal(cfg->database, "dbname=cardd user=cardd");
    assert_int_equal(cfg->delivery_attempts, 3);
    assert_int_equal(cfg->station_count, 1);
    assert_string_equal(cfg->stations[0].reader, "Virtual PCD 00 00");
    assert_int_equal(cfg->db_pool_size, 16); /* untouched default */
}

static void load_reports_the_bad_line(void **state)
{
    struct config *cfg = *state;
    char report[512] = "";
    FILE *err = fmemopen(report, sizeof(report), "w");
    assert_non_null(err);
    const char *path = temp_file("port = 9090\n# fine\nnot_a_key = 1\nport = 9091\n");
    assert_int_equal(config_load(cfg, path, err), -EINVAL);
    fclose(err);
    char want[256];
    snprintf(want, sizeof(want), "%s:3: bad setting 'not_a_key'\n", path);
    assert_string_equal(report, want);
    unlink(path);
    assert_int_equal(cfg->port, 9090); /* stopped at line 3 */

    path = temp_file("port 9090\n");
    err = fmemopen(report, sizeof(report), "w");
    assert_int_equal(config_load(cfg, path, err), -EINVAL);
    fclose(err);
    snprintf(want, sizeof(want), "%s:1: expected key = value\n", path);
    assert_string_equal(report, want);
    unlink(path);

    path = temp_file("port = 70000\n");
    assert_int_equal(config_load(cfg, path, NULL), -EINVAL);
    unlink(path);
}

static void load_missing_file(void **state)
{
    struct config *cfg = *state;
    assert_int_equal(config_load(cfg, "/nonexistent/cardd.conf", NULL), -ENOENT);
    assert_int_equal(cfg->port, 8080);
}

/* The described default file, uncommented, loads and gives the defaults. */
static void describe_round_trip(void **state)
{
    struct config *cfg = *state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    config_describe(out);
    fclose(out);
    assert_non_null(strstr(text, "#port = 8080\n"));
    assert_non_null(strstr(text, "#delivery_attempts = 2\n"));
    assert_non_null(strstr(text, "#track_fail_limit = 10\n"));

    /* uncomment every "#key = value" line */
    char *conf = malloc(len + 1);
    assert_non_null(conf);
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' && line[1] != ' ' && strstr(line, " = ")) {
            n += (size_t)sprintf(conf + n, "%s\n", line + 1);
        }
    }
    conf[n] = '\0';
    free(text);
    const char *path = temp_file(conf);
    free(conf);
    config_set(cfg, "port", "1");
    assert_int_equal(config_load(cfg, path, NULL), 0);
    unlink(path);
    assert_int_equal(cfg->port, 8080);
    assert_string_equal(cfg->problem_base, "https://cards.civilaffairs.example/problems/");
    assert_int_equal(cfg->station_count, 1);
    assert_string_equal(cfg->stations[0].id, "st1");
}

static void free_is_null_safe(void **state)
{
    (void)state;
    config_free(NULL);
    struct config cfg;
    assert_int_equal(config_defaults(&cfg), 0);
    config_free(&cfg);
    assert_null(cfg.listen_address);
    config_free(&cfg); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(integers_and_their_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(strings_and_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(stations, setup, teardown),
        cmocka_unit_test_setup_teardown(station_words_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(at_most_max_stations, setup, teardown),
        cmocka_unit_test_setup_teardown(load_file, setup, teardown),
        cmocka_unit_test_setup_teardown(load_reports_the_bad_line, setup, teardown),
        cmocka_unit_test_setup_teardown(load_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(describe_round_trip, setup, teardown),
        cmocka_unit_test(free_is_null_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
