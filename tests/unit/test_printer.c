/*
 * test_printer - the station core over a fake driver: driver choice by
 * USB id, private state, fault reporting, "device gone" stickiness,
 * serialisation of calls, and the fate of the card after a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "printer.h"

struct fake_priv {
    char serial[32];
    int opened;
};

static int fake_calls;
static int fake_inside; /* calls in progress: must never exceed 1 */
static int fake_max_inside;
static int fake_closes;
static int fake_next_rc;
static enum printer_fault fake_next_fault;

static int fake_open(struct printer_dev *dev, const char *serial)
{
    struct fake_priv *fp = dev->priv;

    /* The core hands over zeroed private state. */
    assert_int_equal(fp->opened, 0);
    assert_int_equal(fp->serial[0], 0);
    if (strcmp(serial, "ABSENT") == 0)
        return -ENODEV;
    snprintf(fp->serial, sizeof(fp->serial), "%s", serial);
    fp->opened = 1;
    return 0;
}

static void fake_close(struct printer_dev *dev)
{
    struct fake_priv *fp = dev->priv;

    assert_int_equal(fp->opened, 1);
    fake_closes++;
}

static int fake_status(struct printer_dev *dev, struct printer_status *st)
{
    struct fake_priv *fp = dev->priv;

    fake_calls++;
    snprintf(st->serial, sizeof(st->serial), "%s", fp->serial);
    return fake_next_rc;
}

/* Every action: takes a little time so that overlapping calls would show. */
static int fake_action(struct printer_dev *dev, enum printer_fault *fault)
{
    struct timespec t = { 0, 200000 };
    int rc = fake_next_rc;

    assert_non_null(fault);
    assert_non_null(dev->priv);
    fake_calls++;
    fake_inside++;
    if (fake_inside > fake_max_inside)
        fake_max_inside = fake_inside;
    nanosleep(&t, NULL);
    fake_inside--;
    if (rc == PRINTER_E_FAULT)
        *fault = fake_next_fault;
    return rc;
}

static int fake_print(struct printer_dev *dev, const struct printer_panels *panels,
                      enum printer_fault *fault)
{
    assert_non_null(panels->y);
    return fake_action(dev, fault);
}

static const struct printer_id fake_ids[] = {
    { .vendor = 0x1111, .product = 0x2222, .model = "Fake" }, {}
};

static const struct printer_ops fake_ops = {
    .name = "fake",
    .id_table = fake_ids,
    .priv_size = sizeof(struct fake_priv),
    .open = fake_open,
    .close = fake_close,
    .status = fake_status,
    .feed_to_chip = fake_action,
    .print_front = fake_print,
    .eject = fake_action,
    .reject = fake_action,
    /* .reset left out: optional */
};

static int setup(void **state)
{
    (void)state;
    fake_calls = fake_closes = 0;
    fake_inside = fake_max_inside = 0;
    fake_next_rc = 0;
    fake_next_fault = PRINTER_FAULT_NONE;
    return 0;
}

static void test_open_matches_id_and_serial(void **state)
{
    struct printer *p = NULL;
    struct printer_status st;

    (void)state;
    assert_int_equal(printer_open_with(&fake_ops, 0x1111, 0x3333, "S1", 0, &p), -ENODEV);
    assert_int_equal(printer_open_with(&fake_ops, 0x1111, 0x2222, "ABSENT", 0, &p), -ENODEV);
    assert_null(p);
    assert_int_equal(fake_closes, 0); /* a failed open is not closed */
    assert_int_equal(printer_open_with(&fake_ops, 0x1111, 0x2222, NULL, 0, &p), -EINVAL);
    /* No built-in driver claims this id: nothing is touched. */
    assert_int_equal(printer_open(0x1111, 0x2222, "S1", 0, &p), -ENODEV);

    assert_int_equal(printer_open_with(&fake_ops, 0x1111, 0x2222, "S1", 0, &p), 0);
    assert_int_equal(printer_status(p, &st), 0);
    assert_string_equal(st.serial, "S1");
    assert_false(printer_is_gone(p));
    printer_close(p);
    assert_int_equal(fake_closes, 1);
    printer_close(NULL);
}

static void test_fault_reaches_caller(void **state)
{
    struct printer *p = NULL;
    enum printer_fault fault = PRINTER_FAULT_NONE;

    (void)state;
    assert_int_equal(printer_open_with(&fake_ops, 0x1111, 0x2222, "S1", 0, &p), 0);
    fake_next_rc = PRINTER_E_FAULT;
    fake_next_fault = PRINTER_FAULT_RIBBON_OUT;
    assert_int_equal(printer_eject(p, &fault), PRINTER_E_FAULT);
    assert_int_equal(fault, PRINTER_FAULT_RIBBON_OUT);
    assert_int_equal(printer_eject(p, NULL), PRINTER_E_FAULT); /* fault optional */
    fake_next_rc = -ETIMEDOUT;
    assert_int_equal(printer_feed_to_chip(p, &fault), -ETIMEDOUT);
    assert_int_equal(fault, PRINTER_FAULT_NONE); /* only for device faults */
    assert_false(printer_is_gone(p));
    fake_next_rc = 0;
    assert_int_equal(printer_reset(p, &fault), -EOPNOTSUPP);
    assert_int_equal(printer_print_front(p, NULL, &fault), -EINVAL);
    printer_close(p);
}

