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

#endif
