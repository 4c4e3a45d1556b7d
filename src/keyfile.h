/* keyfile.h — opening a file that holds a secret key: one set of checks for
 * every key the service reads (the master key, the Document Signer key). */
#ifndef CARDD_KEYFILE_H
#define CARDD_KEYFILE_H

/* Opens path for reading and checks, on the opened descriptor (so that no
 * chmod or rename can slip in between), that it is a regular file reached
 * without a symlink, owned by the user the process runs as, and readable by
 * no one else (no group or other bits). Returns the descriptor, or -ENOENT
 * (absent), -EPERM (a symlink, another owner, or open to others), -EINVAL
 * (not a regular file) or another -errno. */
int keyfile_open(const char *path);

#endif
