/*
 * cli_card.h — `cardctl card read`: what an inspection system sees on a
 * card in a reader.
 */
#ifndef CARDD_CLI_CARD_H
#define CARDD_CLI_CARD_H

#include "encoder.h"
#include "lds.h"

/*
 * cardctl card read [--trust PEM] [--timeout MS] [READER]
 *
 * argv[0] is "read" (the words before it belong to cardctl). Waits for a
 * card in READER (exact PC/SC name or a unique prefix; default: the first
 * reader), selects the eMRTD application and reads EF.COM, EF.DG1,
 * EF.DG11 and EF.SOD; prints the MRZ lines and their check digits, the
 * Arabic name and national ID, the SOD signer, whether each DG hash matches
 * and whether the signature verifies (and chains to PEM, a CSCA or DS
 * certificate, when --trust is given). Reads in plain: a card that
 * requires BAC before reading is reported as such.
 * Returns the exit status: 0 card consistent (and trusted if --trust),
 * 1 card read but not consistent, 2 usage, 3 reader or card error.
 */
int cli_card_read(int argc, char **argv);

/*
 * Reads the four LDS files from the card connected on enc into *out (fid,
 * dg, name, data, len set; free with lds_free). A file the card does not
 * have is left empty (data NULL). Returns 0, or -ENODEV / -EIO /
 * -ETIMEDOUT, -ENCODER_E_STATUS (SW in *sw if sw is not NULL) when the
 * application or a file answers an error, -EBADMSG for a file that is not
 * one TLV.
 */
int card_read_lds(struct encoder *enc, struct lds *out, uint16_t *sw);

#endif
