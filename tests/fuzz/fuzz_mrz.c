/* fuzz_mrz.c — the MRZ built from a holder's Latin name (mrz.c), the name
 * split as the station splits it (the last word is the surname). Whatever
 * builds is a valid TD1 MRZ of 3 x 30 characters from the MRZ alphabet. */
#include <stdio.h>

#include "fuzz.h"
#include "mrz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *name = fuzz_cstr(data, size);
    char *last = strrchr(name, ' ');
    const char *surname = name, *given = NULL;
    if (last) {
        *last = '\0';
        surname = last + 1;
        given = name;
    }
    struct mrz_fields f = {
        .document_code = "ID",
        .issuing_state = "SAU",
        .document_number = "A12345678",
        .optional1 = "1234567897",
        .birth_date = "900412",
        .sex = 'M',
        .expiry_date = "361121",
        .nationality = "SAU",
        .surname = surname,
        .given_names = given,
    };
    struct mrz_td1 out;
    if (mrz_td1_build(&f, &out) == 0) {
        char all[3 * MRZ_TD1_COLS];
        for (int r = 0; r < MRZ_TD1_ROWS; r++) {
            FUZZ_ASSERT(strlen(out.line[r]) == MRZ_TD1_COLS);
            memcpy(all + r * MRZ_TD1_COLS, out.line[r], MRZ_TD1_COLS);
        }
        for (size_t i = 0; i < sizeof(all); i++)
            FUZZ_ASSERT((all[i] >= 'A' && all[i] <= 'Z') || (all[i] >= '0' && all[i] <= '9') ||
                        all[i] == '<');
        FUZZ_ASSERT(mrz_td1_valid(all, sizeof(all)));
    }
    (void)mrz_td1_valid(name, size);
    (void)mrz_check_digit(name, strlen(name));
    free(name);
    return 0;
}
