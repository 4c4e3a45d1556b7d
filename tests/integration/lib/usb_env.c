/*
 * usb_env.c - see usb_env.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usb_env.h"

#define PRELOAD "libumockdev-preload.so.0"

extern char **environ;

/* ThreadSanitizer's log_path and the preload do not mix. ThreadSanitizer
 * starts before libc is initialised (from the program's .preinit_array), and
 * with log_path it creates the path's folders with libc's mkdir(). The
 * preload wraps mkdir() and, on its first call, dlopen()s libc.so.6 to find
 * the real one; that dlopen() runs libc's initialisation then, with no
 * arguments and no environment, and libc is not initialised a second time:
 * the process runs with environ == NULL (a service started so connects to
 * PostgreSQL's default socket, without the PG* settings). A process under
 * the preload writes its reports to its stderr instead: the harness reads
 * the service's log, and tests/run.sh the test's own output. */
static char *saved_tsan_options;
static bool tsan_options_saved;

static void tsan_options_without_log_path(void)
{
    const char *cur = getenv("TSAN_OPTIONS");
    char *copy, *out, *tok, *save = NULL;
    size_t used = 0;

    if (!cur || !strstr(cur, "log_path="))
        return;
    copy = strdup(cur);
    out = calloc(1, strlen(cur) + 1);
    if (!copy || !out)
        goto out_free;
    for (tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        if (strncmp(tok, "log_path=", 9) == 0)
            continue;
        used += (size_t)sprintf(out + used, "%s%s", used ? ":" : "", tok);
    }
    setenv("TSAN_OPTIONS", out, 1);
out_free:
    free(copy);
    free(out);
}

void usb_env_preload_export(void)
{
    const char *cur = getenv("TSAN_OPTIONS");

    if (!tsan_options_saved) {
        saved_tsan_options = cur ? strdup(cur) : NULL;
        tsan_options_saved = true;
    }
    setenv("LD_PRELOAD", PRELOAD, 1);
    tsan_options_without_log_path();
}

void usb_env_preload_unexport(void)
{
    unsetenv("LD_PRELOAD");
    if (!tsan_options_saved)
        return;
    if (saved_tsan_options)
        setenv("TSAN_OPTIONS", saved_tsan_options, 1);
    else
        unsetenv("TSAN_OPTIONS");
    free(saved_tsan_options);
    saved_tsan_options = NULL;
    tsan_options_saved = false;
}

int usb_env_preload(char **argv)
{
    const char *cur = getenv("LD_PRELOAD");
    char *value = NULL;

    if (cur && strstr(cur, "libumockdev-preload"))
        return 0;
    if (asprintf(&value, "%s%s%s", PRELOAD, cur && *cur ? ":" : "", cur ? cur : "") < 0)
        return -ENOMEM;
    setenv("LD_PRELOAD", value, 1);
    free(value);
    tsan_options_without_log_path();
    execv("/proc/self/exe", argv);
    return -errno;
}

/* The environment for the emulator: ours without the preload and without
 * a testbed of ours (it makes its own). */
static char **emulator_environ(void)
{
    size_t n = 0, k = 0;
    char **env;

    while (environ[n])
        n++;
    env = calloc(n + 1, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) && strncmp(environ[i], "UMOCKDEV_DIR=", 13))
            env[k++] = environ[i];
    return env;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int usb_env_start(struct usb_env *env, const char *serial, const char *const *extra_args)
{
    const char *build = getenv("BUILD");
    const char *root = getenv("CARDD_ROOT");
    char emu_path[512];
    const char *args[200];
    int nargs = 0;
    char **child_env = NULL;
    int out[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    char line[512];
    size_t used = 0;
    int rc;

    memset(env, 0, sizeof(*env));
    env->pid = -1;
    snprintf(env->dir, sizeof(env->dir), "/tmp/it_printer.XXXXXX");
    if (!mkdtemp(env->dir))
        return -errno;
    snprintf(env->hopper, sizeof(env->hopper), "%s/hopper", env->dir);
    snprintf(env->control, sizeof(env->control), "%s/control", env->dir);
    snprintf(emu_path, sizeof(emu_path), "%s/%s/emu-printer", root ? root : ".",
             build ? build : "build");

    args[nargs++] = emu_path;
    args[nargs++] = "--serial";
    args[nargs++] = serial;
    args[nargs++] = "--hopper";
    args[nargs++] = env->hopper;
    args[nargs++] = "--control";
    args[nargs++] = env->control;
    for (int i = 0; extra_args && extra_args[i] && nargs < 198; i++)
        args[nargs++] = extra_args[i];
    args[nargs] = NULL;

    child_env = emulator_environ();
    if (!child_env || pipe2(out, O_CLOEXEC) < 0) {
        rc = -ENOMEM;
        goto out_fail;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    rc = -posix_spawn(&env->pid, emu_path, &fa, NULL, (char *const *)args, child_env);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    out[1] = -1;
    if (rc) {
        env->pid = -1;
        goto out_fail;
    }
    /* The emulator prints UMOCKDEV_DIR=... once it is ready. */
    for (;;) {
        struct pollfd p = { .fd = out[0], .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, 10000) <= 0) {
            rc = -ETIMEDOUT;
            goto out_fail;
        }
        n = read(out[0], line + used, sizeof(line) - 1 - used);
        if (n <= 0) {
            rc = -EPIPE;
            goto out_fail;
        }
        used += (size_t)n;
        line[used] = '\0';
        if (strchr(line, '\n'))
            break;
        if (used == sizeof(line) - 1) {
            rc = -EPROTO;
            goto out_fail;
        }
    }
    *strchr(line, '\n') = '\0';
    if (strncmp(line, "UMOCKDEV_DIR=", 13) != 0 || strlen(line + 13) >= sizeof(env->umockdev_dir)) {
        rc = -EPROTO;
        goto out_fail;
    }
    strcpy(env->umockdev_dir, line + 13);
    setenv("UMOCKDEV_DIR", env->umockdev_dir, 1);
    close(out[0]);
    free(child_env);
    return 0;

out_fail:
    if (out[0] >= 0)
        close(out[0]);
    if (out[1] >= 0)
        close(out[1]);
    free(child_env);
    usb_env_stop(env);
    return rc;
}

int usb_env_control(const struct usb_env *env, const char *line, char *reply, size_t size)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char buf[512];
    size_t used = 0;
    int fd;
    int rc = 0;

    if (strlen(env->control) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, env->control);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || dprintf(fd, "%s\n", line) < 0) {
        rc = -errno;
        goto out_close;
    }
    while (!memchr(buf, '\n', used)) {
        ssize_t n = read(fd, buf + used, sizeof(buf) - 1 - used);

        if (n <= 0) {
            rc = -EPIPE;
            goto out_close;
        }
        used += (size_t)n;
        if (used == sizeof(buf) - 1)
            break;
    }
    buf[used] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (reply)
        snprintf(reply, size, "%s", buf);
    rc = strncmp(buf, "ok", 2) == 0 ? 0 : -EIO;
out_close:
    close(fd);
    return rc;
}

void usb_env_stop(struct usb_env *env)
{
    if (!env)
        return;
    if (env->pid > 0) {
        kill(env->pid, SIGTERM);
        waitpid(env->pid, NULL, 0);
    }
    env->pid = -1;
    if (env->dir[0])
        nftw(env->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    env->dir[0] = '\0';
}
