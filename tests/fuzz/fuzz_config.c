/* fuzz_config.c — the configuration file (config.c: key = value lines,
 * every setting's own parser). The input is the file. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("cardd-config", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    struct config cfg;
    if (config_defaults(&cfg) != 0)
        abort();
    (void)config_load(&cfg, path, NULL);
    config_free(&cfg);
    return 0;
}
