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

static int compare_events(const void *pa, const void *pb)
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
        qsort(events, n, sizeof(*events), compare_events);
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

void parcel_fold(const struct parcel_event *events, size_t n, int max_failed, bool branch_available,
                 struct parcel_state *out)
{
    enum stage stage = DISPATCHED;
    int failed = 0;
    time_t stage_at = 0, ready_at = 0;

    for (size_t i = 0; i < n && stage != DELIVERED; i++) {
        const struct parcel_event *e = &events[i];
        enum stage next = stage;
        switch (e->code) {
        case PARCEL_PICKED_UP:
        case PARCEL_IN_TRANSIT:
            if (stage < IN_TRANSIT)
                next = IN_TRANSIT;
            break;
        case PARCEL_OUT_FOR_DELIVERY:
            /* After a failure this is the next attempt: forward in (attempt, rank). */
            if (stage < OUT_FOR_DELIVERY || stage == DELIVERY_FAILED)
                next = OUT_FOR_DELIVERY;
            break;
        case PARCEL_DELIVERY_FAILED:
            if (stage >= REDIRECTED)
                break; /* already on its way to, or at, the branch */
            failed++;
            next = failed >= max_failed && branch_available ? REDIRECTED : DELIVERY_FAILED;
            if (next == stage)
                stage_at = e->at; /* another failure: the status is as recent as it */
            break;
        case PARCEL_ARRIVED_AT_BRANCH:
            if (stage < READY && branch_available) {
                next = READY;
                ready_at = e->at;
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
        if (next != stage) {
            stage = next;
            stage_at = e->at;
        }
    }
    out->status = stage_status[stage];
    out->failed_attempts = failed;
    out->needs_branch = stage == REDIRECTED || stage == READY;
    out->status_at = stage_at;
    out->ready_at = stage == READY ? ready_at : 0;
}
