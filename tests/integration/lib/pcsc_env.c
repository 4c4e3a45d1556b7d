/*
 * pcsc_env.c — private pcscd + vpcd + emu-card for tests (pcsc_env.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcsc_env.h"

#define VPCD_DRIVER "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

struct pcsc_env {
    char dir[256];
    char control[300];
    char outdir[300];
    char reader[64];
    int port;
    pid_t pcscd;
    pid_t card;
};

static void sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };

    nanosleep(&t, NULL);
}

/* A port is free when we can bind it; vpcd also takes port+1 for its
 * second slot, so both must be. */
static int free_port(void)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        socklen_t al = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0), fd2, port;

        if (fd < 0)
            return -errno;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
            getsockname(fd, (struct sockaddr *)&a, &al)) {
            close(fd);
            continue;
        }
        port = ntohs(a.sin_port);
        fd2 = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_port = htons((uint16_t)(port + 1));
        if (port < 65535 && fd2 >= 0 && bind(fd2, (struct sockaddr *)&a, sizeof(a)) == 0) {
            close(fd2);
            close(fd);
            return port;
        }
        if (fd2 >= 0)
            close(fd2);
        close(fd);
    }
    return -EADDRINUSE;
}

/* True once something listens on 127.0.0.1:port (read from /proc, since a
 * test connection would look like a card to vpcd). */
static bool port_listening(int port)
{
    char line[512];
    bool found = false;
    FILE *f = fopen("/proc/net/tcp", "r");

    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned lport, st;

        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x", &lport, &st) == 2 && (int)lport == port &&
            st == 0x0A)
            found = true;
    }
    fclose(f);
    return found;
}

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    /* A test that crashes must not leave pcscd or emu-card behind. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1)
        _exit(127);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    execvp(argv[0], argv);
    _exit(127);
}

static void stop_child(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int control_connect(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        int r = -errno;

        close(fd);
        return r;
    }
    return fd;
}

int pcsc_env_start(const struct pcsc_env_opts *opts, struct pcsc_env **out)
{
    struct pcsc_env *env = NULL;
    char conf[300], path[400], sock[400], log[400], portstr[16];
    const char *tmp = getenv("TMPDIR");
    FILE *f;
    int r, i;

    *out = NULL;
    env = calloc(1, sizeof(*env));
    if (!env)
        return -ENOMEM;
    snprintf(env->dir, sizeof(env->dir), "%s/pcsc-env.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(env->dir)) {
        r = -errno;
        free(env);
        return r;
    }
    r = free_port();
    if (r < 0)
        goto out_stop;
    env->port = r;
    snprintf(env->reader, sizeof(env->reader), "Virtual PCD 00 00");
    snprintf(conf, sizeof(conf), "%s/conf", env->dir);
    snprintf(env->outdir, sizeof(env->outdir), "%s/cards", env->dir);
    snprintf(env->control, sizeof(env->control), "%s/card.sock", env->dir);
    if (mkdir(conf, 0755) || mkdir(env->outdir, 0755)) {
        r = -errno;
        goto out_stop;
    }
    snprintf(path, sizeof(path), "%s/vpcd", conf);
    f = fopen(path, "w");
    if (!f) {
        r = -errno;
        goto out_stop;
    }
    fprintf(f,
            "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:%d\n"
            "LIBPATH      %s\nCHANNELID    %d\n",
            env->port, VPCD_DRIVER, env->port);
    fclose(f);

    /* Private /run/pcscd: this pcscd cannot clash with another one. */
    snprintf(log, sizeof(log), "%s/pcscd.log", env->dir);
    {
        const char *dbg = getenv("PCSC_ENV_DEBUG");
        char *argv[] = {
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd && exec pcscd -f $1 -c \"$0\"",
            conf,
            (char *)(dbg && !strcmp(dbg, "1") ? "-d" : ""),
            NULL
        };
        env->pcscd = spawn(argv, log);
    }
    if (env->pcscd < 0) {
        r = -errno;
        goto out_stop;
    }
    snprintf(sock, sizeof(sock), "/proc/%d/root/run/pcscd/pcscd.comm", (int)env->pcscd);
    for (i = 0; i < 100; i++) {
        if (access(sock, F_OK) == 0 && port_listening(env->port))
            break;
        if (waitpid(env->pcscd, NULL, WNOHANG) == env->pcscd) {
            env->pcscd = 0;
            r = -ECHILD;
            goto out_stop;
        }
        sleep_ms(50);
    }
    if (i == 100) {
        r = -ETIMEDOUT;
        goto out_stop;
    }
    setenv("PCSCLITE_CSOCK_NAME", sock, 1);

    if (opts && opts->with_card) {
        char bin[300];
        const char *build = getenv("BUILD");

        snprintf(bin, sizeof(bin), "%s/emu-card", build && *build ? build : "build");
        snprintf(portstr, sizeof(portstr), "%d", env->port);
        snprintf(log, sizeof(log), "%s/emu-card.log", env->dir);
        char *argv[] = { (char *)(opts->emu_card ? opts->emu_card : bin),
                         "--vpcd-port",
                         portstr,
                         "--control",
                         env->control,
                         "--outdir",
                         env->outdir,
                         opts->card_t0 ? "--t0" : NULL,
                         NULL };
        env->card = spawn(argv, log);
        if (env->card < 0) {
            r = -errno;
            goto out_stop;
        }
        for (i = 0; i < 100; i++) {
            int fd = control_connect(env->control);

            if (fd >= 0) {
                close(fd);
                break;
            }
            if (waitpid(env->card, NULL, WNOHANG) == env->card) {
                env->card = 0;
                r = -ECHILD;
                goto out_stop;
            }
            sleep_ms(20);
        }
        if (i == 100) {
            r = -ETIMEDOUT;
            goto out_stop;
        }
    }
    *out = env;
    return 0;

