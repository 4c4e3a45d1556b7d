/* fuzz_path.c — request paths (as libmicrohttpd hands them over, %XX
 * decoded) against the service's route table: route_find is static in
 * http.c, so the file is compiled in here. A matched route's parameters
 * hold only identifier bytes and fit their buffer; the identifier checks of
 * ids.c run on each. */
#include "http.c"

#include "fuzz.h"
#include "ids.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const methods[] = { "GET", "POST", "PUT", "DELETE" };
    const char *method = methods[data[0] % 4];
    char *path = fuzz_cstr(data + 1, size - 1);
    struct http_server srv = { 0 };
    srv.routes = server_routes(&srv.nroutes);
    char param[2][128], allow[64];
    int idx = route_find(&srv, method, path, param, allow, sizeof(allow));
    FUZZ_ASSERT(idx >= -2 && idx < (int)srv.nroutes);
    if (idx >= 0) {
        int nparams = 0;
        for (const char *p = srv.routes[idx].pattern; (p = strstr(p, "{}")) != NULL; p += 2)
            nparams++;
        for (int i = 0; i < nparams; i++) {
            size_t n = strnlen(param[i], sizeof(param[i]));
            FUZZ_ASSERT(n <= HTTP_MAX_PARAM);
            for (size_t k = 0; k < n; k++)
                FUZZ_ASSERT(param_byte_ok((unsigned char)param[i][k]));
            (void)request_no_valid(param[i]);
            (void)s10_valid(param[i]);
            (void)national_id_valid(param[i]);
        }
    }
    size_t limit = body_limit(&srv, idx);
    FUZZ_ASSERT(limit == HTTP_MAX_BODY || (idx >= 0 && limit == HTTP_MAX_LARGE_BODY));
    (void)valid_request_id(path);
    (void)is_json_type(path);
    free(path);
    return 0;
}
