/* claim.c — see claim.h. */
#include "claim.h"

long claim_ms(long send_timeout_ms, int sends)
{
    if (sends < 1)
        sends = 1;
    if (send_timeout_ms < 0)
        send_timeout_ms = 0;
    return send_timeout_ms * sends + CLAIM_MARGIN_MS;
}
