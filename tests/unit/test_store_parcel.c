/* test_store_parcel.c — the parcel's life: its state is folded from its
 * courier events (src/parcel.c) and moves the request with the courier
 * events of the request's transition table (src/store_request.c). Every
 * move the fold can make, for every arrival order of up to four events at
 * up to four instants, after one or two failed attempts, with and without
 * a branch to return to, must be a move the table allows (else
 * store_parcel.c would refuse a real courier update); and the table allows
 * no courier move that the fold never makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "parcel.h"
#include "store_request.h"

#define MAX_EVENTS 4
#define INSTANTS   4

struct seen {
    const char *from, *to;
};
static struct seen seen[64];
static size_t nseen;

static void note_move(const char *from, const char *to)
{
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen[i].from, from) == 0 && strcmp(seen[i].to, to) == 0)
            return;
    assert_true(nseen < sizeof(seen) / sizeof(seen[0]));
    seen[nseen++] = (struct seen){ from, to };
}

/* Folds the first n events as they arrived, as the store does after each. */
static void fold_arrived(const struct parcel_event *arrived, size_t n, int max_failed, bool branch,
                         struct parcel_state *st)
{
    struct parcel_event sorted[MAX_EVENTS];
    memcpy(sorted, arrived, n * sizeof(*arrived));
    parcel_sort(sorted, n);
    parcel_fold(sorted, n, max_failed, branch, st);
}

static void check_sequence(const struct parcel_event *ev, size_t n, int max_failed, bool branch)
{
    const char *status = "dispatched";
    for (size_t k = 1; k <= n; k++) {
        struct parcel_state st;
        fold_arrived(ev, k, max_failed, branch, &st);
        if (strcmp(st.status, status) == 0)
            continue;
        const char *event = request_courier_event(st.status);
        if (!event || !request_transition_find(status, event))
            fail_msg("the fold moves %s -> %s, which the request's table refuses", status,
                     st.status);
        note_move(status, st.status);
        status = st.status;
    }
}

static void every_fold_move_is_allowed(void **state)
{
    (void)state;
    static const char *const ids[MAX_EVENTS] = { "a", "b", "c", "d" };
    const int choices = PARCEL_CODE_COUNT * INSTANTS;
    long total = 1;
    for (int i = 0; i < MAX_EVENTS; i++)
        total *= choices;
    /* delivery_attempts of 1 and 2, a branch to return to or none */
    for (int run = 0; run < 4; run++)
        for (long x = 0; x < total; x++) {
            struct parcel_event ev[MAX_EVENTS];
            long y = x;
            for (int i = 0; i < MAX_EVENTS; i++, y /= choices) {
                ev[i].code = (enum parcel_code)(y % choices % PARCEL_CODE_COUNT);
                ev[i].at = 1000 + (time_t)(y % choices / PARCEL_CODE_COUNT) * 60;
                ev[i].event_id = ids[i];
            }
            check_sequence(ev, MAX_EVENTS, 1 + run / 2, run % 2);
        }
    /* and every courier move of the table is one the fold makes */
    for (size_t i = 0; i < request_ntransitions; i++) {
        const struct transition *t = &request_transitions[i];
        if (strncmp(t->event, "courier.", 8) != 0)
            continue;
        bool made = false;
        for (size_t j = 0; j < nseen; j++)
            made |= strcmp(seen[j].from, t->from) == 0 && strcmp(seen[j].to, t->to) == 0;
        if (!made)
            fail_msg("the table allows %s -> %s, which no courier events make", t->from, t->to);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_fold_move_is_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
