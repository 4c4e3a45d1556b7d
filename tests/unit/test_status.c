/* test_status.c — the citizen-visible statuses and their labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "status.h"

/* Copied from the status table of API.md ("Request statuses"). */
static const struct {
    const char *code, *ar, *en;
} api_table[] = {
    { "queued", "تم استلام الطلب", "Request received" },
    { "in_production", "جاري إصدار البطاقة", "Card in production" },
    { "produced", "تم إصدار البطاقة", "Card produced" },
    { "dispatched", "تم تسليم البطاقة لشركة التوصيل", "Handed to the courier" },
    { "in_transit", "البطاقة في الطريق", "In transit" },
    { "out_for_delivery", "خرجت للتوصيل", "Out for delivery" },
    { "delivery_failed", "تعذر التوصيل", "Delivery attempt failed" },
    { "delivered", "تم التسليم", "Delivered" },
    { "redirected_to_branch", "جاري تحويل البطاقة إلى أقرب فرع",
      "Being returned to the nearest branch" },
    { "ready_for_collection", "جاهزة للاستلام من الفرع", "Ready for collection at the branch" },
    { "collected", "تم الاستلام من الفرع", "Collected at the branch" },
    { "cancelled", "تم إلغاء الطلب", "Request cancelled" },
};
#define NSTATUS (sizeof(api_table) / sizeof(api_table[0]))

static void every_api_status_has_its_labels(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSTATUS; i++) {
        const struct status_label *l = status_find(api_table[i].code);
        assert_non_null(l);
        assert_string_equal(l->code, api_table[i].code);
        assert_string_equal(l->ar, api_table[i].ar);
        assert_string_equal(l->en, api_table[i].en);
    }
}

static void unknown_codes_have_no_label(void **state)
{
    (void)state;
    assert_null(status_find(""));
    assert_null(status_find("Queued"));
    assert_null(status_find("queued "));
    assert_null(status_find("spoiled"));
    assert_null(status_find("picked_up")); /* a courier event code, not a status */
    assert_null(status_find("arrived_at_branch"));
}

static int rank(const char *code)
{
    const struct status_label *l = status_find(code);
    assert_non_null(l);
    return l->rank;
}

/* The chain of API.md moves forward only; nothing follows delivered,
 * collected or cancelled. */
static void ranks_follow_the_chain(void **state)
{
    (void)state;
    static const char *const home[] = { "queued",         "in_production", "produced",
                                        "dispatched",     "in_transit",    "out_for_delivery",
                                        "delivery_failed" };
    for (size_t i = 1; i < sizeof(home) / sizeof(home[0]); i++)
        assert_true(rank(home[i - 1]) < rank(home[i]));
    assert_true(rank("delivery_failed") < rank("redirected_to_branch"));
    assert_true(rank("redirected_to_branch") < rank("ready_for_collection"));
    assert_true(rank("ready_for_collection") < rank("collected"));
    assert_true(rank("out_for_delivery") < rank("delivered"));
    assert_true(rank("delivery_failed") < rank("delivered"));

    int top = 0;
    for (size_t i = 0; i < NSTATUS; i++)
        if (rank(api_table[i].code) > top)
            top = rank(api_table[i].code);
    assert_int_equal(rank("delivered"), top);
    assert_int_equal(rank("collected"), top);
    assert_int_equal(rank("cancelled"), top);
}

static void notification_text_national_id(void **state)
{
    (void)state;
    char ar[512], en[512];
    status_notification_text("out_for_delivery", "RQ-2026-000123", "national_id", ar, sizeof(ar),
                             en, sizeof(en));
    assert_string_equal(en, "National ID request RQ-2026-000123: Out for delivery");
    assert_string_equal(ar, "طلب الهوية الوطنية رقم RQ-2026-000123: خرجت للتوصيل");
}

