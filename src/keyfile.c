/* keyfile.c — see keyfile.h. */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int keyfile_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? -ENOENT : errno == ELOOP ? -EPERM : errno ? -errno : -EIO;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = errno ? -errno : -EIO;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)))
        rc = -EPERM;
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}