out_stop:
    pcsc_env_stop(env);
    return r;
}

const char *pcsc_env_reader(const struct pcsc_env *env)
{
    return env->reader;
}

int pcsc_env_vpcd_port(const struct pcsc_env *env)
{
    return env->port;
}

const char *pcsc_env_control(const struct pcsc_env *env)
{
    return env->control;
}

const char *pcsc_env_card_outdir(const struct pcsc_env *env)
{
    return env->outdir;
}

int pcsc_env_card(struct pcsc_env *env, char *reply, size_t cap, const char *fmt, ...)
{
    char line[600], in[600];
    size_t got = 0;
    va_list ap;
    int fd, n, r;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 1)
        return -EINVAL;
    line[n++] = '\n';
    fd = control_connect(env->control);
    if (fd < 0)
        return fd;
    if (write(fd, line, (size_t)n) != n) {
        r = -EIO;
        goto out_close;
    }
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t k;

        if (poll(&p, 1, 10000) <= 0) {
            r = -ETIMEDOUT;
            goto out_close;
        }
        k = read(fd, in + got, sizeof(in) - 1 - got);
        if (k <= 0) {
            r = -EIO;
            goto out_close;
        }
        got += (size_t)k;
        in[got] = 0;
        if (strchr(in, '\n') || got == sizeof(in) - 1)
            break;
    }
    in[strcspn(in, "\n")] = 0;
    if (reply && cap) {
        strncpy(reply, in, cap - 1);
        reply[cap - 1] = 0;
    }
    r = strncmp(in, "ok", 2) == 0 ? 0 : -EPROTO;
out_close:
    close(fd);
    return r;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void pcsc_env_stop(struct pcsc_env *env)
{
    const char *keep;

    if (!env)
        return;
    stop_child(env->card);
    stop_child(env->pcscd);
    keep = getenv("PCSC_ENV_KEEP");
    if (env->dir[0] && !(keep && !strcmp(keep, "1")))
        nftw(env->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (env->dir[0])
        fprintf(stderr, "pcsc_env: kept %s\n", env->dir);
    free(env);
}