static void test_gone_is_sticky(void **state)
{
    struct printer *p = NULL;
    struct printer_status st;
    uint8_t buf[1];
    struct printer_panels panels = { buf, buf, buf, buf, buf };
    int calls;

    (void)state;
    assert_int_equal(printer_open_with(&fake_ops, 0x1111, 0x2222, "S1", 0, &p), 0);
    fake_next_rc = -ENODEV;
    assert_int_equal(printer_feed_to_chip(p, NULL), -ENODEV);
    assert_true(printer_is_gone(p));
    calls = fake_calls;
    fake_next_rc = 0; /* even if the driver would now say yes */
    assert_int_equal(printer_status(p, &st), -ENODEV);
    assert_int_equal(printer_print_front(p, &panels, NULL), -ENODEV);
    assert_int_equal(printer_eject(p, NULL), -ENODEV);
    assert_int_equal(printer_reject(p, NULL), -ENODEV);
    assert_int_equal(printer_reset(p, NULL), -ENODEV);
    assert_int_equal(fake_calls, calls); /* the driver was not called */
    printer_close(p);                    /* close still reaches it */
    assert_int_equal(fake_closes, 1);
}

static void *hammer(void *arg)
{
    struct printer *p = arg;

    for (int i = 0; i < 50; i++)
        assert_int_equal(printer_eject(p, NULL), 0);
    return NULL;
}

static void test_calls_are_serialised(void **state)
{
    struct printer *p = NULL;
    pthread_t t[3];

    (void)state;
    assert_int_equal(printer_open_with(&fake_ops, 0x1111, 0x2222, "S1", 0, &p), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, p), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(fake_calls, 150);
    assert_int_equal(fake_max_inside, 1);
    printer_close(p);
}

static void test_fault_names(void **state)
{
    static const enum printer_fault all[] = {
        PRINTER_FAULT_CARD_JAM,   PRINTER_FAULT_COVER_OPEN,    PRINTER_FAULT_FEEDER_EMPTY,
        PRINTER_FAULT_RIBBON_OUT, PRINTER_FAULT_COMMAND_ERROR,
    };
    enum printer_fault back;

    (void)state;
    assert_string_equal(printer_fault_name(PRINTER_FAULT_CARD_JAM), "card_jam");
    assert_string_equal(printer_fault_name(PRINTER_FAULT_COVER_OPEN), "cover_open");
    assert_string_equal(printer_fault_name(PRINTER_FAULT_FEEDER_EMPTY), "feeder_empty");
    assert_string_equal(printer_fault_name(PRINTER_FAULT_RIBBON_OUT), "ribbon_out");
    assert_string_equal(printer_fault_name(PRINTER_FAULT_COMMAND_ERROR), "command_error");
    assert_string_equal(printer_fault_name((enum printer_fault)99), "unknown");
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_int_equal(printer_fault_parse(printer_fault_name(all[i]), &back), 0);
        assert_int_equal(back, all[i]);
    }
    assert_int_equal(printer_fault_parse("paper_out", &back), -EINVAL);
    assert_int_equal(printer_fault_parse(NULL, &back), -EINVAL);
}

static void test_card_fate(void **state)
{
    (void)state;
    /* Nothing left the feeder. */
    assert_int_equal(printer_card_fate(PRINTER_E_FAULT, PRINTER_FAULT_FEEDER_EMPTY, false),
                     PRINTER_CARD_NOT_TAKEN);
    assert_int_equal(printer_card_fate(PRINTER_E_FAULT, PRINTER_FAULT_COVER_OPEN, false),
                     PRINTER_CARD_NOT_TAKEN);
    /* A card at the station when the printer refused: reject it. */
    assert_int_equal(printer_card_fate(PRINTER_E_FAULT, PRINTER_FAULT_RIBBON_OUT, true),
                     PRINTER_CARD_REJECT);
    assert_int_equal(printer_card_fate(PRINTER_E_FAULT, PRINTER_FAULT_COMMAND_ERROR, true),
                     PRINTER_CARD_REJECT);
    assert_int_equal(printer_card_fate(-EINVAL, PRINTER_FAULT_NONE, true), PRINTER_CARD_REJECT);
    /* A jam, even on the way out of the feeder, or no answer at all. */
    assert_int_equal(printer_card_fate(PRINTER_E_FAULT, PRINTER_FAULT_CARD_JAM, false),
                     PRINTER_CARD_OPERATOR);
    assert_int_equal(printer_card_fate(-ETIMEDOUT, PRINTER_FAULT_NONE, false),
                     PRINTER_CARD_OPERATOR);
    assert_int_equal(printer_card_fate(-ENODEV, PRINTER_FAULT_NONE, true), PRINTER_CARD_OPERATOR);
    assert_string_equal(printer_card_fate_name(PRINTER_CARD_OPERATOR), "operator");
    assert_string_equal(printer_card_fate_name((enum printer_card_fate)7), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_open_matches_id_and_serial, setup),
        cmocka_unit_test_setup(test_fault_reaches_caller, setup),
        cmocka_unit_test_setup(test_gone_is_sticky, setup),
        cmocka_unit_test_setup(test_calls_are_serialised, setup),
        cmocka_unit_test_setup(test_fault_names, setup),
        cmocka_unit_test_setup(test_card_fate, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
