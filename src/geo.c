/* geo.c — haversine distance and nearest place. */
#include "geo.h"

#include <math.h>

static double radians(double deg)
{
    return deg * M_PI / 180.0;
}

double geo_distance_km(struct geo_point a, struct geo_point b)
{
    double dlat = radians(b.lat - a.lat), dlon = radians(b.lon - a.lon);
    double s = sin(dlat / 2) * sin(dlat / 2) +
               cos(radians(a.lat)) * cos(radians(b.lat)) * sin(dlon / 2) * sin(dlon / 2);
    if (s > 1.0) /* rounding at antipodes */
        s = 1.0;
    return 2.0 * GEO_EARTH_RADIUS_KM * asin(sqrt(s));
}

long geo_nearest(struct geo_point from, const struct geo_point *places, size_t n)
{
    long best = -1;
    double best_km = 0;
    for (size_t i = 0; i < n; i++) {
        double km = geo_distance_km(from, places[i]);
        if (best < 0 || km < best_km) {
            best = (long)i;
            best_km = km;
        }
    }
    return best;
}