static void notification_text_family_record(void **state)
{
    (void)state;
    char ar[512], en[512];
    status_notification_text("ready_for_collection", "RQ-7", "family_record", ar, sizeof(ar), en,
                             sizeof(en));
    assert_string_equal(en, "Family record request RQ-7: Ready for collection at the branch");
    assert_string_equal(ar, "طلب سجل الأسرة رقم RQ-7: جاهزة للاستلام من الفرع");
}

static void notification_text_names_the_branch_and_the_last_day(void **state)
{
    (void)state;
    char ar[512], en[512];
    struct status_branch b = { "الأحوال المدنية - الرياض - العليا", "Civil Affairs Riyadh Al Olaya",
                               "2026-12-13" };
    status_notification_text("ready_for_collection", "RQ-7", "national_id", ar, sizeof(ar), en,
                             sizeof(en));
    status_branch_text("ready_for_collection", &b, ar, sizeof(ar), en, sizeof(en));
    assert_string_equal(
        en, "National ID request RQ-7: Ready for collection at the branch"
            ". Branch: Civil Affairs Riyadh Al Olaya. Last day to collect: 2026-12-13.");
    assert_string_equal(
        ar, "طلب الهوية الوطنية رقم RQ-7: جاهزة للاستلام من الفرع"
            ". الفرع: الأحوال المدنية - الرياض - العليا. آخر يوم للاستلام: 2026-12-13.");

    /* On the way: the branch, and the last day follows when the card is there. */
    b.collect_by = NULL;
    status_notification_text("redirected_to_branch", "RQ-7", "national_id", ar, sizeof(ar), en,
                             sizeof(en));
    status_branch_text("redirected_to_branch", &b, ar, sizeof(ar), en, sizeof(en));
    assert_non_null(
        strstr(en, "branch. Branch: Civil Affairs Riyadh Al Olaya. We will send you the last day"));
    assert_non_null(
        strstr(ar, "الفرع: الأحوال المدنية - الرياض - العليا. سنرسل لك آخر يوم للاستلام"));

    /* Other statuses and no branch leave the text alone; a small buffer stays terminated. */
    status_notification_text("produced", "RQ-7", "national_id", ar, sizeof(ar), en, sizeof(en));
    status_branch_text("produced", &b, ar, sizeof(ar), en, sizeof(en));
    assert_string_equal(en, "National ID request RQ-7: Card produced");
    status_branch_text("ready_for_collection", NULL, ar, sizeof(ar), en, sizeof(en));
    assert_string_equal(en, "National ID request RQ-7: Card produced");
    char small[48];
    status_notification_text("ready_for_collection", "RQ-7", "national_id", ar, sizeof(ar), small,
                             sizeof(small));
    status_branch_text("ready_for_collection", &b, ar, sizeof(ar), small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void notification_text_every_status_carries_its_label(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSTATUS; i++) {
        char ar[512], en[512];
        status_notification_text(api_table[i].code, "RQ-1", NULL, ar, sizeof(ar), en, sizeof(en));
        assert_non_null(strstr(ar, api_table[i].ar));
        assert_non_null(strstr(en, api_table[i].en));
        assert_non_null(strstr(en, "National ID request RQ-1: "));
    }
}

static void notification_text_fits_small_buffers(void **state)
{
    (void)state;
    char ar[16], en[12];
    memset(ar, 'x', sizeof(ar));
    memset(en, 'x', sizeof(en));
    status_notification_text("queued", "RQ-1", "national_id", ar, sizeof(ar), en, sizeof(en));
    assert_true(memchr(ar, '\0', sizeof(ar)) != NULL);
    assert_string_equal(en, "National ID");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_api_status_has_its_labels),
        cmocka_unit_test(unknown_codes_have_no_label),
        cmocka_unit_test(ranks_follow_the_chain),
        cmocka_unit_test(notification_text_national_id),
        cmocka_unit_test(notification_text_family_record),
        cmocka_unit_test(notification_text_names_the_branch_and_the_last_day),
        cmocka_unit_test(notification_text_every_status_carries_its_label),
        cmocka_unit_test(notification_text_fits_small_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
