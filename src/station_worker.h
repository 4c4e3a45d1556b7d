/* station_worker.h — one worker thread per configured production station. Each
 * takes the oldest waiting request, feeds a blank card to the chip station,
 * personalises and verifies the chip, prints the face and ejects the card,
 * and records the outcome; faults put the station in error until an
 * operator resumes it. */
#ifndef CARDD_STATION_WORKER_H
#define CARDD_STATION_WORKER_H

struct app;
struct stations;

/* Starts a worker for every station of the configuration. Returns 0 or
 * -errno; with no station configured it starts nothing and returns 0. */
int stations_start(struct app *app, struct stations **out);

/* Asks every worker to stop after the job in hand, and waits. NULL-safe. */
void stations_stop(struct stations *s);

#endif
