/* geo.h — great-circle distances on the WGS 84 mean sphere, and the nearest
 * of a set of places. Pure functions: no database, no I/O. */
#ifndef CARDD_GEO_H
#define CARDD_GEO_H

#include <stddef.h>

#define GEO_EARTH_RADIUS_KM 6371.0088

struct geo_point {
    double lat; /* degrees, -90..90 */
    double lon; /* degrees, -180..180 */
};

/* Haversine distance in kilometres between two points. */
double geo_distance_km(struct geo_point a, struct geo_point b);

/* Index of the place nearest to from, or -1 when n is 0. Ties go to the
 * lower index, so a caller that sorts places by a key gets a stable choice. */
long geo_nearest(struct geo_point from, const struct geo_point *places, size_t n);

#endif
