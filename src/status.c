/* status.c — labels of API.md, and the order in which statuses follow. */
#include "status.h"

#include <stdio.h>
#include <string.h>

static const struct status_label labels[] = {
    { "queued", "تم استلام الطلب", "Request received", 0 },
    { "in_production", "جاري إصدار البطاقة", "Card in production", 1 },
    { "produced", "تم إصدار البطاقة", "Card produced", 2 },
    { "dispatched", "تم تسليم البطاقة لشركة التوصيل", "Handed to the courier", 3 },
    { "in_transit", "البطاقة في الطريق", "In transit", 4 },
    { "out_for_delivery", "خرجت للتوصيل", "Out for delivery", 5 },
    { "delivery_failed", "تعذر التوصيل", "Delivery attempt failed", 6 },
    { "delivered", "تم التسليم", "Delivered", 9 },
    { "redirected_to_branch", "جاري تحويل البطاقة إلى أقرب فرع",
      "Being returned to the nearest branch", 7 },
    { "ready_for_collection", "جاهزة للاستلام من الفرع", "Ready for collection at the branch", 8 },
    { "collected", "تم الاستلام من الفرع", "Collected at the branch", 9 },
    { "cancelled", "تم إلغاء الطلب", "Request cancelled", 9 },
};

const struct status_label *status_find(const char *code)
{
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
        if (strcmp(labels[i].code, code) == 0)
            return &labels[i];
    return NULL;
}

void status_notification_text(const char *code, const char *request_no, const char *kind, char *ar,
                              size_t arlen, char *en, size_t enlen)
{
    const struct status_label *l = status_find(code);
    bool family = kind && strcmp(kind, "family_record") == 0;
    snprintf(ar, arlen, "%s رقم %s: %s", family ? "طلب سجل الأسرة" : "طلب الهوية الوطنية",
             request_no, l ? l->ar : code);
    snprintf(en, enlen, "%s %s: %s", family ? "Family record request" : "National ID request",
             request_no, l ? l->en : code);
}

static void append(char *out, size_t len, const char *fmt, const char *a, const char *b)
{
    size_t used = strlen(out);
    if (used + 1 < len)
        snprintf(out + used, len - used, fmt, a, b);
}

void status_branch_text(const char *code, const struct status_branch *branch, char *ar,
                        size_t arlen, char *en, size_t enlen)
{
    if (!branch || !branch->name_ar || !branch->name_en)
        return;
    bool ready = strcmp(code, "ready_for_collection") == 0;
    if (!ready && strcmp(code, "redirected_to_branch") != 0)
        return;
    if (ready && branch->collect_by) {
        append(ar, arlen, ". الفرع: %s. آخر يوم للاستلام: %s.", branch->name_ar,
               branch->collect_by);
        append(en, enlen, ". Branch: %s. Last day to collect: %s.", branch->name_en,
               branch->collect_by);
    } else {
        append(ar, arlen, ". الفرع: %s.%s", branch->name_ar,
               " سنرسل لك آخر يوم للاستلام عند وصول البطاقة إلى الفرع.");
        append(en, enlen, ". Branch: %s.%s", branch->name_en,
               " We will send you the last day to collect when the card is there.");
    }
}
