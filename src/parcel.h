/* parcel.h — where a dispatched card stands, worked out from its courier's
 * events alone.
 *
 * Events arrive late, twice and out of order, so the state is never updated
 * step by step: it is recomputed from every event the parcel has, sorted by
 * the time the courier says it happened (then by code, then by event id).
 * The same set of events therefore gives the same state in whatever order
 * it arrived.
 *
 * The status moves forward only. Forward is measured by (attempt, rank of
 * the status): after a failed attempt, a later `out_for_delivery` starts the
 * next attempt; anything else that ranks below the current status joins the
 * history without moving it. `delivered` ends the story from any state and
 * nothing follows it (only the branch's handover, `collected`, which is not
 * a courier event, is final in the same way). After max_failed
 * failed attempts the card goes back to a branch (`redirected_to_branch`),
 * and `arrived_at_branch` makes it `ready_for_collection`. */
#ifndef CARDD_PARCEL_H
#define CARDD_PARCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Courier event codes of API.md, in the order that breaks ties of time. */
enum parcel_code {
    PARCEL_PICKED_UP,
    PARCEL_IN_TRANSIT,
    PARCEL_OUT_FOR_DELIVERY,
    PARCEL_DELIVERY_FAILED,
    PARCEL_ARRIVED_AT_BRANCH,
    PARCEL_DELIVERED,
    PARCEL_CODE_COUNT,
};

struct parcel_event {
    enum parcel_code code;
    time_t at;
    const char *event_id; /* borrowed; only used to order ties */
};

struct parcel_state {
    const char *status; /* a code of status.h; "dispatched" with no events */
    int failed_attempts;
    bool needs_branch; /* redirected_to_branch or ready_for_collection */
    time_t status_at;  /* when the current status began; 0 for "dispatched" */
    time_t ready_at;   /* the arrival at the branch, when ready_for_collection */
};

/* The code for its API.md name, or -1. */
int parcel_code_parse(const char *name);
const char *parcel_code_name(enum parcel_code code);

/* Sorts events into the canonical order: at, then code, then event_id. */
void parcel_sort(struct parcel_event *events, size_t n);

/* qsort's comparison of that order, for arrays of struct parcel_event or of
 * structs whose first member is one. */
int parcel_event_cmp(const void *a, const void *b);

/* Works out the state from events in canonical order. max_failed is the
 * number of failed attempts after which the card goes to a branch;
 * branch_available says whether any branch can take it (when none can, the
 * card stays `delivery_failed` and arrivals at a branch are not applied). */
void parcel_fold(const struct parcel_event *events, size_t n, int max_failed, bool branch_available,
                 struct parcel_state *out);

/* The state after one more event that comes after every event st was
 * folded from in canonical order: then parcel_fold over all of them gives
 * the same state, so a parcel's stored state moves without reading its
 * events again. st->status is a status parcel_fold gives; status_at and
 * ready_at may be 0 when not known (they are set from e when it changes
 * the status). Returns 0, or -1 when st->status is none of the fold's. */
int parcel_step(struct parcel_state *st, const struct parcel_event *e, int max_failed,
                bool branch_available);

/* The status an event's code leads to, as API.md names it
 * (`arrived_at_branch` → `ready_for_collection`). */
const char *parcel_code_status(enum parcel_code code);

/* The citizen's timeline of the parcel: for each event in canonical order,
 * the status it stands for — its code's, except the failed attempt that
 * sends the card to a branch, which is `redirected_to_branch`. Every event
 * has its entry, those that did not move the status too, so the same set of
 * events gives the same timeline whatever order it arrived in. */
void parcel_timeline(const struct parcel_event *events, size_t n, int max_failed,
                     bool branch_available, const char **statuses);

#endif
