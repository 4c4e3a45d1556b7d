/* parcel.c — the courier events' state machine (see parcel.h). */
#include "parcel.h"

#include <stdlib.h>
#include <string.h>

static const char *const code_names[PARCEL_CODE_COUNT] = {
    [PARCEL_PICKED_UP] = "picked_up",
    [PARCEL_IN_TRANSIT] = "in_transit",
    [PARCEL_OUT_FOR_DELIVERY] = "out_for_delivery",
    [PARCEL_DELIVERY_FAILED] = "delivery_failed",
    [PARCEL_ARRIVED_AT_BRANCH] = "arrived_at_branch",
    [PARCEL_DELIVERED] = "delivered",
};

int parcel_code_parse(const char *name)
{
    for (int i = 0; i < PARCEL_CODE_COUNT; i++)
        if (strcmp(code_names[i], name) == 0)
            return i;
    return -1;
}

const char *parcel_code_name(enum parcel_code code)
{
    return (unsigned)code < PARCEL_CODE_COUNT ? code_names[code] : "?";
}

int parcel_event_cmp(const void *pa, const void *pb)
{
    const struct parcel_event *a = pa, *b = pb;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    if (a->code != b->code)
        return a->code < b->code ? -1 : 1;
    return strcmp(a->event_id ? a->event_id : "", b->event_id ? b->event_id : "");
}

void parcel_sort(struct parcel_event *events, size_t n)
{
    if (n > 1)
        qsort(events, n, sizeof(*events), parcel_event_cmp);
}

/* The states a parcel passes through, in the order of status.h's ranks. */
enum stage {
    DISPATCHED,
    IN_TRANSIT,
    OUT_FOR_DELIVERY,
    DELIVERY_FAILED,
    REDIRECTED,
    READY,
    DELIVERED
};

static const char *const stage_status[] = {
    [DISPATCHED] = "dispatched",
    [IN_TRANSIT] = "in_transit",
    [OUT_FOR_DELIVERY] = "out_for_delivery",
    [DELIVERY_FAILED] = "delivery_failed",
    [REDIRECTED] = "redirected_to_branch",
    [READY] = "ready_for_collection",
    [DELIVERED] = "delivered",
};

/* One event's effect on the fold. */
struct fold {
    enum stage stage;
    int failed;
    time_t stage_at, ready_at;
};

static void fold_step(struct fold *f, const struct parcel_event *e, int max_failed,
                      bool branch_available)
{
    enum stage next = f->stage;
    switch (e->code) {
    case PARCEL_PICKED_UP:
    case PARCEL_IN_TRANSIT:
        if (f->stage < IN_TRANSIT)
            next = IN_TRANSIT;
        break;
    case PARCEL_OUT_FOR_DELIVERY:
        /* After a failure this is the next attempt: forward in (attempt, rank). */
        if (f->stage < OUT_FOR_DELIVERY || f->stage == DELIVERY_FAILED)
            next = OUT_FOR_DELIVERY;
        break;
    case PARCEL_DELIVERY_FAILED:
        if (f->stage >= REDIRECTED)
            break; /* already on its way to, or at, the branch */
        f->failed++;
        next = f->failed >= max_failed && branch_available ? REDIRECTED : DELIVERY_FAILED;
        if (next == f->stage)
            f->stage_at = e->at; /* another failure: the status is as recent as it */
        break;
    case PARCEL_ARRIVED_AT_BRANCH:
        if (f->stage < READY && branch_available) {
            next = READY;
            f->ready_at = e->at;
        }
        break;
    case PARCEL_DELIVERED:
        /* Wins from every state, so that a parcel with a delivery among
         * its events is delivered whatever order they came in. */
        next = DELIVERED;
        break;
    case PARCEL_CODE_COUNT:
        break;
    }
    if (next != f->stage) {
        f->stage = next;
        f->stage_at = e->at;
    }
}

static void fold_out(const struct fold *f, struct parcel_state *out)
{
    out->status = stage_status[f->stage];
    out->failed_attempts = f->failed;
    out->needs_branch = f->stage == REDIRECTED || f->stage == READY;
    out->status_at = f->stage_at;
    out->ready_at = f->stage == READY ? f->ready_at : 0;
}

void parcel_fold(const struct parcel_event *events, size_t n, int max_failed, bool branch_available,
                 struct parcel_state *out)
{
    struct fold f = { DISPATCHED, 0, 0, 0 };
    for (size_t i = 0; i < n && f.stage != DELIVERED; i++)
        fold_step(&f, &events[i], max_failed, branch_available);
    fold_out(&f, out);
}

int parcel_step(struct parcel_state *st, const struct parcel_event *e, int max_failed,
                bool branch_available)
{
    struct fold f = { DISPATCHED, st->failed_attempts, st->status_at, st->ready_at };
    size_t i = 0;
    while (i < sizeof(stage_status) / sizeof(stage_status[0]) &&
           strcmp(stage_status[i], st->status) != 0)
        i++;
    if (i == sizeof(stage_status) / sizeof(stage_status[0]) || st->failed_attempts < 0)
        return -1;
    f.stage = (enum stage)i;
    fold_step(&f, e, max_failed, branch_available);
    fold_out(&f, st);
    return 0;
}

const char *parcel_code_status(enum parcel_code code)
{
    switch (code) {
    case PARCEL_PICKED_UP:
    case PARCEL_IN_TRANSIT:
        return "in_transit";
    case PARCEL_OUT_FOR_DELIVERY:
        return "out_for_delivery";
    case PARCEL_DELIVERY_FAILED:
        return "delivery_failed";
    case PARCEL_ARRIVED_AT_BRANCH:
        return "ready_for_collection";
    case PARCEL_DELIVERED:
        return "delivered";
    case PARCEL_CODE_COUNT:
        break;
    }
    return "in_transit";
}

void parcel_timeline(const struct parcel_event *events, size_t n, int max_failed,
                     bool branch_available, const char **statuses)
{
    struct fold f = { DISPATCHED, 0, 0, 0 };
    for (size_t i = 0; i < n; i++) {
        enum stage before = f.stage;
        if (f.stage != DELIVERED)
            fold_step(&f, &events[i], max_failed, branch_available);
        statuses[i] = events[i].code == PARCEL_DELIVERY_FAILED && before != REDIRECTED &&
                              f.stage == REDIRECTED
                          ? stage_status[REDIRECTED]
                          : parcel_code_status(events[i].code);
    }
}
