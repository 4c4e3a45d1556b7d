/* fuzz_lds.c — the inspection-system check of LDS files (lds_check: CMS
 * SignedData of EF.SOD, the LDSSecurityObject, the data groups' hashes)
 * and the MRZ check of EF.DG1. The input: 2 bytes of SOD length, the SOD,
 * then the DG1 bytes. */
#include <stdio.h>

#include "fuzz.h"
#include "lds.h"
#include "mrz.h"
#include "tlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t sod_len = (size_t)data[0] << 8 | data[1];
    if (sod_len > size - 2)
        sod_len = size - 2;
    uint8_t *sod = malloc(sod_len ? sod_len : 1);
    memcpy(sod, data + 2, sod_len);
    size_t dg_len = size - 2 - sod_len;
    uint8_t *dg = malloc(dg_len ? dg_len : 1);
    memcpy(dg, data + 2 + sod_len, dg_len);

    struct lds_dg dgs[1] = { { 1, dg, dg_len } };
    struct lds_check chk;
    lds_check(sod, sod_len, dgs, 1, NULL, &chk);
    FUZZ_ASSERT(!chk.hashes_match || chk.sod_ok);
    FUZZ_ASSERT(strnlen(chk.error, sizeof(chk.error)) < sizeof(chk.error));

    /* EF.DG1: 61 { 5F1F <MRZ> } */
    struct tlv outer, mrz;
    if (tlv_parse(dg, dg_len, &outer) == 0 && outer.tag == 0x61 &&
        tlv_find(outer.value, outer.len, 0x5F1F, &mrz) == 0)
        (void)mrz_td1_valid((const char *)mrz.value, mrz.len);
    free(sod);
    free(dg);
    return 0;
}
