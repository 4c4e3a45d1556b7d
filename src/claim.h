/* claim.h — how long a worker's claim on an outbox row lasts. Several cardd
 * instances share one database; a row is claimed (committed) before it is
 * sent, and another instance takes it only once the claim has run out. So a
 * claim must outlive everything it covers: every send made under it, each
 * bounded by its time-out, and the writing of their outcome. */
#ifndef CARDD_CLAIM_H
#define CARDD_CLAIM_H

/* Room after the last send for recording its outcome (a pool wait, one
 * statement, a slow database). */
#define CLAIM_MARGIN_MS 30000L

/* Milliseconds a claim must last to cover `sends` sends made one after the
 * other (1 for a send of its own), each at most send_timeout_ms. */
long claim_ms(long send_timeout_ms, int sends);

#endif
