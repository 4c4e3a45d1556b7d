/* station_worker.h — one worker thread per configured production station. Each
 * takes the oldest waiting request, feeds a blank card to the chip station,
 * personalises and verifies the chip, prints the face and ejects the card,
 * and records the outcome; faults put the station in error until an
 * operator resumes it. */
#ifndef CARDD_STATION_WORKER_H
#define CARDD_STATION_WORKER_H

#include <stdbool.h>

struct app;
struct stations;

/* Starts a worker for every station of the configuration. Returns 0 or
 * -errno; with no station configured it starts nothing and returns 0. */
int stations_start(struct app *app, struct stations **out);

/* Waits for every worker to stop (app->stopping set first) until
 * deadline_ms (CLOCK_MONOTONIC milliseconds; 0: no deadline). A worker
 * still inside a device call then is left to the process's exit: its job
 * stays in progress for start-up recovery. Returns true when every worker
 * stopped (and s was freed). NULL-safe. */
bool stations_stop(struct stations *s, long deadline_ms);

#endif
