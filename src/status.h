/* status.h — the statuses a citizen sees, with their Arabic and English labels. */
#ifndef CARDD_STATUS_H
#define CARDD_STATUS_H

#include <stdbool.h>
#include <stddef.h>

struct status_label {
    const char *code;
    const char *ar;
    const char *en;
    int rank; /* how far along the chain; a status never moves to a lower rank */
};

/* The label of a status code, or NULL for an unknown code. */
const struct status_label *status_find(const char *code);

/* Writes the notification text for a status in both languages. */
void status_notification_text(const char *code, const char *request_no, const char *kind, char *ar,
                              size_t arlen, char *en, size_t enlen);

/* Where a card waits for its holder: the branch's names and the last day
 * to collect it (YYYY-MM-DD, NULL while the card is on its way there). */
struct status_branch {
    const char *name_ar;
    const char *name_en;
    const char *collect_by;
};

/* Appends to the notification texts of redirected_to_branch and
 * ready_for_collection the branch, in each language, and the last day to
 * collect (or, on the way there, that it will follow). Other statuses,
 * or a NULL branch, leave the texts as they are. */
void status_branch_text(const char *code, const struct status_branch *branch, char *ar,
                        size_t arlen, char *en, size_t enlen);

#endif
